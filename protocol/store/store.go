package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// ChunkID is a chunk's content address: its leaf hash in the
// "beluga/chunks/v1" tree of SPEC.md §11, commit.ChunkTree.Leaf(chunk).
type ChunkID = merkle.Digest

// ChunkIDOf returns the ID of data.
func ChunkIDOf(data []byte) ChunkID { return commit.ChunkTree.Leaf(data) }

// Store is content-addressed chunk storage.
type Store interface {
	// Put stores data (at most commit.ChunkBytes) and returns its ID. It is
	// idempotent and stores each content once; if the bytes stored under
	// that ID had rotted, Put rewrites them.
	Put(ctx context.Context, data []byte) (ChunkID, error)
	// Get returns the chunk with that ID, ErrNotFound if there is none, or
	// ErrCorrupt if the stored bytes do not hash to id: it never returns
	// bytes it has not verified.
	Get(ctx context.Context, id ChunkID) ([]byte, error)
	// Has reports whether a chunk is stored under id, without reading or
	// verifying it.
	Has(ctx context.Context, id ChunkID) (bool, error)
}

// CheckpointStore keeps checkpoints as manifests over a chunk Store.
type CheckpointStore interface {
	Store
	// PutCheckpoint stores st as the checkpoint of job at st.Step, writing
	// only the chunks not already stored, and returns its manifest. Storing
	// the same state again is a no-op; a different state at the same step
	// is ErrConflict.
	PutCheckpoint(ctx context.Context, job spec.JobID, st *spec.State) (Manifest, error)
	// GetCheckpoint rebuilds the state of job after step steps, which must
	// have exactly the tensors s.NewState() has. Every chunk is verified and
	// the state digest is recomputed; on any mismatch it returns an error
	// and no state.
	GetCheckpoint(ctx context.Context, s *spec.Spec, job spec.JobID, step int64) (*spec.State, error)
	// GetState rebuilds the checkpoint of job at step into a state with
	// exactly template's tensors: names, shapes and element types, in
	// order (template's data is not read; for a GPT, spec.GPTTensors of
	// any state of its config). It verifies as GetCheckpoint does.
	GetState(ctx context.Context, job spec.JobID, step int64, template *spec.State) (*spec.State, error)
	// Manifest returns the verified manifest of the checkpoint at step.
	Manifest(ctx context.Context, job spec.JobID, step int64) (Manifest, error)
	// ListCheckpoints returns the steps with a checkpoint of job, ascending.
	ListCheckpoints(ctx context.Context, job spec.JobID) ([]int64, error)
	// DeleteCheckpoint removes a manifest (ErrNotFound if absent); its
	// chunks stay until GC finds them unreferenced.
	DeleteCheckpoint(ctx context.Context, job spec.JobID, step int64) error
	// GC deletes every chunk that no manifest references and reports how
	// many and how many bytes; see the package documentation.
	GC(ctx context.Context) (removedChunks int, freedBytes int64, err error)
	// Stats counts what is stored.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the store; later calls return ErrClosed. Closing
	// twice is not an error.
	Close() error
}

// Stats counts the contents of a store.
type Stats struct {
	Chunks     int   // stored chunks, each once
	ChunkBytes int64 // their total length
	Manifests  int   // stored checkpoints, all jobs
}

var (
	_ CheckpointStore = (*Badger)(nil)
	_ CheckpointStore = (*Memory)(nil)
)

// Option configures Open and NewMemory.
type Option func(*config)

type config struct {
	threads  int
	inMemory bool
	logger   *slog.Logger
	tune     func(badger.Options) badger.Options
}

func newConfig(opts []Option) config {
	c := config{threads: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithThreads sets how many goroutines hash, write and read the chunks of a
// checkpoint (default runtime.GOMAXPROCS(0); n < 1 keeps the default).
func WithThreads(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.threads = n
		}
	}
}

// WithInMemory makes Open keep everything in memory (badger's InMemory
// mode; dir must be ""). For tests. NewMemory ignores it.
func WithInMemory() Option { return func(c *config) { c.inMemory = true } }

