// Package exchange moves checkpoints between peers, BitTorrent-like: any
// peer that holds a checkpoint serves its manifest and chunks from its
// content-addressed store, and a fetcher pulls chunks from several holders
// at once, checking every chunk against its hash and the manifest against
// the committed state digest, so no holder has to be trusted.
//
// # Who holds what
//
// Holders are found through the coordinator's index, not a DHT: solvers
// announce each checkpoint (CheckpointAnnounce, one record per checkpoint,
// not per chunk) to the coordinator they already report to, and assignments
// and audit tasks carry the holders. A kad-dht provider record per chunk
// would be ~1,600 records for a 100 MiB checkpoint, each a ~20-peer
// lookup, for peers that already share a coordinator; a record per
// manifest makes the coordinator's index small (jobs × checkpoints) and
// its lookups free. The bytes still flow peer to peer: the coordinator
// never serves a chunk (for a peer behind NAT it may relay the encrypted
// stream until hole punching connects the two directly).
//
// # Who may fetch
//
// A checkpoint is a job's weights and momenta in the clear, so a holder
// serves it only to peers the coordinator assigned to that job: the
// verifier auditing it, the replica keeping it, the solver resuming it.
// The coordinator seals a wire.Grant (grantee, expiry; an envelope of type
// wire.TypeGrant bound to the job and signed by its libp2p key, IssueGrant)
// into the audit task, replication request or assignment; the grantee
// presents it with every ManifestRequest and ChunkRequest; the holder
// checks (CheckGrant) that the coordinator it knows signed it, for the
// request's job, to the peer at the other end of the stream, and that it
// has not expired, and answers anything else with a failed Ack naming why.
// Chunks are served only as part of the requested checkpoint of that job,
// so a grant for one job opens no chunk of another. Expiry is checked
// against the holder's clock: grants last long enough (GrantTTL) that
// clocks minutes apart do not matter.
//
// Confidential jobs (SPEC.md §17) are never granted: their state never
// leaves their solver, which serves no checkpoint of them at all.
//
// # Wire
//
// Protocol wire.ExchangeProtocol. A ManifestRequest (step, digest, grant)
// is answered by a Manifest or a failed Ack. A ChunkRequest (step, at most
// wire.MaxChunksPerRequest hashes, grant) is answered by a ChunkResponse
// listing the hashes and sizes, followed by one raw frame per chunk: the
// signed response binds the chunk hashes, and each chunk is checked
// against its hash, so chunk bytes need no second signature.
package exchange

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
)

// Source is what a holder serves from: each job's verified manifests and
// chunks. A holder that must not serve a job (a confidential one) returns
// an error from Manifest; Serve asks Chunk only for chunks of a manifest
// it got.
type Source interface {
	Manifest(ctx context.Context, job spec.JobID, step int64) (store.Manifest, error)
	Chunk(ctx context.Context, job spec.JobID, id store.ChunkID) ([]byte, error)
}

// FromStore serves the checkpoints of every job in st.
func FromStore(st store.CheckpointStore) Source { return storeSource{st} }

type storeSource struct{ st store.CheckpointStore }

func (s storeSource) Manifest(ctx context.Context, job spec.JobID, step int64) (store.Manifest, error) {
	return s.st.Manifest(ctx, job, step)
}

func (s storeSource) Chunk(ctx context.Context, _ spec.JobID, id store.ChunkID) ([]byte, error) {
	return s.st.Get(ctx, id)
}

// ServeConfig configures a holder.
type ServeConfig struct {
	// Coordinator is the peer whose grants the holder honours; a holder
	// with none serves nobody.
	Coordinator peer.ID
	// Logger receives refused requests (default: discarded).
	Logger *slog.Logger
	// Now is the clock grants expire by (default time.Now).
	Now func() time.Time
	// Protocol is the protocol ID served (default wire.ExchangeProtocol;
	// published inference models are served on their own, so a peer can
	// serve them next to its jobs' checkpoints).
	Protocol string
}

