package store

import (
	"context"
	"fmt"

	"github.com/beluga-compute/beluga/spec"
)

// GC implements CheckpointStore: mark and sweep. Mark decodes every
// manifest and collects the chunk IDs they reference; sweep deletes every
// stored chunk outside that set. Both run under gcMu held exclusively, so
// no manifest commits and no chunk is written in between; then the backend
// reclaims space (badger: RunValueLogGC(0.5) until it has nothing to do)
// with writers admitted again.
//
// A manifest that no longer decodes stops GC with ErrCorrupt before
// anything is deleted: GC cannot tell what it references, and deleting is
// the one step that cannot be undone. Delete the checkpoint to let GC run.
func (c *core) GC(ctx context.Context) (removedChunks int, freedBytes int64, err error) {
	if err := c.enter(ctx); err != nil {
		return 0, 0, err
	}
	defer c.life.RUnlock()
	c.gcMu.Lock()
	live, err := c.mark(ctx)
	if err == nil {
		removedChunks, freedBytes, err = c.sweep(ctx, live, -1)
	}
	c.gcMu.Unlock()
	if err != nil {
		return removedChunks, freedBytes, fmt.Errorf("gc: %w", err)
	}
	if err := c.be.compact(); err != nil {
		return removedChunks, freedBytes, fmt.Errorf("gc: reclaim space: %w", err)
	}
	return removedChunks, freedBytes, nil
}

// mark returns the IDs of all chunks referenced by a stored manifest. The
// caller holds gcMu exclusively.
func (c *core) mark(ctx context.Context) (map[ChunkID]struct{}, error) {
	live := make(map[ChunkID]struct{})
	err := c.be.forEachManifest(ctx, func(job spec.JobID, step int64, raw []byte) error {
		m, err := DecodeManifest(raw)
		if err != nil {
			return fmt.Errorf("manifest of job %s step %d: %w (GC deletes nothing while a manifest is unreadable; delete it)", job, step, err)
		}
		for _, t := range m.Tensors {
			for _, id := range t.Chunks {
				live[id] = struct{}{}
			}
		}
		return nil
	})
	return live, err
}

// sweep deletes stored chunks not in live, at most limit of them when
// limit ≥ 0 (tests use it to stop midway). The caller holds gcMu
// exclusively.
func (c *core) sweep(ctx context.Context, live map[ChunkID]struct{}, limit int) (int, int64, error) {
	var dead []ChunkID
	err := c.be.forEachChunk(ctx, func(id ChunkID) error {
		if _, ok := live[id]; !ok {
			dead = append(dead, id)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if limit >= 0 && len(dead) > limit {
		dead = dead[:limit]
	}
	return c.be.deleteChunks(ctx, dead)
}