// WithLogger sends badger's log to l (default: discarded): each of its
// lines becomes a record at the matching level whose message is the line
// and whose attribute "component" is "badger". NewMemory ignores it.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// badgerLog adapts a *slog.Logger to badger.Logger.
type badgerLog struct{ l *slog.Logger }

func (b badgerLog) log(level slog.Level, format string, args []any) {
	b.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (b badgerLog) Errorf(format string, args ...any)   { b.log(slog.LevelError, format, args) }
func (b badgerLog) Warningf(format string, args ...any) { b.log(slog.LevelWarn, format, args) }
func (b badgerLog) Infof(format string, args ...any)    { b.log(slog.LevelInfo, format, args) }
func (b badgerLog) Debugf(format string, args ...any)   { b.log(slog.LevelDebug, format, args) }

// WithBadgerOptions lets f adjust the badger options after this package has
// set its own (see Open). NewMemory ignores it.
func WithBadgerOptions(f func(badger.Options) badger.Options) Option {
	return func(c *config) { c.tune = f }
}

// backend is the storage under core: raw bytes, no verification. All
// methods are safe for concurrent use.
type backend interface {
	// chunkWriter starts a batch of chunk writes.
	chunkWriter() chunkWriter
	// viewChunk calls fn with the stored bytes of id (ErrNotFound if none);
	// fn must not retain them.
	viewChunk(ctx context.Context, id ChunkID, fn func(data []byte) error) error
	hasChunk(ctx context.Context, id ChunkID) (bool, error)
	// commitManifest stores raw as the manifest of (job, step) in one
	// atomic step with checking that every chunk in refs is stored
	// (ErrNotFound otherwise). An existing manifest there is resolved by
	// replaceManifest.
	commitManifest(ctx context.Context, job spec.JobID, step int64, raw []byte, refs []ChunkID) error
	getManifest(ctx context.Context, job spec.JobID, step int64) ([]byte, error)
	listSteps(ctx context.Context, job spec.JobID) ([]int64, error)
	deleteManifest(ctx context.Context, job spec.JobID, step int64) error
	// forEachManifest calls fn with every stored manifest (raw must not be
	// retained).
	forEachManifest(ctx context.Context, fn func(job spec.JobID, step int64, raw []byte) error) error
	// forEachChunk calls fn with the ID of every stored chunk.
	forEachChunk(ctx context.Context, fn func(id ChunkID) error) error
	// deleteChunks deletes the chunks (absent ones are skipped) and reports
	// how many it deleted and their total length.
	deleteChunks(ctx context.Context, ids []ChunkID) (int, int64, error)
	stats(ctx context.Context) (Stats, error)
	// sync makes every write so far durable.
	sync() error
	// compact reclaims the space of deleted data (badger's value-log GC).
	compact() error
	close() error
}

// chunkWriter stores chunks in one batch. put is safe for concurrent use;
// a chunk is stored (durably only after backend.sync) once flush returns
// nil. A failed batch may have stored some of its chunks: they are garbage
// until a manifest references them.
type chunkWriter interface {
	// put stores data under id unless identical bytes are there already
	// (so a rotted chunk is rewritten). It does not retain data.
	put(id ChunkID, data []byte) error
	flush() error
}

// replaceManifest decides what committing raw over old means: identical
// bytes are a no-op (write false), a different well-formed manifest is
// ErrConflict, and one that no longer decodes is replaced (write true).
func replaceManifest(old, raw []byte) (write bool, err error) {
	if string(old) == string(raw) {
		return false, nil
	}
	if m, err := DecodeManifest(old); err == nil {
		return false, fmt.Errorf("%w: stored digest %x", ErrConflict, m.Digest[:8])
	}
	return true, nil
}

// core implements CheckpointStore over a backend; Badger and Memory embed
// it, so verification lives in one place.
type core struct {
	be      backend
	threads int
	// gcMu keeps GC's mark and sweep apart from writes: Put, and
	// PutCheckpoint from its first chunk write to its manifest commit, hold
	// it shared; GC holds it exclusively. So no manifest commits, and no
	// chunk is written, between GC reading the manifests and deleting what
	// they do not reference. (A single process owns the store: badger locks
	// its directory.)
	gcMu sync.RWMutex
	// life is held shared by every call in flight and exclusively by Close,
	// so the backend is never used after it is closed.
	life   sync.RWMutex
	closed bool // guarded by life
}

// enter admits a call: on success the caller must call c.life.RUnlock.
func (c *core) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.life.RLock()
	if c.closed {
		c.life.RUnlock()
		return ErrClosed
	}
	return nil
}