// Serve answers exchange requests on n from st, for the peers the
// coordinator granted each job.
func Serve(n *p2p.Node, st Source, cfg ServeConfig) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	refuse := func(ctx context.Context, r *p2p.Responder, e *wire.Envelope, step int64, err error) error {
		cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "exchange refused", slog.String("peer", e.Sender.String()),
			slog.String("job", spec.JobID(e.Job).String()), slog.Int64("step", step), slog.String("err", err.Error()))
		return r.Reply(&wire.Ack{Error: err.Error()})
	}
	if cfg.Protocol == "" {
		cfg.Protocol = wire.ExchangeProtocol
	}
	n.Handle(cfg.Protocol, func(ctx context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
		job := spec.JobID(e.Job)
		switch m := m.(type) {
		case *wire.ManifestRequest:
			if err := CheckGrant(m.Grant, cfg.Coordinator, job, e.Sender, cfg.Now()); err != nil {
				return refuse(ctx, r, e, m.Step, err)
			}
			man, err := st.Manifest(ctx, job, m.Step)
			if err != nil || man.Digest != m.Digest {
				return r.Reply(&wire.Ack{Error: fmt.Sprintf("no checkpoint of step %d with that digest", m.Step)})
			}
			data, err := man.MarshalBinary()
			if err != nil {
				return err
			}
			return r.Reply(&wire.Manifest{Data: data})
		case *wire.ChunkRequest:
			if err := CheckGrant(m.Grant, cfg.Coordinator, job, e.Sender, cfg.Now()); err != nil {
				return refuse(ctx, r, e, m.Step, err)
			}
			man, err := st.Manifest(ctx, job, m.Step)
			if err != nil {
				return r.Reply(&wire.Ack{Error: fmt.Sprintf("no checkpoint of step %d", m.Step)})
			}
			of := make(map[store.ChunkID]bool)
			for _, id := range man.ChunkIDs() {
				of[id] = true
			}
			chunks := make([][]byte, len(m.Hashes))
			resp := &wire.ChunkResponse{Hashes: m.Hashes, Sizes: make([]uint32, len(m.Hashes))}
			for i, h := range m.Hashes {
				if !of[store.ChunkID(h)] {
					return refuse(ctx, r, e, m.Step, fmt.Errorf("%w: chunk %x", ErrNotInCheckpoint, h[:8]))
				}
				data, err := st.Chunk(ctx, job, store.ChunkID(h))
				if err != nil {
					return r.Reply(&wire.Ack{Error: fmt.Sprintf("chunk %x: %v", h[:8], err)})
				}
				chunks[i], resp.Sizes[i] = data, uint32(len(data))
			}
			if err := r.Reply(resp); err != nil {
				return err
			}
			for _, c := range chunks {
				if err := r.Raw(c); err != nil {
					return err
				}
			}
			return r.Flush()
		}
		return fmt.Errorf("unexpected %T", m)
	}, wire.TypeManifestRequest, wire.TypeChunkRequest)
}

// GrantTTL is how long the grants the coordinator issues last: an audit,
// a replication or a resume fetches well within it, and clocks that are
// minutes apart still agree on it.
const GrantTTL = time.Hour

// IssueGrant seals, with n's key (the coordinator's), a grant that lets
// grantee fetch job's checkpoints for ttl: the bytes to put in the
// grantee's Assign, AuditTask or replication request.
func IssueGrant(n *p2p.Node, job spec.JobID, grantee peer.ID, ttl time.Duration) ([]byte, error) {
	e, err := n.Seal(job, &wire.Grant{Grantee: grantee, Expires: time.Now().Add(ttl)})
	if err != nil {
		return nil, err
	}
	return wire.EncodeEnvelope(e)
}

