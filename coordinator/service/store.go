package service

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/internal/kv"
)

// Store is the coordinator's non-money state: a small badger table of JSON
// records, written with synchronous commits. Key prefixes:
//
//	job/<id>        Job (with its pending intent, if any)
//	run/<period>    Run (a payout run)
//	bank/<payee>    sealed bank details (vault envelope)
//	apikey/<id>     auth.Record
//	idem/<key>      an HTTP idempotency record (opaque bytes, with a TTL)
//	meta/<name>     flags such as "bootstrapped", the posting key
//	data/text/<root> a client's text corpus, in pieces (data.go)
type Store struct {
	db *badger.DB
}

var _ auth.Store = (*Store)(nil)

// OpenStore opens the table in dir; dir "" keeps it in memory (tests).
func OpenStore(dir string) (*Store, error) {
	o := badger.DefaultOptions(dir).WithLoggingLevel(badger.WARNING).WithSyncWrites(true)
	if dir == "" {
		o = o.WithInMemory(true).WithMemTableSize(8 << 20).WithBlockCacheSize(1 << 20)
	}
	db, err := kv.Open(o)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the table.
func (s *Store) Close() error { return s.db.Close() }

// GetRaw returns the bytes under key, or ok false.
func (s *Store) GetRaw(key string) (val []byte, ok bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		val, err = it.ValueCopy(nil)
		return err
	})
	return val, ok, err
}

// PutRaw stores val under key, durably.
func (s *Store) PutRaw(key string, val []byte) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(key), val) })
}

// PutRawTTL stores val under key, durably, for at least ttl: the table
// may drop it after that (badger's expiry, by the wall clock).
func (s *Store) PutRawTTL(key string, val []byte, ttl time.Duration) error {
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.SetEntry(badger.NewEntry([]byte(key), val).WithTTL(ttl))
	})
}

// DeleteRaw removes key, durably; a missing key is no error.
func (s *Store) DeleteRaw(key string) error { return s.del(key) }

// ScanKeys calls fn with every key under prefix, in key order, without
// reading the values, until fn returns an error, which ScanKeys returns.
func (s *Store) ScanKeys(prefix string, fn func(key string) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := fn(string(it.Item().Key())); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) get(key string, v any) (bool, error) {
	b, ok, err := s.GetRaw(key)
	if err != nil || !ok {
		return ok, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

func (s *Store) put(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return s.PutRaw(key, b)
}

func (s *Store) del(key string) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(key)) })
}

// scan calls fn with the value of every key under prefix, in key order.
func (s *Store) scan(prefix string, fn func(key string, val []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := fn(string(it.Item().Key()), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// postingKeyName holds the key of the posting tags (PostJob).
const postingKeyName = "meta/posting_key"

// postingKey returns the table's posting key, drawing it from crypto/rand
// the first time.
func (s *Store) postingKey() ([]byte, error) {
	var key []byte
	err := s.db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(postingKeyName))
		if err == nil {
			key, err = it.ValueCopy(nil)
			return err
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		return txn.Set([]byte(postingKeyName), key)
	})
	if err != nil {
		return nil, fmt.Errorf("posting key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("posting key: %d bytes stored, want 32", len(key))
	}
	return key, nil
}

// Create implements auth.Store.
func (s *Store) Create(_ context.Context, rec auth.Record) error {
	key := "apikey/" + rec.ID
	return s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get([]byte(key)); err == nil {
			return fmt.Errorf("%w: %s", auth.ErrDuplicate, rec.ID)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return txn.Set([]byte(key), b)
	})
}

// Get implements auth.Store.
func (s *Store) Get(_ context.Context, id string) (auth.Record, error) {
	var rec auth.Record
	ok, err := s.get("apikey/"+id, &rec)
	if err != nil {
		return auth.Record{}, err
	}
	if !ok {
		return auth.Record{}, fmt.Errorf("%w: %s", auth.ErrNotFound, id)
	}
	return rec, nil
}

// Revoke implements auth.Store.
func (s *Store) Revoke(ctx context.Context, id string, at time.Time) error {
	rec, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if rec.RevokedAt.IsZero() {
		rec.RevokedAt = at
		return s.put("apikey/"+id, rec)
	}
	return nil
}
