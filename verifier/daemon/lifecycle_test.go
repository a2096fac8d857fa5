package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// auditTask is a task for a small synthetic job (seed picks the job) whose
// trace commits made-up digests: the audit runs and reports a failure at
// once, without any holder.
func auditTask(t *testing.T, seed uint64, solver *p2p.Node) (spec.JobID, *wire.AuditTask) {
	t.Helper()
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.Seed = 8, seed
	s.CheckpointInterval, s.DigestInterval = 4, 4
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	tr := &trace.Trace{Job: id}
	for i := int64(0); ; i++ {
		step, ok := trace.StepAt(s, i)
		if !ok {
			break
		}
		tr.Entries = append(tr.Entries, trace.Entry{Step: step, Digest: [32]byte{byte(i + 1)}})
	}
	return id, &wire.AuditTask{Solver: solver.ID(), TraceRoot: tr.Root(), Beacon: []byte("beacon"), SpecJSON: js, Entries: wire.TraceEntries(tr.Entries)}
}

// TestReportedTasksArePruned: an audit's task (its spec and training set)
// is dropped TaskTTL after its report, and no more than MaxTasks reported
// tasks are kept meanwhile; before this, every task stayed forever.
func TestReportedTasksArePruned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newFakeCoordinator(t)
	vn, err := p2p.New(ctx, p2p.WithAllow(c.n.ID()))
	if err != nil {
		t.Fatal(err)
	}
	defer vn.Close()
	var clk clock
	d, err := Start(ctx, vn, Config{Coordinator: c.n.Addrs()[0], MaxTasks: 2, TaskTTL: time.Hour, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for seed := range uint64(3) {
		id, task := auditTask(t, seed+1, c.n)
		if _, err := c.n.Request(ctx, vn.ID(), wire.AuditProtocol, id, task, wire.TypeAck); err != nil {
			t.Fatal(err)
		}
		select {
		case rep := <-c.reports:
			if rep.Pass {
				t.Fatal("an audit of made-up digests passed")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no report")
		}
	}
	if n := d.Tasks(); n != 2 {
		t.Fatalf("%d tasks held after 3 reported audits, want MaxTasks = 2", n)
	}
	clk.advance(2 * time.Hour)
	d.pruneTasks()
	if n := d.Tasks(); n != 0 {
		t.Fatalf("%d tasks held past TaskTTL", n)
	}
}

// TestCloseEndsEveryGoroutine: Close cancels an audit under way and
// returns only when nothing the daemon started is left running; the
// daemon then takes no task.
func TestCloseEndsEveryGoroutine(t *testing.T) {
	// Not parallel: it counts every goroutine running this package's code,
	// and parallel tests run only after the sequential ones.
	ctx := context.Background()
	c := newFakeCoordinator(t)
	vn, err := p2p.New(ctx, p2p.WithAllow(c.n.ID()), p2p.WithPubSub())
	if err != nil {
		t.Fatal(err)
	}
	defer vn.Close()
	d, err := Start(ctx, vn, Config{Coordinator: c.n.Addrs()[0]})
	if err != nil {
		t.Fatal(err)
	}
	id, task := auditTask(t, 7, c.n)
	if _, err := c.n.Request(ctx, vn.ID(), wire.AuditProtocol, id, task, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if left := daemonGoroutines(); len(left) > 0 {
		t.Fatalf("%d goroutines left after Close:\n%s", len(left), left[0])
	}
	if _, err := c.n.Request(ctx, vn.ID(), wire.AuditProtocol, id, task, wire.TypeAck); err == nil {
		t.Fatal("a closed daemon took a task")
	}
}

// TestJoinRetriesUntilTheCoordinatorIsUp: a verifier started before its
// coordinator retries with backoff, and joins once the coordinator
// listens; with its context ended it gives up cleanly.
func TestJoinRetriesUntilTheCoordinatorIsUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Learn a free port and the coordinator's address, then go away.
	probe, err := p2p.New(ctx, p2p.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addrs()[0]
	listen := probe.Host.Addrs()[0].String()
	probe.Close()

	vn, err := p2p.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer vn.Close()
	rec := newRecorder()
	type started struct {
		d   *Daemon
		err error
	}
	done := make(chan started, 1)
	go func() {
		d, err := Start(ctx, vn, Config{Coordinator: addr, Logger: rec.logger(), JoinBackoff: 200 * time.Millisecond})
		done <- started{d, err}
	}()
	ev := rec.wait(t, "coordinator unreachable, retrying", 5*time.Second)
	if ev.attrs["attempt"] != "1" {
		t.Fatalf("first retry event %+v", ev)
	}
	newFakeCoordinator(t, p2p.WithKey(key), p2p.WithListen(listen))
	select {
	case s := <-done:
		if s.err != nil {
			t.Fatalf("start: %v", s.err)
		}
		defer s.d.Close()
	case <-time.After(10 * time.Second):
		t.Fatalf("the verifier never joined the coordinator that came up; events %+v", rec.all())
	}
	rec.wait(t, "joined the coordinator", time.Second)

	// Nobody listening, and the context ends: Start returns the error.
	other, err := p2p.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gone := other.Addrs()[0]
	other.Close()
	vn2, err := p2p.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer vn2.Close()
	cctx, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
	defer cancel()
	if _, err := Start(cctx, vn2, Config{Coordinator: gone}); err == nil || !errors.Is(cctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("start against no coordinator: %v", err)
	}
}