// CheckGrant verifies that raw is a grant signed by coordinator for job,
// naming requester, and not expired at now. Every failure wraps
// ErrNotGranted and says why.
func CheckGrant(raw []byte, coordinator peer.ID, job spec.JobID, requester peer.ID, now time.Time) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: %w", ErrNotGranted, ErrNoGrant)
	}
	env, g, err := wire.OpenGrant(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w: %w", ErrNotGranted, ErrForgedGrant, err)
	case coordinator == "" || env.Sender != coordinator:
		return fmt.Errorf("%w: %w: signed by %s, not the coordinator", ErrNotGranted, ErrForgedGrant, env.Sender)
	case spec.JobID(env.Job) != job:
		return fmt.Errorf("%w: %w", ErrNotGranted, ErrGrantOtherJob)
	case g.Grantee != requester:
		return fmt.Errorf("%w: %w: granted to %s", ErrNotGranted, ErrGrantOtherPeer, g.Grantee)
	case !now.Before(g.Expires):
		return fmt.Errorf("%w: %w at %s", ErrNotGranted, ErrGrantExpired, g.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// FetchManifest gets the manifest of the checkpoint of job at step with
// the committed digest from the first holder that serves a valid one,
// asking holders it is connected to first (a holder that has gone away
// costs a dial timeout). o.Grant is presented to every holder.
func FetchManifest(ctx context.Context, n *p2p.Node, holders []peer.ID, job spec.JobID, step int64, digest [32]byte, o Options) (*store.Manifest, error) {
	var errs []error
	for _, h := range connectedFirst(n, holders) {
		m, err := n.Request(ctx, h, o.protocol(), job, &wire.ManifestRequest{Digest: digest, Step: step, Grant: o.Grant}, wire.TypeManifest, wire.TypeAck)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
			continue
		}
		mm, ok := m.(*wire.Manifest)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no manifest", h))
			continue
		}
		man, err := store.DecodeManifest(mm.Data)
		if err == nil {
			err = man.Verify()
		}
		if err == nil && (man.Digest != digest || man.Job != job || man.Step != step) {
			err = fmt.Errorf("manifest of another checkpoint")
		}
		if err != nil {
			n.Reject(h, fmt.Errorf("bad manifest: %w", err))
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
			continue
		}
		return &man, nil
	}
	return nil, fmt.Errorf("%w: manifest of step %d: %w", ErrNoHolder, step, errors.Join(errs...))
}

// connectedFirst returns holders with those n is connected to first, the
// order otherwise kept, n itself left out.
func connectedFirst(n *p2p.Node, holders []peer.ID) []peer.ID {
	var near, far []peer.ID
	for _, h := range holders {
		if h == n.ID() {
			continue
		}
		if n.Host.Network().Connectedness(h) == network.Connected {
			near = append(near, h)
		} else {
			far = append(far, h)
		}
	}
	return append(near, far...)
}

// Options tune a fetch.
type Options struct {
	// Batch is the number of chunks per request (default and most 64).
	Batch int
	// Streams per holder (default 2), so one request is in flight while
	// the previous one's data arrives.
	Streams int
	// Grant is the sealed grant (IssueGrant) the coordinator gave this
	// peer for the job, presented with every request.
	Grant []byte
	// Logger receives notices (a dropped holder; default: discarded).
	Logger *slog.Logger
	// Protocol is the protocol ID the holders serve (default
	// wire.ExchangeProtocol; ServeConfig.Protocol).
	Protocol string
}

func (o Options) protocol() string {
	if o.Protocol == "" {
		return wire.ExchangeProtocol
	}
	return o.Protocol
}

