package store_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/beluga-compute/beluga/solver/store"
	"github.com/beluga-compute/beluga/solver/store/storetest"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// badgerSubject wraps b with hooks that write raw values through its DB
// handle.
func badgerSubject(b *store.Badger) storetest.Subject {
	set := func(key, val []byte) error {
		return b.DB().Update(func(txn *badger.Txn) error { return txn.Set(key, val) })
	}
	return storetest.Subject{
		Store:          b,
		SetRawChunk:    func(id store.ChunkID, data []byte) error { return set(store.ChunkKey(id), data) },
		SetRawManifest: func(job spec.JobID, step int64, raw []byte) error { return set(store.ManifestKey(job, step), raw) },
	}
}

func TestBadgerInMemory(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) storetest.Subject {
		b, err := store.Open("", store.WithInMemory())
		if err != nil {
			t.Fatal(err)
		}
		return badgerSubject(b)
	})
}

func TestBadgerOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("on-disk suite skipped in -short mode")
	}
	storetest.RunConformance(t, func(t *testing.T) storetest.Subject {
		b, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return badgerSubject(b)
	})
}

func TestMemory(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) storetest.Subject {
		m := store.NewMemory(store.WithThreads(3))
		return storetest.Subject{Store: m, SetRawChunk: m.SetRawChunk, SetRawManifest: m.SetRawManifest}
	})
}

// TestBadgerReopen checks that checkpoints survive closing and reopening.
func TestBadgerReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	job, _ := s.ID()
	st := s.Init()
	b, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.PutCheckpoint(ctx, job, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, err := b.GetCheckpoint(ctx, s, job, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := b.Manifest(ctx, job, 0)
	if h.Digest != m.Digest || got.Step != 0 {
		t.Fatal("reopened store returned another checkpoint")
	}
}

func TestOpenRefusesOtherLayout(t *testing.T) {
	dir := t.TempDir()
	b, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = b.DB().Update(func(txn *badger.Txn) error {
		return txn.Set([]byte("!layout"), binary.LittleEndian.AppendUint32(nil, 2))
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := store.Open(dir); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open of a layout-2 database: %v", err)
	}
}

func TestOpenArguments(t *testing.T) {
	if _, err := store.Open(""); err == nil {
		t.Fatal("Open(\"\") without WithInMemory succeeded")
	}
	if _, err := store.Open(t.TempDir(), store.WithInMemory()); err == nil {
		t.Fatal("Open(dir, WithInMemory()) succeeded")
	}
}