// Close implements CheckpointStore.
func (c *core) Close() error {
	c.life.Lock() // waits for calls in flight
	defer c.life.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.be.close()
}

// Put implements Store.
func (c *core) Put(ctx context.Context, data []byte) (ChunkID, error) {
	if len(data) > commit.ChunkBytes {
		return ChunkID{}, fmt.Errorf("%w: chunk of %d bytes, the limit is %d", ErrTooLarge, len(data), commit.ChunkBytes)
	}
	if err := c.enter(ctx); err != nil {
		return ChunkID{}, err
	}
	defer c.life.RUnlock()
	id := ChunkIDOf(data)
	c.gcMu.RLock()
	defer c.gcMu.RUnlock()
	w := c.be.chunkWriter()
	err := w.put(id, data)
	if ferr := w.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return ChunkID{}, fmt.Errorf("put chunk %x: %w", id[:8], err)
	}
	return id, nil
}

// Get implements Store.
func (c *core) Get(ctx context.Context, id ChunkID) ([]byte, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	defer c.life.RUnlock()
	var out []byte
	err := c.be.viewChunk(ctx, id, func(data []byte) error {
		if err := verifyChunk(id, data); err != nil {
			return err
		}
		out = append(make([]byte, 0, len(data)), data...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get chunk %x: %w", id[:8], err)
	}
	return out, nil
}

func verifyChunk(id ChunkID, data []byte) error {
	if len(data) > commit.ChunkBytes {
		return fmt.Errorf("%w: stored chunk has %d bytes", ErrCorrupt, len(data))
	}
	if got := ChunkIDOf(data); got != id {
		return fmt.Errorf("%w: stored bytes hash to %x", ErrCorrupt, got[:8])
	}
	return nil
}

// Has implements Store.
func (c *core) Has(ctx context.Context, id ChunkID) (bool, error) {
	if err := c.enter(ctx); err != nil {
		return false, err
	}
	defer c.life.RUnlock()
	return c.be.hasChunk(ctx, id)
}

// checkState rejects states that cannot be a checkpoint before anything is
// written.
func checkState(st *spec.State) error {
	if st == nil {
		return fmt.Errorf("%w: nil state", ErrInvalidState)
	}
	if st.Step < 0 {
		return fmt.Errorf("%w: step %d is negative", ErrInvalidState, st.Step)
	}
	if len(st.Tensors) > MaxTensors {
		return fmt.Errorf("%w: %d tensors, the limit is %d", ErrTooLarge, len(st.Tensors), MaxTensors)
	}
	total := int64(0)
	for i, t := range st.Tensors {
		if len(t.Name) == 0 || len(t.Name) > MaxNameLen {
			return fmt.Errorf("%w: tensor %d has a name of %d bytes (1 to %d allowed)", ErrInvalidState, i, len(t.Name), MaxNameLen)
		}
		if len(t.Shape) > MaxRank {
			return fmt.Errorf("%w: tensor %q has rank %d, the limit is %d", ErrInvalidState, t.Name, len(t.Shape), MaxRank)
		}
		dtype, ok := t.DType.Known()
		if !ok {
			return fmt.Errorf("%w: tensor %q has element type %d, not int32 (1) or int64 (2)", ErrInvalidState, t.Name, uint8(t.DType))
		}
		n, err := shapeElems(t.Shape)
		if err != nil {
			return fmt.Errorf("%w: tensor %q: %w", ErrInvalidState, t.Name, err)
		}
		words := int64(dtype.Size() / 4)
		if n*words != int64(len(t.Data)) {
			return fmt.Errorf("%w: tensor %q (%s, shape %v) holds %d words, want %d", ErrInvalidState, t.Name, dtype, t.Shape, len(t.Data), n*words)
		}
		if total += chunkCount(t.ByteLen()); total > MaxChunks {
			return fmt.Errorf("%w: state needs more than %d chunks", ErrTooLarge, MaxChunks)
		}
	}
	return nil
}

// chunkRef names chunk c of tensor t.
type chunkRef struct{ t, c int }

// chunkRefs lists the chunks of tensors whose byte lengths are nbytes.
func chunkRefs(nbytes func(t int) int64, tensors int) []chunkRef {
	var refs []chunkRef
	for t := range tensors {
		for c := range chunkCount(nbytes(t)) {
			refs = append(refs, chunkRef{t, int(c)})
		}
	}
	return refs
}

// wordsPerChunk is the spec.Tensor.Data words of one full chunk.
const wordsPerChunk = commit.ChunkBytes / 4

// PutCheckpoint implements CheckpointStore.
func (c *core) PutCheckpoint(ctx context.Context, job spec.JobID, st *spec.State) (Manifest, error) {
	if err := checkState(st); err != nil {
		return Manifest{}, err
	}
	if err := c.enter(ctx); err != nil {
		return Manifest{}, err
	}
	defer c.life.RUnlock()
	c.gcMu.RLock()
	defer c.gcMu.RUnlock()
	m, err := c.writeChunks(ctx, job, st)
	if err != nil {
		return Manifest{}, err
	}
	if err := c.commit(ctx, &m); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// writeChunks hashes the chunks of st in parallel, stores those not yet
// stored, and returns the manifest. The caller holds gcMu shared.
func (c *core) writeChunks(ctx context.Context, job spec.JobID, st *spec.State) (Manifest, error) {
	m := Manifest{Job: job, Step: st.Step, Tensors: make([]TensorManifest, len(st.Tensors))}
	for i := range st.Tensors {
		t := &st.Tensors[i]
		dtype, _ := t.DType.Known()
		bytes := t.ByteLen()
		m.Tensors[i] = TensorManifest{Name: t.Name, DType: dtype, Shape: append([]int(nil), t.Shape...), Bytes: bytes, Chunks: make([]ChunkID, chunkCount(bytes))}
	}
	refs := chunkRefs(func(t int) int64 { return m.Tensors[t].Bytes }, len(m.Tensors))
	var mu sync.Mutex
	claimed := make(map[ChunkID]struct{}) // IDs some worker has stored or is storing
	w := c.be.chunkWriter()
	err := c.parallel(ctx, len(refs), func(ctx context.Context, buf *[]byte, i int) error {
		r := refs[i]
		data := st.Tensors[r.t].Data
		*buf = commit.TensorBytes((*buf)[:0], data[r.c*wordsPerChunk:min((r.c+1)*wordsPerChunk, len(data))])
		id := ChunkIDOf(*buf)
		m.Tensors[r.t].Chunks[r.c] = id
		mu.Lock()
		_, dup := claimed[id]
		claimed[id] = struct{}{}
		mu.Unlock()
		if dup {
			return nil
		}
		if err := w.put(id, *buf); err != nil {
			return fmt.Errorf("put chunk %d of tensor %q: %w", r.c, m.Tensors[r.t].Name, err)
		}
		return nil
	})
	if ferr := w.flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write chunks: %w", ferr)
	}
	if err != nil {
		return Manifest{}, err
	}
	leaves := make([]merkle.Digest, len(m.Tensors))
	for i := range m.Tensors {
		t := &m.Tensors[i]
		t.ChunkRoot = commit.ChunkTree.Root(t.Chunks)
		leaves[i] = commit.TensorTree.Leaf(commit.TensorLeaf(t.Name, t.DType, t.Shape, t.Bytes, t.ChunkRoot))
	}
	m.StateRoot = commit.TensorTree.Root(leaves)
	m.Digest = commit.Digest(job, st.Step, m.StateRoot)
	return m, nil
}

// commit makes the chunks durable, then commits the manifest (checking in
// the same transaction that its chunks are there) and makes it durable. The
// caller holds gcMu shared.
func (c *core) commit(ctx context.Context, m *Manifest) error {
	raw, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if err := c.be.sync(); err != nil {
		return fmt.Errorf("sync chunks: %w", err)
	}
	if err := c.be.commitManifest(ctx, m.Job, m.Step, raw, m.ChunkIDs()); err != nil {
		return fmt.Errorf("commit manifest of job %s step %d: %w", m.Job, m.Step, err)
	}
	if err := c.be.sync(); err != nil {
		return fmt.Errorf("sync manifest: %w", err)
	}
	return nil
}

// parallel runs work(i) for i in [0, n) on up to c.threads goroutines, each
// with its own chunk buffer, and returns the first error.
func (c *core) parallel(ctx context.Context, n int, work func(ctx context.Context, buf *[]byte, i int) error) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range max(1, min(c.threads, n)) {
		wg.Go(func() {
			buf := make([]byte, 0, commit.ChunkBytes)
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := work(ctx, &buf, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return parent.Err()
}

// Manifest implements CheckpointStore.
func (c *core) Manifest(ctx context.Context, job spec.JobID, step int64) (Manifest, error) {
	if err := c.enter(ctx); err != nil {
		return Manifest{}, err
	}
	defer c.life.RUnlock()
	return c.manifest(ctx, job, step)
}

func (c *core) manifest(ctx context.Context, job spec.JobID, step int64) (Manifest, error) {
	raw, err := c.be.getManifest(ctx, job, step)
	if err != nil {
		return Manifest{}, fmt.Errorf("checkpoint of job %s step %d: %w", job, step, err)
	}
	m, err := DecodeManifest(raw)
	if err != nil {
		return Manifest{}, fmt.Errorf("checkpoint of job %s step %d: %w", job, step, err)
	}
	if m.Job != job || m.Step != step {
		return Manifest{}, fmt.Errorf("%w: manifest stored at job %s step %d is for job %s step %d", ErrMismatch, job, step, m.Job, m.Step)
	}
	return m, nil
}

// GetCheckpoint implements CheckpointStore.
func (c *core) GetCheckpoint(ctx context.Context, s *spec.Spec, job spec.JobID, step int64) (*spec.State, error) {
	id, err := s.ID()
	if err != nil {
		return nil, fmt.Errorf("job ID of the spec: %w", err)
	}
	if id != job {
		return nil, fmt.Errorf("%w: the spec is job %s, not %s", ErrMismatch, id, job)
	}
	if step < 0 || step > s.Steps {
		return nil, fmt.Errorf("%w: step %d outside the job's [0, %d]", ErrMismatch, step, s.Steps)
	}
	return c.getState(ctx, job, step, s.NewState(), "the spec")
}

// GetState implements CheckpointStore.
func (c *core) GetState(ctx context.Context, job spec.JobID, step int64, template *spec.State) (*spec.State, error) {
	if err := checkState(template); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	// A fresh state with template's tensors; template's data stays unread.
	st := &spec.State{Tensors: make([]spec.Tensor, len(template.Tensors))}
	for i, t := range template.Tensors {
		st.Tensors[i] = spec.Tensor{Name: t.Name, Shape: slices.Clone(t.Shape), DType: t.DType, Data: make([]int32, len(t.Data))}
	}
	return c.getState(ctx, job, step, st, "the template")
}

// getState fills st, whose tensors say what the checkpoint must hold
// (named by what, for errors), from the checkpoint of job at step.
func (c *core) getState(ctx context.Context, job spec.JobID, step int64, st *spec.State, what string) (*spec.State, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	defer c.life.RUnlock()
	m, err := c.manifest(ctx, job, step)
	if err != nil {
		return nil, err
	}
	// The spec fixes names, element types and shapes; a manifest that
	// differs is refused before anything is read on its say-so.
	st.Step = step
	if len(m.Tensors) != len(st.Tensors) {
		return nil, fmt.Errorf("%w: manifest has %d tensors, %s %d", ErrMismatch, len(m.Tensors), what, len(st.Tensors))
	}
	for i := range st.Tensors {
		t, mt := &st.Tensors[i], &m.Tensors[i]
		td, _ := t.DType.Known()
		md, _ := mt.DType.Known()
		if mt.Name != t.Name || md != td || !slices.Equal(mt.Shape, t.Shape) || mt.Bytes != t.ByteLen() {
			return nil, fmt.Errorf("%w: tensor %d is %q %s %v, %s has %q %s %v", ErrMismatch, i, mt.Name, md, mt.Shape, what, t.Name, td, t.Shape)
		}
	}
	refs := chunkRefs(func(t int) int64 { return m.Tensors[t].Bytes }, len(m.Tensors))
	err = c.parallel(ctx, len(refs), func(ctx context.Context, _ *[]byte, i int) error {
		r := refs[i]
		t := &m.Tensors[r.t]
		id := t.Chunks[r.c]
		want := chunkLen(t.Bytes, r.c)
		dst := st.Tensors[r.t].Data[r.c*wordsPerChunk:]
		err := c.be.viewChunk(ctx, id, func(data []byte) error {
			if err := verifyChunk(id, data); err != nil {
				return err
			}
			if len(data) != want {
				return fmt.Errorf("%w: chunk has %d bytes, its place needs %d", ErrCorrupt, len(data), want)
			}
			for k := range want / 4 {
				dst[k] = int32(binary.LittleEndian.Uint32(data[4*k:]))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("chunk %d (%x) of tensor %q: %w", r.c, id[:8], t.Name, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint of job %s step %d: %w", job, step, err)
	}
	// Independent of the manifest's own arithmetic: hash the rebuilt state
	// as SPEC.md §11 defines it.
	h := commit.Hasher{Threads: c.threads}
	if got := h.StateDigest(job, st); got != m.Digest {
		return nil, fmt.Errorf("%w: checkpoint of job %s step %d rebuilds to digest %x, the manifest says %x", ErrCorrupt, job, step, got[:8], m.Digest[:8])
	}
	return st, nil
}

// ListCheckpoints implements CheckpointStore.
func (c *core) ListCheckpoints(ctx context.Context, job spec.JobID) ([]int64, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	defer c.life.RUnlock()
	return c.be.listSteps(ctx, job)
}

// DeleteCheckpoint implements CheckpointStore. It needs no coordination with
// GC: a manifest deleted after GC's mark only keeps its chunks one GC longer.
func (c *core) DeleteCheckpoint(ctx context.Context, job spec.JobID, step int64) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	defer c.life.RUnlock()
	if err := c.be.deleteManifest(ctx, job, step); err != nil {
		return fmt.Errorf("delete checkpoint of job %s step %d: %w", job, step, err)
	}
	return nil
}

// Stats implements CheckpointStore.
func (c *core) Stats(ctx context.Context) (Stats, error) {
	if err := c.enter(ctx); err != nil {
		return Stats{}, err
	}
	defer c.life.RUnlock()
	return c.be.stats(ctx)
}

// PutManifest commits a manifest whose chunks were stored with Put (a
// checkpoint fetched from peers chunk by chunk): the manifest is verified,
// and the backend checks, in the same transaction, that every chunk is
// there. Until it is committed the chunks are unreferenced, so a GC in
// between would collect them: callers put chunks and the manifest without
// running GC in between (the chunks are re-fetched otherwise).
func (c *core) PutManifest(ctx context.Context, m Manifest) error {
	if err := m.Verify(); err != nil {
		return err
	}
	if err := c.enter(ctx); err != nil {
		return err
	}
	defer c.life.RUnlock()
	c.gcMu.RLock()
	defer c.gcMu.RUnlock()
	return c.commit(ctx, &m)
}
