package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// Record is what the coordinator stores for a key: never the key itself.
type Record struct {
	// ID is the key's public ID.
	ID string
	// Hash is Token.Hash of the key.
	Hash [sha256.Size]byte
	// Role is what the key may do.
	Role Role
	// Subject is the account the key acts for (client, solver, verifier
	// or operator ID).
	Subject string
	// CreatedAt is when the key was issued.
	CreatedAt time.Time
	// ExpiresAt is when the key stops working; zero means never.
	ExpiresAt time.Time
	// RevokedAt is when the key was revoked; zero means it was not.
	RevokedAt time.Time
}

// Store keeps key records by ID.
type Store interface {
	// Create adds rec; ErrDuplicate if its ID exists.
	Create(ctx context.Context, rec Record) error
	// Get returns the record with the given ID; ErrNotFound if absent.
	Get(ctx context.Context, id string) (Record, error)
	// Revoke sets RevokedAt to at, unless the key is already revoked (the
	// first revocation time stays); ErrNotFound if absent.
	Revoke(ctx context.Context, id string, at time.Time) error
}

var _ Store = (*MemStore)(nil)

// MemStore is an in-memory Store, safe for concurrent use.
type MemStore struct {
	mu   sync.RWMutex
	recs map[string]Record
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{recs: make(map[string]Record)} }

// Create implements Store.
func (s *MemStore) Create(_ context.Context, rec Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[rec.ID]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicate, rec.ID)
	}
	s.recs[rec.ID] = rec
	return nil
}

// Get implements Store.
func (s *MemStore) Get(_ context.Context, id string) (Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, ok := s.recs[id]
	if !ok {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return rec, nil
}

// Revoke implements Store.
func (s *MemStore) Revoke(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.recs[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if rec.RevokedAt.IsZero() {
		rec.RevokedAt = at
		s.recs[id] = rec
	}
	return nil
}
