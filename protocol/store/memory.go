package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/beluga-compute/beluga/spec"
)

// Memory is a CheckpointStore held in maps: for tests and short-lived
// tools. It keeps manifests encoded, as Badger does, so both run the same
// decoding and verification.
type Memory struct {
	core
	mu        sync.RWMutex
	chunks    map[ChunkID][]byte
	manifests map[manifestAddr][]byte
}

type manifestAddr struct {
	job  spec.JobID
	step int64
}

// NewMemory returns an empty Memory store. Of the options only WithThreads
// applies.
func NewMemory(opts ...Option) *Memory {
	cfg := newConfig(opts)
	m := &Memory{chunks: make(map[ChunkID][]byte), manifests: make(map[manifestAddr][]byte)}
	m.be = m
	m.threads = cfg.threads
	return m
}

// chunkWriter writes straight into the map: there is nothing to batch.
func (m *Memory) chunkWriter() chunkWriter { return memoryChunks{m} }

type memoryChunks struct{ m *Memory }

func (w memoryChunks) put(id ChunkID, data []byte) error {
	m := w.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.chunks[id]; ok && bytes.Equal(old, data) {
		return nil
	}
	m.chunks[id] = append([]byte{}, data...)
	return nil
}

func (w memoryChunks) flush() error { return nil }

func (m *Memory) viewChunk(ctx context.Context, id ChunkID, fn func([]byte) error) error {
	m.mu.RLock()
	data, ok := m.chunks[id]
	m.mu.RUnlock()
	if !ok {
		return ErrNotFound
	}
	// Stored slices are never written after they are stored (putChunk and
	// setRawChunk replace them), so fn may read data without the lock.
	return fn(data)
}

func (m *Memory) hasChunk(ctx context.Context, id ChunkID) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.chunks[id]
	return ok, nil
}

func (m *Memory) commitManifest(ctx context.Context, job spec.JobID, step int64, raw []byte, refs []ChunkID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range refs {
		if _, ok := m.chunks[id]; !ok {
			return fmt.Errorf("chunk %x: %w", id[:8], ErrNotFound)
		}
	}
	addr := manifestAddr{job, step}
	if old, ok := m.manifests[addr]; ok {
		if write, err := replaceManifest(old, raw); err != nil || !write {
			return err
		}
	}
	m.manifests[addr] = bytes.Clone(raw)
	return nil
}

func (m *Memory) getManifest(ctx context.Context, job spec.JobID, step int64) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	raw, ok := m.manifests[manifestAddr{job, step}]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(raw), nil
}

func (m *Memory) listSteps(ctx context.Context, job spec.JobID) ([]int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var steps []int64
	for a := range m.manifests {
		if a.job == job {
			steps = append(steps, a.step)
		}
	}
	slices.Sort(steps)
	return steps, nil
}

func (m *Memory) deleteManifest(ctx context.Context, job spec.JobID, step int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	addr := manifestAddr{job, step}
	if _, ok := m.manifests[addr]; !ok {
		return ErrNotFound
	}
	delete(m.manifests, addr)
	return nil
}

func (m *Memory) forEachManifest(ctx context.Context, fn func(spec.JobID, int64, []byte) error) error {
	m.mu.RLock()
	addrs := make([]manifestAddr, 0, len(m.manifests))
	raws := make(map[manifestAddr][]byte, len(m.manifests))
	for a, raw := range m.manifests {
		addrs = append(addrs, a)
		raws[a] = raw
	}
	m.mu.RUnlock()
	slices.SortFunc(addrs, func(a, b manifestAddr) int {
		return cmp.Or(bytes.Compare(a.job[:], b.job[:]), cmp.Compare(a.step, b.step))
	})
	for _, a := range addrs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(a.job, a.step, raws[a]); err != nil {
			return err
		}
	}
	return nil
}

func (m *Memory) forEachChunk(ctx context.Context, fn func(ChunkID) error) error {
	m.mu.RLock()
	ids := make([]ChunkID, 0, len(m.chunks))
	for id := range m.chunks {
		ids = append(ids, id)
	}
	m.mu.RUnlock()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

func (m *Memory) deleteChunks(ctx context.Context, ids []ChunkID) (int, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, size := 0, int64(0)
	for _, id := range ids {
		if data, ok := m.chunks[id]; ok {
			n++
			size += int64(len(data))
			delete(m.chunks, id)
		}
	}
	return n, size, nil
}

func (m *Memory) stats(ctx context.Context) (Stats, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := Stats{Chunks: len(m.chunks), Manifests: len(m.manifests)}
	for _, data := range m.chunks {
		s.ChunkBytes += int64(len(data))
	}
	return s, nil
}

func (m *Memory) sync() error    { return nil }
func (m *Memory) compact() error { return nil }

func (m *Memory) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chunks, m.manifests = nil, nil
	return nil
}
