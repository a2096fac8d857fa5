package exchange

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// record is one structured log event.
type record struct {
	msg   string
	attrs map[string]string
}

// recorder is a slog.Handler that keeps every event.
type recorder struct {
	mu  *sync.Mutex
	out *[]record
}

func newRecorder() recorder { return recorder{mu: &sync.Mutex{}, out: &[]record{}} }

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	a := map[string]string{}
	rec.Attrs(func(x slog.Attr) bool { a[x.Key] = x.Value.String(); return true })
	r.mu.Lock()
	*r.out = append(*r.out, record{rec.Message, a})
	r.mu.Unlock()
	return nil
}
func (r recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r recorder) WithGroup(string) slog.Handler      { return r }

func (r recorder) events(msg string) []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []record
	for _, e := range *r.out {
		if e.msg == msg {
			out = append(out, e)
		}
	}
	return out
}

// grantSetup is a holder of the initial checkpoint of a small job,
// serving for coord's grants, with its refusals recorded.
type grantSetup struct {
	s       *spec.Spec
	job     spec.JobID
	digest  [32]byte
	man     *store.Manifest
	coord   *p2p.Node
	holder  *p2p.Node
	log     recorder
	fetcher *p2p.Node
}

func newGrantSetup(t *testing.T) *grantSetup {
	t.Helper()
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	mem, job, _, digest := checkpoint(t, s)
	man, err := mem.Manifest(context.Background(), job, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := &grantSetup{s: s, job: job, digest: digest, man: &man, coord: node(t), holder: node(t), log: newRecorder(), fetcher: node(t)}
	Serve(g.holder, FromStore(mem), ServeConfig{Coordinator: g.coord.ID(), Logger: slog.New(g.log)})
	connect(t, g.fetcher, g.holder)
	return g
}

func (g *grantSetup) grant(t *testing.T, job spec.JobID, to peer.ID, ttl time.Duration) Options {
	t.Helper()
	raw, err := IssueGrant(g.coord, job, to, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Grant: raw}
}

// refused asserts that fetching the checkpoint, manifest first or its
// chunks directly (a peer that learnt the manifest), fails with o, and
// that the holder logged a refusal naming why.
func (g *grantSetup) refused(t *testing.T, o Options, why error) {
	t.Helper()
	ctx := context.Background()
	if _, err := FetchState(ctx, g.fetcher, []peer.ID{g.holder.ID()}, g.s, g.job, 0, g.digest, o); !errors.Is(err, ErrNoHolder) {
		t.Fatalf("fetching the checkpoint: %v, want a refusal", err)
	}
	err := FetchChunks(ctx, g.fetcher, []peer.ID{g.holder.ID()}, g.man, func(store.ChunkID, []byte) error { return nil }, o)
	if !errors.Is(err, ErrNoHolder) {
		t.Fatalf("fetching the chunks: %v, want a refusal", err)
	}
	evs := g.log.events("exchange refused")
	if len(evs) < 2 {
		t.Fatalf("%d refusals logged, want one per request", len(evs))
	}
	for _, ev := range evs {
		if ev.attrs["peer"] != g.fetcher.ID().String() || ev.attrs["job"] != g.job.String() || !strings.Contains(ev.attrs["err"], why.Error()) {
			t.Fatalf("refusal %+v, want one of %s for job %s saying %q", ev, g.fetcher.ID(), g.job, why)
		}
	}
}

// TestUnassignedPeerIsRefused: a peer that knows a checkpoint's step and
// digest (or even its manifest) but holds no grant gets neither the
// manifest nor a chunk.
func TestUnassignedPeerIsRefused(t *testing.T) {
	t.Parallel()
	g := newGrantSetup(t)
	g.refused(t, Options{}, ErrNoGrant)
}

// TestGrantForAnotherJobIsRefused: a grant opens only the job it names.
func TestGrantForAnotherJobIsRefused(t *testing.T) {
	t.Parallel()
	g := newGrantSetup(t)
	g.refused(t, g.grant(t, spec.JobID{9}, g.fetcher.ID(), time.Hour), ErrGrantOtherJob)
}

// TestExpiredGrantIsRefused: a grant past its expiry opens nothing.
func TestExpiredGrantIsRefused(t *testing.T) {
	t.Parallel()
	g := newGrantSetup(t)
	g.refused(t, g.grant(t, g.job, g.fetcher.ID(), -time.Second), ErrGrantExpired)
}

// TestForgedGrantIsRefused: a grant the fetcher signed itself, or one
// whose signature was altered, opens nothing.
func TestForgedGrantIsRefused(t *testing.T) {
	t.Parallel()
	g := newGrantSetup(t)
	self, err := IssueGrant(g.fetcher, g.job, g.fetcher.ID(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g.refused(t, Options{Grant: self}, ErrForgedGrant)

	g2 := newGrantSetup(t)
	o := g2.grant(t, g2.job, g2.fetcher.ID(), time.Hour)
	o.Grant[len(o.Grant)-1] ^= 1 // the signature is the envelope's last field
	g2.refused(t, o, ErrForgedGrant)
}

// TestStolenGrantIsRefused: a grant presented by a peer other than its
// grantee (copied from an assignment) opens nothing.
func TestStolenGrantIsRefused(t *testing.T) {
	t.Parallel()
	g := newGrantSetup(t)
	g.refused(t, g.grant(t, g.job, g.holder.ID(), time.Hour), ErrGrantOtherPeer)
}

// TestGrantedPeerFetches: the peer the coordinator assigned fetches the
// checkpoint, and nothing is refused.
func TestGrantedPeerFetches(t *testing.T) {
	t.Parallel()
	g := newGrantSetup(t)
	o := g.grant(t, g.job, g.fetcher.ID(), time.Hour)
	flog := newRecorder()
	o.Logger = slog.New(flog)
	// The fetcher listed among the holders (a replica auditing) is not
	// asked: a dial to itself would only fail.
	st, err := FetchState(context.Background(), g.fetcher, []peer.ID{g.fetcher.ID(), g.holder.ID()}, g.s, g.job, 0, g.digest, o)
	if err != nil || st.Step != 0 {
		t.Fatalf("granted fetch: %v", err)
	}
	if evs := flog.events("exchange holder unreachable"); len(evs) != 0 {
		t.Fatalf("unreachable holders %+v", evs)
	}
	if evs := g.log.events("exchange refused"); len(evs) != 0 {
		t.Fatalf("refusals %+v", evs)
	}
}

// TestGrantOpensNoChunkOfAnotherJob: a grantee of one job that asks, as
// part of that job's checkpoint, for the chunks of another job's
// checkpoint in the same store is refused.
func TestGrantOpensNoChunkOfAnotherJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	mem, job, st, _ := checkpoint(t, s)
	other := spec.JobID{7}
	st.Layer(0, spec.TensorWeight)[0]++
	secret, err := mem.PutCheckpoint(ctx, other, st)
	if err != nil {
		t.Fatal(err)
	}
	coord, holder, fetcher, log := node(t), node(t), node(t), newRecorder()
	Serve(holder, FromStore(mem), ServeConfig{Coordinator: coord.ID(), Logger: slog.New(log)})
	connect(t, fetcher, holder)
	raw, err := IssueGrant(coord, job, fetcher.ID(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var own []store.ChunkID
	if man, err := mem.Manifest(ctx, job, 0); err == nil {
		own = man.ChunkIDs()
	}
	var leaked []store.ChunkID
	for _, id := range secret.ChunkIDs() {
		if !containsID(own, id) {
			leaked = append(leaked, id)
		}
	}
	if len(leaked) == 0 {
		t.Fatal("the two checkpoints share every chunk")
	}
	stream, err := fetcher.Open(ctx, holder.ID(), wire.ExchangeProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	_, _, err = stream.Request(ctx, job, &wire.ChunkRequest{Step: 0, Hashes: [][32]byte{leaked[0]}, Grant: raw}, wire.TypeChunkResponse, wire.TypeAck)
	if !errors.Is(err, p2p.ErrRemote) || !strings.Contains(err.Error(), ErrNotInCheckpoint.Error()) {
		t.Fatalf("a chunk of another job: %v", err)
	}
	if evs := log.events("exchange refused"); len(evs) != 1 {
		t.Fatalf("refusals %+v", evs)
	}
}

func containsID(ids []store.ChunkID, id store.ChunkID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
