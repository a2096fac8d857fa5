package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/beluga-compute/beluga/internal/kv"
	"github.com/beluga-compute/beluga/spec"
)

// Badger is the default CheckpointStore: an embedded badger database.
//
// Layout (layout version 1):
//
//	"c" || chunk ID[32]              → chunk bytes
//	"m" || job ID[32] || be64(step)  → manifest (MarshalBinary)
//	"!layout"                        → le32(1)
//
// Steps are big-endian so a job's manifests iterate in step order.
type Badger struct {
	core
	db *badger.DB
}

const (
	prefixChunk    = 'c'
	prefixManifest = 'm'
	keyLayout      = "!layout"
	layoutVersion  = 1
	// valueThreshold keeps chunks (and large manifests) in the value log,
	// out of the LSM tree that compaction rewrites; keys and small values
	// stay in the tree.
	valueThreshold = 1 << 10
	// deleteBatch bounds the deletes of one transaction, far below
	// badger's ErrTxnTooBig.
	deleteBatch = 1 << 10
	// conflictRetries bounds retries of a transaction that lost a race for
	// a key (two writers storing the same chunk).
	conflictRetries = 16
)

// Open opens (creating if needed) the store in dir. Badger's options are
// badger.DefaultOptions(dir) with its logger discarded (WithLogger) and, on
// disk, values of 1 KiB and more kept in the value log; WithBadgerOptions
// adjusts them further. WithInMemory keeps everything in memory (dir must be "").
func Open(dir string, opts ...Option) (*Badger, error) {
	cfg := newConfig(opts)
	var bo badger.Options
	switch {
	case cfg.inMemory && dir != "":
		return nil, fmt.Errorf("store: in-memory store given directory %q", dir)
	case cfg.inMemory:
		bo = badger.DefaultOptions("").WithInMemory(true)
	case dir == "":
		return nil, errors.New("store: Open needs a directory (or WithInMemory)")
	default:
		// In memory, badger caps values at the threshold: keep its default.
		bo = badger.DefaultOptions(dir).WithValueThreshold(valueThreshold)
	}
	bo = bo.WithLogger(nil)
	if cfg.logger != nil {
		bo = bo.WithLogger(badgerLog{cfg.logger})
	}
	if cfg.tune != nil {
		bo = cfg.tune(bo)
	}
	db, err := kv.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", dir, err)
	}
	if err := checkLayout(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %q: %w", dir, err)
	}
	b := &Badger{db: db}
	b.be = b
	b.threads = cfg.threads
	return b, nil
}

// checkLayout records the layout version in a new database and refuses a
// database written with another.
func checkLayout(db *badger.DB) error {
	return db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keyLayout))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set([]byte(keyLayout), binary.LittleEndian.AppendUint32(nil, layoutVersion))
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 4 || binary.LittleEndian.Uint32(v) != layoutVersion {
				return fmt.Errorf("%w: database layout %x, this store reads %d", ErrCorrupt, v, layoutVersion)
			}
			return nil
		})
	})
}

// DB returns the underlying database. Writing through it bypasses every
// check of this package; tests use it to inject faults.
func (b *Badger) DB() *badger.DB { return b.db }

func chunkKey(id ChunkID) []byte {
	return append([]byte{prefixChunk}, id[:]...)
}

func manifestKey(job spec.JobID, step int64) []byte {
	k := append([]byte{prefixManifest}, job[:]...)
	return binary.BigEndian.AppendUint64(k, uint64(step))
}

// update runs fn in a read-write transaction, retrying when it lost a race
// with another transaction over a key.
func (b *Badger) update(fn func(txn *badger.Txn) error) error {
	for attempt := 0; ; attempt++ {
		err := b.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) || attempt == conflictRetries {
			return err
		}
	}
}

func notFound(err error) error {
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	return err
}

// badgerChunks batches chunk writes in a badger WriteBatch: one pass
// through badger's write pipeline for a whole checkpoint instead of a
// transaction per chunk. WriteBatch does no conflict detection; none is
// needed: writers of one ID write identical bytes, and GC does not run
// while chunks are being written (core.gcMu).
type badgerChunks struct {
	db *badger.DB
	wb *badger.WriteBatch
}

func (b *Badger) chunkWriter() chunkWriter {
	return &badgerChunks{db: b.db, wb: b.db.NewWriteBatch()}
}

func (w *badgerChunks) put(id ChunkID, data []byte) error {
	key := chunkKey(id)
	same := false
	err := w.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { same = bytes.Equal(v, data); return nil })
	})
	if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return err
	}
	if same {
		return nil
	}
	// The batch keeps the value until it commits: give it a copy.
	return w.wb.Set(key, bytes.Clone(data))
}

func (w *badgerChunks) flush() error { return w.wb.Flush() }

