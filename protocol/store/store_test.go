package store_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/protocol/store/storetest"
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
	t.Parallel()
	storetest.RunConformance(t, func(t *testing.T) storetest.Subject {
		b, err := store.Open("", store.WithInMemory())
		if err != nil {
			t.Fatal(err)
		}
		return badgerSubject(b)
	})
}

func TestBadgerOnDisk(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	storetest.RunConformance(t, func(t *testing.T) storetest.Subject {
		m := store.NewMemory(store.WithThreads(3))
		return storetest.Subject{Store: m, SetRawChunk: m.SetRawChunk, SetRawManifest: m.SetRawManifest}
	})
}

// TestBadgerReopen checks that checkpoints survive closing and reopening.
func TestBadgerReopen(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	if _, err := store.Open(""); err == nil {
		t.Fatal("Open(\"\") without WithInMemory succeeded")
	}
	if _, err := store.Open(t.TempDir(), store.WithInMemory()); err == nil {
		t.Fatal("Open(dir, WithInMemory()) succeeded")
	}
}

func TestPutManifestOfFetchedChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := store.NewMemory()
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	job, _ := s.ID()
	st := s.Init()
	man, err := src.PutCheckpoint(ctx, job, st)
	if err != nil {
		t.Fatal(err)
	}
	dst := store.NewMemory()
	ids := man.ChunkIDs()
	// A manifest whose chunks are not all there is refused.
	for _, id := range ids[:len(ids)-1] {
		data, _ := src.Get(ctx, id)
		if _, err := dst.Put(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.PutManifest(ctx, man); err == nil {
		t.Fatal("a manifest with a missing chunk was committed")
	}
	data, _ := src.Get(ctx, ids[len(ids)-1])
	dst.Put(ctx, data)
	if err := dst.PutManifest(ctx, man); err != nil {
		t.Fatal(err)
	}
	got, err := dst.GetCheckpoint(ctx, s, job, st.Step)
	if err != nil || got.Step != st.Step {
		t.Fatalf("checkpoint from fetched chunks: %v", err)
	}
	bad := man
	bad.Digest[0] ^= 1
	if err := dst.PutManifest(ctx, bad); err == nil {
		t.Fatal("a manifest that does not verify was committed")
	}
}
