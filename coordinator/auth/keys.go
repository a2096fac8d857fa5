package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// MaxSubjectLen bounds a key's subject.
const MaxSubjectLen = 256

// issueAttempts bounds retries on key ID collisions (a 64-bit random ID
// collides only with a broken random source).
const issueAttempts = 3

// Keys issues, authenticates and revokes API keys over a Store.
type Keys struct {
	store Store
	rand  io.Reader
	now   func() time.Time
}

// NewKeys returns a key service. Pass crypto/rand.Reader and time.Now
// outside tests.
func NewKeys(store Store, rand io.Reader, now func() time.Time) *Keys {
	return &Keys{store: store, rand: rand, now: now}
}

// Principal is who an authenticated key acts for.
type Principal struct {
	KeyID   string
	Subject string
	Role    Role
}

// Require returns nil if p has one of roles, or an error wrapping
// ErrForbidden.
func (p Principal) Require(roles ...Role) error {
	if slices.Contains(roles, p.Role) {
		return nil
	}
	return fmt.Errorf("%w: %s %s may not do this", ErrForbidden, p.Role, p.Subject)
}

// Issue creates a key for subject with role, valid for ttl (zero: no
// expiry). It returns the printable key, to hand to its owner once (it is
// not stored and cannot be recovered), and the stored record.
func (k *Keys) Issue(ctx context.Context, subject string, role Role, ttl time.Duration) (string, Record, error) {
	if !role.Valid() {
		return "", Record{}, fmt.Errorf("%w: %v", ErrInvalidRole, role)
	}
	if subject == "" || len(subject) > MaxSubjectLen {
		return "", Record{}, fmt.Errorf("%w: length %d not in 1..%d", ErrInvalidSubject, len(subject), MaxSubjectLen)
	}
	if ttl < 0 {
		return "", Record{}, fmt.Errorf("auth: negative ttl %v", ttl)
	}
	now := k.now()
	for range issueAttempts {
		t, err := NewToken(k.rand)
		if err != nil {
			return "", Record{}, err
		}
		rec := Record{ID: t.ID, Hash: t.Hash(), Role: role, Subject: subject, CreatedAt: now}
		if ttl > 0 {
			rec.ExpiresAt = now.Add(ttl)
		}
		err = k.store.Create(ctx, rec)
		if errors.Is(err, ErrDuplicate) {
			continue
		}
		if err != nil {
			return "", Record{}, fmt.Errorf("store api key for %s: %w", subject, err)
		}
		return t.Reveal(), rec, nil
	}
	return "", Record{}, fmt.Errorf("issue api key for %s: %d key id collisions: is the random source broken? %w", subject, issueAttempts, ErrDuplicate)
}

// Authenticate checks a printed key and returns its principal. Every
// rejection wraps ErrUnauthorized (malformed keys too); store failures
// other than ErrNotFound are returned unwrapped by it.
func (k *Keys) Authenticate(ctx context.Context, key string) (Principal, error) {
	t, err := ParseToken(key)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	rec, err := k.store.Get(ctx, t.ID)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: unknown key id %s", ErrUnauthorized, t.ID)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up api key %s: %w", t.ID, err)
	}
	h := t.Hash()
	if subtle.ConstantTimeCompare(h[:], rec.Hash[:]) != 1 {
		return Principal{}, fmt.Errorf("%w: wrong secret for key %s", ErrUnauthorized, t.ID)
	}
	// Revocation is immediate and final, whatever the clock says.
	if !rec.RevokedAt.IsZero() {
		return Principal{}, fmt.Errorf("%w: key %s revoked", ErrUnauthorized, t.ID)
	}
	if !rec.ExpiresAt.IsZero() && !k.now().Before(rec.ExpiresAt) {
		return Principal{}, fmt.Errorf("%w: key %s expired", ErrUnauthorized, t.ID)
	}
	if !rec.Role.Valid() {
		return Principal{}, fmt.Errorf("%w: key %s has invalid role %v", ErrUnauthorized, t.ID, rec.Role)
	}
	return Principal{KeyID: rec.ID, Subject: rec.Subject, Role: rec.Role}, nil
}

// Revoke revokes the key with the given ID from now on. Revoking twice
// keeps the first time.
func (k *Keys) Revoke(ctx context.Context, id string) error {
	if err := k.store.Revoke(ctx, id, k.now()); err != nil {
		return fmt.Errorf("revoke api key %s: %w", id, err)
	}
	return nil
}