func (b *Badger) viewChunk(ctx context.Context, id ChunkID, fn func([]byte) error) error {
	return b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(chunkKey(id))
		if err != nil {
			return notFound(err)
		}
		return item.Value(fn)
	})
}

func (b *Badger) hasChunk(ctx context.Context, id ChunkID) (bool, error) {
	err := b.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(chunkKey(id))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (b *Badger) commitManifest(ctx context.Context, job spec.JobID, step int64, raw []byte, refs []ChunkID) error {
	key := manifestKey(job, step)
	return b.update(func(txn *badger.Txn) error {
		// Reading the chunk keys puts them in the transaction's read set:
		// had any been deleted since, the commit would fail.
		for _, id := range refs {
			if _, err := txn.Get(chunkKey(id)); err != nil {
				return fmt.Errorf("chunk %x: %w", id[:8], notFound(err))
			}
		}
		item, err := txn.Get(key)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			write := false
			if err := item.Value(func(old []byte) error {
				var err error
				write, err = replaceManifest(old, raw)
				return err
			}); err != nil || !write {
				return err
			}
		}
		return txn.Set(key, raw)
	})
}

func (b *Badger) getManifest(ctx context.Context, job spec.JobID, step int64) ([]byte, error) {
	var raw []byte
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(manifestKey(job, step))
		if err != nil {
			return notFound(err)
		}
		raw, err = item.ValueCopy(nil)
		return err
	})
	return raw, err
}

func (b *Badger) listSteps(ctx context.Context, job spec.JobID) ([]int64, error) {
	var steps []int64
	prefix := append([]byte{prefixManifest}, job[:]...)
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Item().Key()
			if len(k) != len(prefix)+8 {
				continue
			}
			steps = append(steps, int64(binary.BigEndian.Uint64(k[len(prefix):])))
		}
		return nil
	})
	return steps, err
}

func (b *Badger) deleteManifest(ctx context.Context, job spec.JobID, step int64) error {
	key := manifestKey(job, step)
	return b.update(func(txn *badger.Txn) error {
		if _, err := txn.Get(key); err != nil {
			return notFound(err)
		}
		return txn.Delete(key)
	})
}

func (b *Badger) forEachManifest(ctx context.Context, fn func(spec.JobID, int64, []byte) error) error {
	return b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixManifest}, PrefetchValues: true, PrefetchSize: 16})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			k := item.Key()
			var job spec.JobID
			if len(k) != 1+len(job)+8 {
				return fmt.Errorf("%w: manifest key %x", ErrCorrupt, k)
			}
			copy(job[:], k[1:])
			step := int64(binary.BigEndian.Uint64(k[1+len(job):]))
			if err := item.Value(func(raw []byte) error { return fn(job, step, raw) }); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *Badger) forEachChunk(ctx context.Context, fn func(ChunkID) error) error {
	return b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixChunk}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Item().Key()
			var id ChunkID
			if len(k) != 1+len(id) {
				return fmt.Errorf("%w: chunk key %x", ErrCorrupt, k)
			}
			copy(id[:], k[1:])
			if err := fn(id); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *Badger) deleteChunks(ctx context.Context, ids []ChunkID) (int, int64, error) {
	removed, freed := 0, int64(0)
	for len(ids) > 0 {
		if err := ctx.Err(); err != nil {
			return removed, freed, err
		}
		batch := ids[:min(deleteBatch, len(ids))]
		ids = ids[len(batch):]
		var n int
		var size int64
		err := b.update(func(txn *badger.Txn) error {
			n, size = 0, 0
			for _, id := range batch {
				key := chunkKey(id)
				item, err := txn.Get(key)
				if errors.Is(err, badger.ErrKeyNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if err := item.Value(func(v []byte) error { size += int64(len(v)); return nil }); err != nil {
					return err
				}
				if err := txn.Delete(key); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return removed, freed, err
		}
		removed += n
		freed += size
	}
	return removed, freed, nil
}

func (b *Badger) stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			switch item.Key()[0] {
			case prefixChunk:
				s.Chunks++
				// ValueSize is only an estimate for values in the value
				// log: read the length.
				if err := item.Value(func(v []byte) error { s.ChunkBytes += int64(len(v)); return nil }); err != nil {
					return err
				}
			case prefixManifest:
				s.Manifests++
			}
		}
		return nil
	})
	return s, err
}

func (b *Badger) sync() error { return b.db.Sync() }

func (b *Badger) compact() error {
	for {
		err := b.db.RunValueLogGC(0.5)
		switch {
		case err == nil:
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrGCInMemoryMode), errors.Is(err, badger.ErrRejected):
			return nil
		default:
			return err
		}
	}
}

func (b *Badger) close() error { return b.db.Close() }
