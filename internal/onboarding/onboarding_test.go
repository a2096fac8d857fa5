package onboarding

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/coordinatord"
	"github.com/beluga-compute/beluga/coordinator/node"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	solverd "github.com/beluga-compute/beluga/solver/daemon"
	"github.com/beluga-compute/beluga/solver/idle"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	verifierd "github.com/beluga-compute/beluga/verifier/daemon"
)

// events records a component's slog records so that a test awaits one
// (never sleeps for it).
type events struct {
	mu    sync.Mutex
	recs  []record
	added chan struct{} // closed and replaced at every record
}

type record struct {
	msg   string
	attrs map[string]string
}

func newEvents() *events { return &events{added: make(chan struct{})} }

func (e *events) logger() *slog.Logger { return slog.New(&recorder{e: e}) }

// await returns the first record (from the n-th on) whose message is msg
// and whose attributes include want, waiting up to 20 s.
func (e *events) await(t *testing.T, from int, msg string, want map[string]string) record {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		for _, r := range e.recs[from:] {
			if r.msg == msg && matches(r.attrs, want) {
				e.mu.Unlock()
				return r
			}
		}
		ch := e.added
		e.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %q event with %v; saw:\n%s", msg, want, e.dump())
		}
	}
}

// mark is the index the next record will have.
func (e *events) mark() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.recs)
}

// count is how many records have message msg and exactly the attribute
// values of want.
func (e *events) count(msg string, want map[string]string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.recs {
		exact := r.msg == msg
		for k, v := range want {
			exact = exact && r.attrs[k] == v
		}
		if exact {
			n++
		}
	}
	return n
}

func (e *events) dump() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, r := range e.recs {
		fmt.Fprintf(&b, "  %s %v\n", r.msg, r.attrs)
	}
	return b.String()
}

func matches(attrs, want map[string]string) bool {
	for k, v := range want {
		if !strings.Contains(attrs[k], v) {
			return false
		}
	}
	return true
}

type recorder struct {
	e     *events
	attrs []slog.Attr
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]string{}
	for _, a := range r.attrs {
		m[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	r.e.mu.Lock()
	r.e.recs = append(r.e.recs, record{msg: rec.Message, attrs: m})
	close(r.e.added)
	r.e.added = make(chan struct{})
	r.e.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{e: r.e, attrs: append(append([]slog.Attr(nil), r.attrs...), as...)}
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

// coord is a coordinator over a data directory, listening for libp2p on a
// fixed 127.0.0.1 port under a fixed key, so that a restart is the same
// coordinator at the same address.
type coord struct {
	t        *testing.T
	dir      string
	key      crypto.PrivKey
	port     int
	log      *events
	c        *coordinatord.Coordinator
	n        *p2p.Node
	api      atomic.Pointer[http.Handler]
	srv      *httptest.Server
	opKey    string
	clientKy string
}

func newCoord(t *testing.T) *coord {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c := &coord{t: t, dir: t.TempDir(), key: key, port: port, log: newEvents()}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := c.api.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "coordinator down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(c.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("coordinator:\n%s", c.log.dump())
		}
	})
	return c
}

// addr is the coordinator's full multiaddr.
func (c *coord) addr() string {
	id, err := peer.IDFromPrivateKey(c.key)
	if err != nil {
		c.t.Fatal(err)
	}
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", c.port, id)
}