// FetchChunks fetches the chunks of the verified manifest man from
// holders in parallel and hands each chunk, checked against its ID, to
// sink (called from several goroutines). A holder that fails or sends a
// bad chunk is dropped and its batch goes back to the queue; the fetch
// fails only when no holder is left.
func FetchChunks(ctx context.Context, n *p2p.Node, holders []peer.ID, man *store.Manifest, sink func(store.ChunkID, []byte) error, o Options) error {
	if o.Batch <= 0 || o.Batch > wire.MaxChunksPerRequest {
		o.Batch = 64
	}
	if o.Streams <= 0 {
		o.Streams = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	job, ids := man.Job, man.ChunkIDs()
	req := func(batch []store.ChunkID) *wire.ChunkRequest {
		hs := make([][32]byte, len(batch))
		for i, id := range batch {
			hs[i] = id
		}
		return &wire.ChunkRequest{Step: man.Step, Hashes: hs, Grant: o.Grant}
	}
	holders = connectedFirst(n, holders)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := &queue{}
	for lo := 0; lo < len(ids); lo += o.Batch {
		q.push(ids[lo:min(lo+o.Batch, len(ids))])
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		sinkErr  error
		workers  = len(holders) * o.Streams
		finished = make(chan struct{})
	)
	q.cond = sync.NewCond(&q.mu)
	q.remaining = len(ids)
	q.workers = workers
	for _, h := range holders {
		for range o.Streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer q.workerDone()
				st, err := n.Open(ctx, h, o.protocol())
				if err != nil {
					o.Logger.LogAttrs(ctx, slog.LevelWarn, "exchange holder unreachable", slog.String("holder", h.String()), slog.String("err", err.Error()))
					return
				}
				defer st.Close()
				for {
					batch := q.pop()
					if batch == nil {
						return
					}
					got, err := fetchBatch(ctx, st, job, batch, req(batch), sink)
					if err != nil {
						if errors.Is(err, errSink) {
							mu.Lock()
							sinkErr = err
							mu.Unlock()
							cancel()
						}
						if errors.Is(err, ErrBadChunk) {
							n.Reject(h, err)
						}
						o.Logger.LogAttrs(ctx, slog.LevelWarn, "exchange dropped holder", slog.String("holder", h.String()), slog.String("err", err.Error()))
						q.requeue(batch[got:], got)
						st.Reset()
						return
					}
					q.done(len(batch))
				}
			}()
		}
	}
	go func() { wg.Wait(); close(finished) }()
	<-finished
	if sinkErr != nil {
		return sinkErr
	}
	if q.left() > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %d chunks left", ErrNoHolder, q.left())
	}
	return nil
}

var errSink = errors.New("exchange: sink")

// fetchBatch requests one batch on st; it returns how many chunks it
// delivered before any error.
func fetchBatch(ctx context.Context, st *p2p.Stream, job spec.JobID, batch []store.ChunkID, req *wire.ChunkRequest, sink func(store.ChunkID, []byte) error) (int, error) {
	_, m, err := st.Request(ctx, job, req, wire.TypeChunkResponse, wire.TypeAck)
	if err != nil {
		return 0, err
	}
	resp, ok := m.(*wire.ChunkResponse)
	if !ok || len(resp.Hashes) != len(batch) {
		return 0, fmt.Errorf("%w: response lists other chunks", ErrBadChunk)
	}
	for i, id := range batch {
		if resp.Hashes[i] != [32]byte(id) {
			return i, fmt.Errorf("%w: response lists other chunks", ErrBadChunk)
		}
		// A fresh buffer per chunk: the sink keeps it, no copy.
		data, err := st.ReadRaw(int(resp.Sizes[i]), nil)
		if err != nil {
			return i, err
		}
		if store.ChunkIDOf(data) != id {
			return i, fmt.Errorf("%w: %x", ErrBadChunk, id[:8])
		}
		if err := sink(id, data); err != nil {
			return i, fmt.Errorf("%w: %v", errSink, err)
		}
	}
	return len(batch), nil
}

// queue is the shared work queue of a fetch.
type queue struct {
	mu        sync.Mutex
	cond      *sync.Cond
	batches   [][]store.ChunkID
	remaining int
	workers   int
}

func (q *queue) push(b []store.ChunkID) { q.batches = append(q.batches, b) }

