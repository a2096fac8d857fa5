package store

import "github.com/beluga-compute/beluga/spec"

// Test-only access to raw storage, for fault injection.

var (
	ChunkKey    = chunkKey
	ManifestKey = manifestKey
)

// SetRawChunk stores data under id without any check.
func (m *Memory) SetRawChunk(id ChunkID, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chunks[id] = append([]byte{}, data...)
	return nil
}

// SetRawManifest stores raw as the manifest of (job, step) without any check.
func (m *Memory) SetRawManifest(job spec.JobID, step int64, raw []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.manifests[manifestAddr{job, step}] = append([]byte{}, raw...)
	return nil
}

// ChunkCount is chunkCount, for tests.
var ChunkCount = chunkCount