// start opens the coordinator (again).
func (c *coord) start() {
	c.t.Helper()
	ctx := context.Background()
	n, err := p2p.New(ctx, p2p.WithKey(c.key), p2p.WithListen(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", c.port)), p2p.WithPubSub())
	if err != nil {
		c.t.Fatal(err)
	}
	cd, err := coordinatord.Open(ctx, coordinatord.Config{DataDir: c.dir, P2P: n, Logger: c.log.logger(),
		Node: node.Config{HeartbeatTimeout: 5 * time.Second, Tick: 50 * time.Millisecond, Logger: c.log.logger()}})
	if err != nil {
		n.Close()
		c.t.Fatal(err)
	}
	c.c, c.n = cd, n
	var h http.Handler = cd.API
	c.api.Store(&h)
	if c.opKey == "" {
		if c.opKey, err = cd.Bootstrap(ctx); err != nil {
			c.t.Fatal(err)
		}
		if c.clientKy, _, err = cd.Keys.Issue(ctx, "acme", auth.RoleClient, 0); err != nil {
			c.t.Fatal(err)
		}
		c.deposit("client:acme", 1_000_000_000)
	}
}

// stop closes the coordinator: its node, its service and its host.
func (c *coord) stop() {
	if c.c == nil {
		return
	}
	c.api.Store(nil)
	c.c.Close()
	c.n.Close()
	c.c, c.n = nil, nil
}

var refs atomic.Int64

func (c *coord) post(path, key string, body any) []byte {
	c.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("k%d", refs.Add(1)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		c.t.Fatalf("POST %s: %s: %s", path, resp.Status, out)
	}
	return out
}

func (c *coord) deposit(account string, microUSD int64) {
	c.post("/v1/deposits", c.opKey, map[string]any{"account": account, "amount_micro_usd": microUSD, "bank_ref": fmt.Sprintf("ref-%d", refs.Add(1))})
}

// postJob posts the tiny conformance job (with a distinct seed) at the
// market price and returns its ID.
func (c *coord) postJob(seed uint64) spec.JobID {
	c.t.Helper()
	js, err := os.ReadFile(filepath.Join("..", "..", "spec", "testdata", "vectors", "tiny", "spec.json"))
	if err != nil {
		c.t.Fatal(err)
	}
	s, err := spec.Decode(js)
	if err != nil {
		c.t.Fatal(err)
	}
	s.Seed = seed
	return c.postSpec(s)
}

// postSpec posts s at the market price and returns the job's ID.
func (c *coord) postSpec(s *spec.Spec) spec.JobID {
	c.t.Helper()
	raw, err := s.Canonical()
	if err != nil {
		c.t.Fatal(err)
	}
	var job struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(c.post("/v1/jobs", c.clientKy, map[string]json.RawMessage{"spec": raw}), &job); err != nil {
		c.t.Fatal(err)
	}
	id, err := spec.ParseJobID(job.ID)
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

func (c *coord) state(id spec.JobID) string {
	c.t.Helper()
	j, err := c.c.Service.Job(context.Background(), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return j.State.String()
}

// host is a daemon's libp2p host on 127.0.0.1.
func host(t *testing.T) *p2p.Node {
	t.Helper()
	n, err := p2p.New(context.Background(), p2p.WithListen("/ip4/127.0.0.1/tcp/0"), p2p.WithPubSub())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func startSolver(t *testing.T, c *coord, n *p2p.Node, log *events, gate *idle.Gate) *solverd.Daemon {
	t.Helper()
	d, err := solverd.Start(context.Background(), n, solverd.Config{Coordinator: c.addr(), Dir: t.TempDir(), Heartbeat: 50 * time.Millisecond,
		JoinBackoff: 200 * time.Millisecond, Logger: log.logger(), Gate: gate, Backend: "cpu", AskNanoUSDPerCU: 200_000_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func short(id spec.JobID) string { return id.String()[:12] }

// TestSolverWithoutBondIsToldAndMatchedAfterDeposit: a solver that joins
// without a bond is told, in its hello's answer, that it needs one, how
// much, and the account to deposit it to; the job posted meanwhile stays
// posted; the deposit through the API gets the solver the job at once,
// without restarting it.
func TestSolverWithoutBondIsToldAndMatchedAfterDeposit(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	c.start()
	t.Cleanup(c.stop)
	n := host(t)
	party := join.PartyID(wire.RoleSolver, n.ID())
	log := newEvents()
	d := startSolver(t, c, n, log, nil)
	if d.Party() != party {
		t.Fatalf("the daemon says its party is %s, the coordinator books %s", d.Party(), party)
	}
	joined := log.await(t, 0, join.EventJoined, nil)
	for _, want := range []string{"no bond", party, "solver_bond:" + party, "$10.00"} {
		if !strings.Contains(joined.attrs["notice"], want) || !strings.Contains(d.Member().Notice(), want) {
			t.Fatalf("the hello's answer %q does not say %q", joined.attrs["notice"], want)
		}
	}
	id := c.postJob(1)
	c.log.await(t, 0, "job offered", map[string]string{"job": short(id)})
	if st := c.state(id); st != "posted" {
		t.Fatalf("a job was matched with a solver without a bond: %s", st)
	}
	c.deposit("solver_bond:"+party, 100_000_000)
	log.await(t, 0, solverd.EventAssigned, map[string]string{"job": short(id)})
	log.await(t, 0, solverd.EventCommitted, map[string]string{"job": short(id)})
	if n := log.count(join.EventJoined, nil); n != 1 {
		t.Fatalf("the solver joined %d times; the deposit alone must match it", n)
	}
}

// TestDaemonStartedBeforeCoordinatorJoinsWhenItIsUp: a solver and a
// verifier started while the coordinator is down keep trying (with
// backoff) and register once it is up.
func TestDaemonStartedBeforeCoordinatorJoinsWhenItIsUp(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	sn, vn := host(t), host(t)
	slog, vlog := newEvents(), newEvents()
	type started struct {
		err  error
		stop func() error
	}
	sc, vc := make(chan started, 1), make(chan started, 1)
	go func() {
		d, err := solverd.Start(context.Background(), sn, solverd.Config{Coordinator: c.addr(), Dir: t.TempDir(), Heartbeat: 50 * time.Millisecond,
			JoinBackoff: 200 * time.Millisecond, Logger: slog.logger()})
		s := started{err: err}
		if d != nil {
			s.stop = d.Close
		}
		sc <- s
	}()
	go func() {
		d, err := verifierd.Start(context.Background(), vn, verifierd.Config{Coordinator: c.addr(), Heartbeat: 50 * time.Millisecond,
			JoinBackoff: 200 * time.Millisecond, Logger: vlog.logger()})
		s := started{err: err}
		if d != nil {
			s.stop = d.Close
		}
		vc <- s
	}()
	slog.await(t, 0, join.EventUnreachable, map[string]string{"attempt": "2"})
	vlog.await(t, 0, join.EventUnreachable, map[string]string{"attempt": "2"})
	c.start()
	t.Cleanup(c.stop)
	for _, ch := range []chan started{sc, vc} {
		s := <-ch
		if s.err != nil {
			t.Fatal(s.err)
		}
		t.Cleanup(func() { s.stop() })
	}
	peers := c.c.Node.Peers()
	if len(peers) != 2 {
		t.Fatalf("the coordinator has %d peers registered, want the solver and the verifier", len(peers))
	}
}

// TestDaemonsRegisterAgainAfterCoordinatorRestart: the coordinator stops
// and starts again over the same data directory; the solver and the
// verifier notice, say hello again, and a job posted then runs on the
// solver.
func TestDaemonsRegisterAgainAfterCoordinatorRestart(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	c.start()
	t.Cleanup(c.stop)
	sn, vn := host(t), host(t)
	c.deposit("solver_bond:"+join.PartyID(wire.RoleSolver, sn.ID()), 100_000_000)
	slog, vlog := newEvents(), newEvents()
	startSolver(t, c, sn, slog, nil)
	vd, err := verifierd.Start(context.Background(), vn, verifierd.Config{Coordinator: c.addr(), Heartbeat: 50 * time.Millisecond,
		JoinBackoff: 200 * time.Millisecond, Logger: vlog.logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vd.Close() })

	c.stop()
	c.start()
	slog.await(t, 0, join.EventJoined, map[string]string{"rejoin": "true"})
	vlog.await(t, 0, join.EventJoined, map[string]string{"rejoin": "true"})
	id := c.postJob(2)
	slog.await(t, 0, solverd.EventAssigned, map[string]string{"job": short(id)})
	slog.await(t, 0, solverd.EventCommitted, map[string]string{"job": short(id)})
}

// TestPausedSolverTakesNoJobAndWithdraws: while the machine's owner uses
// it, the solver tells the coordinator (a paused heartbeat), which
// withdraws its ask: a job posted then is not matched. When the machine is
// idle again the solver offers itself again and gets the job.
func TestPausedSolverTakesNoJobAndWithdraws(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	c.start()
	t.Cleanup(c.stop)
	n := host(t)
	party := join.PartyID(wire.RoleSolver, n.ID())
	c.deposit("solver_bond:"+party, 100_000_000)
	var busy atomic.Bool
	gate := idle.NewGate(func() (idle.Reading, error) { return idle.Reading{Busy: busy.Load(), Why: "the owner is back"}, nil },
		idle.Config{Interval: 10 * time.Millisecond, Grace: 50 * time.Millisecond})
	log := newEvents()
	startSolver(t, c, n, log, gate)
	c.log.await(t, 0, "solver joined", map[string]string{"party": party})

	busy.Store(true)
	log.await(t, 0, solverd.EventPaused, nil)
	c.log.await(t, 0, "solver paused: its offer is withdrawn", map[string]string{"party": party})
	// The withdrawal runs in the node's group: once a second withdrawal
	// finds nothing, the first is done.
	for {
		had, err := c.c.Service.WithdrawAsk(context.Background(), party)
		if err != nil {
			t.Fatal(err)
		}
		if !had {
			break
		}
	}
	id := c.postJob(3)
	c.log.await(t, 0, "job offered", map[string]string{"job": short(id)})
	if st := c.state(id); st != "posted" {
		t.Fatalf("a paused solver's offer matched the job: %s", st)
	}
	if k := log.count(solverd.EventAssigned, nil); k != 0 {
		t.Fatalf("the paused solver took %d job(s)", k)
	}

	busy.Store(false)
	log.await(t, 0, solverd.EventResumed, nil)
	log.await(t, 0, solverd.EventAssigned, map[string]string{"job": short(id)})
}

// TestRunningJobSurvivesCoordinatorRestart: the coordinator restarts while
// the solver trains; the solver registers again and goes on where it is
// (no restart from step 0), and its commitment is accepted once the
// restarted coordinator has matched the job to it again.
func TestRunningJobSurvivesCoordinatorRestart(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	c.start()
	t.Cleanup(c.stop)
	n := host(t)
	c.deposit("solver_bond:"+join.PartyID(wire.RoleSolver, n.ID()), 100_000_000)
	log := newEvents()
	startSolver(t, c, n, log, nil)
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.Seed, s.DigestInterval, s.CheckpointInterval = 600, 9, 6, 60
	id := c.postSpec(s)
	log.await(t, 0, solverd.EventCheckpoint, map[string]string{"job": short(id)})
	c.stop()
	from := log.mark()
	c.start()
	log.await(t, from, solverd.EventCommitted, map[string]string{"job": short(id)})
	c.log.await(t, 0, "job committed", map[string]string{"job": short(id)})
	// Trained once: the coordinator took the commitment of the run that
	// went on through the restart (given back to it, "resumed_here", or
	// committed as soon as the restarted coordinator matched it again).
	if k := log.count(solverd.EventCheckpoint, map[string]string{"job": short(id), "step": "60"}); k != 1 {
		t.Fatalf("the job was trained %d times from the start, want once:\n%s", k, log.dump())
	}
}