// pop returns the next batch, waiting while others are in flight (one of
// them may fail and requeue), or nil when everything is delivered or no
// other worker is left to finish.
func (q *queue) pop() []store.ChunkID {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.batches) == 0 {
		if q.remaining == 0 || q.workers <= 1 {
			return nil
		}
		q.cond.Wait()
	}
	b := q.batches[0]
	q.batches = q.batches[1:]
	return b
}

func (q *queue) requeue(b []store.ChunkID, delivered int) {
	q.mu.Lock()
	if len(b) > 0 {
		q.batches = append(q.batches, b)
	}
	q.remaining -= delivered
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *queue) done(k int) {
	q.mu.Lock()
	q.remaining -= k
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *queue) workerDone() {
	q.mu.Lock()
	q.workers--
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *queue) left() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.remaining
}

// FetchState fetches the checkpoint of job at step with the committed
// digest from holders and returns the state, rebuilt from verified chunks
// and checked against the digest. Nothing touches a store, so no garbage
// collection can race the fetch.
func FetchState(ctx context.Context, n *p2p.Node, holders []peer.ID, s *spec.Spec, job spec.JobID, step int64, digest [32]byte, o Options) (*spec.State, error) {
	man, err := FetchManifest(ctx, n, holders, job, step, digest, o)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	chunks := make(map[store.ChunkID][]byte, len(man.ChunkIDs()))
	if err := FetchChunks(ctx, n, holders, man, func(id store.ChunkID, data []byte) error {
		mu.Lock()
		chunks[id] = data
		mu.Unlock()
		return nil
	}, o); err != nil {
		return nil, err
	}
	return rebuild(s, man, chunks)
}

// rebuild assembles the state a verified manifest describes from verified
// chunks. The manifest binds every chunk ID, tensor length and root to the
// committed digest (store.Manifest.Verify) and every chunk was checked
// against its ID, so the state needs no second hashing pass; its tensors
// must be exactly the spec's (model.StateTemplate: an MLP's or a GPT's
// names, element types and shapes, in order).
func rebuild(s *spec.Spec, man *store.Manifest, chunks map[store.ChunkID][]byte) (*spec.State, error) {
	template, err := model.StateTemplate(s)
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	if len(man.Tensors) != len(template.Tensors) {
		return nil, fmt.Errorf("exchange: manifest has %d tensors, the spec %d", len(man.Tensors), len(template.Tensors))
	}
	st := &spec.State{Step: man.Step, Tensors: make([]spec.Tensor, 0, len(man.Tensors))}
	for i, tm := range man.Tensors {
		want := &template.Tensors[i]
		wd, _ := want.DType.Known()
		md, _ := tm.DType.Known()
		n := len(want.Data) // 32-bit words
		if tm.Name != want.Name || md != wd || !slices.Equal(tm.Shape, want.Shape) || tm.Bytes != want.ByteLen() {
			return nil, fmt.Errorf("exchange: manifest tensor %d is %s (%s %v) of %d bytes, want %s (%s %v) of %d",
				i, tm.Name, md, tm.Shape, tm.Bytes, want.Name, wd, want.Shape, want.ByteLen())
		}
		data := make([]int32, n)
		j := 0
		for _, id := range tm.Chunks {
			c := chunks[id]
			if j+len(c)/4 > n || len(c)%4 != 0 {
				return nil, fmt.Errorf("exchange: tensor %s: chunks longer than the tensor", tm.Name)
			}
			for k := 0; k < len(c); k += 4 {
				data[j] = int32(binary.LittleEndian.Uint32(c[k:]))
				j++
			}
		}
		if j != n {
			return nil, fmt.Errorf("exchange: tensor %s rebuilt to %d values, want %d", tm.Name, j, n)
		}
		st.Tensors = append(st.Tensors, spec.Tensor{Name: tm.Name, Shape: slices.Clone(want.Shape), DType: want.DType, Data: data})
	}
	return st, nil
}
