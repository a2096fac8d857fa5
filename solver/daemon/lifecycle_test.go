package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/disputenet"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
)

// TestCloseSavesTheCheckpointAndEndsEveryGoroutine: Close (what SIGTERM
// does in `beluga solver`) stops the job being trained at a step
// boundary, and returns only once its checkpoint is saved, its store
// closed and nothing the daemon started is left running.
func TestCloseSavesTheCheckpointAndEndsEveryGoroutine(t *testing.T) {
	// Not parallel: it counts every goroutine running this package's code,
	// and parallel tests run only after the sequential ones.
	ctx := context.Background()
	c := newFakeCoordinator(t)
	sn, err := p2p.New(ctx, p2p.WithAllow(c.n.ID()))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	dir := t.TempDir()
	rec := &recorder{}
	d, err := Start(ctx, sn, Config{Coordinator: c.n.Addrs()[0], Dir: dir, Heartbeat: 20 * time.Millisecond, Logger: rec.logger()})
	if err != nil {
		t.Fatal(err)
	}
	s := job(t, 1_000_000, 1) // far longer than the test
	id := c.assign(t, sn, s)
	for deadline := time.Now().Add(20 * time.Second); c.step.Load() < 5; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the job never started")
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if left := daemonGoroutines(); len(left) > 0 {
		t.Fatalf("%d goroutines left after Close:\n%s", len(left), left[0])
	}
	ev, ok := rec.find("job interrupted, checkpoint saved")
	if !ok || ev.attrs["job"] != id.String()[:12] {
		t.Fatalf("no interrupted job event: %+v", rec.events)
	}
	// The store was closed by Close: it opens again, with the checkpoint
	// taken at the interruption.
	cs, err := store.Open(filepath.Join(dir, id.String()[:16], "store"))
	if err != nil {
		t.Fatalf("the run's store after Close: %v", err)
	}
	defer cs.Close()
	steps, err := cs.ListCheckpoints(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 || steps[len(steps)-1] < 5 || steps[len(steps)-1] >= s.Steps {
		t.Fatalf("checkpoints %v after an interruption past step 5", steps)
	}
	js, _ := s.JSON()
	if _, err := c.n.Request(ctx, sn.ID(), wire.AssignProtocol, id, &wire.Assign{SpecJSON: js}, wire.TypeAck); err == nil {
		t.Fatal("a closed daemon took a job")
	}
}

// TestFinishedRunsAreDropped: a finished run (its dataset, its open
// store) is kept for RunTTL and no more than MaxRuns of them at once;
// before this, a solver held every job it ever ran.
func TestFinishedRunsAreDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newFakeCoordinator(t)
	sn, err := p2p.New(ctx, p2p.WithAllow(c.n.ID()))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	var clk clock
	d, err := Start(ctx, sn, Config{Coordinator: c.n.Addrs()[0], Dir: t.TempDir(), MaxRuns: 1, RunTTL: time.Hour, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var last spec.JobID
	for seed := range uint64(3) {
		id := c.assign(t, sn, job(t, 20, seed+1))
		select {
		case got := <-c.commits:
			if got != id {
				t.Fatalf("commitment of %s, want %s", got, id)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no trace commitment")
		}
		// The run is marked finished, and the daemon idle again, right
		// after the coordinator acknowledges its commitment (which this
		// test sees just before the acknowledgement reaches the daemon):
		// the next job is offered only then, or it is declined as busy.
		for deadline := time.Now().Add(5 * time.Second); d.Runs() > 1 || !d.idle(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the daemon is not idle 5 s after the trace commitment")
			}
		}
		last = id
	}
	if n := d.Runs(); n != 1 {
		t.Fatalf("%d runs held after 3 finished jobs, want MaxRuns = 1", n)
	}
	if _, err := d.party(last); err != nil {
		t.Fatalf("the newest run no longer answers the referee: %v", err)
	}
	clk.advance(2 * time.Hour)
	d.prune()
	if n := d.Runs(); n != 0 {
		t.Fatalf("%d runs held past RunTTL", n)
	}
}

// idle reports whether the daemon holds no job (what the coordinator's
// next assignment needs).
func (d *Daemon) idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.job == (spec.JobID{})
}

// TestConfidentialCheckpointsAreNeverServed: a confidential job's
// checkpoints are served to no one, not even a peer with a valid grant,
// and its state is opened to no referee; the same checkpoint of an open
// job is served to the grantee.
func TestConfidentialCheckpointsAreNeverServed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	coord, holder, fetcher := node(t), node(t), node(t)
	if _, err := fetcher.Connect(ctx, holder.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{runs: map[spec.JobID]*run{}}
	exchange.Serve(holder, d, exchange.ServeConfig{Coordinator: coord.ID()})
	fetch := func(s *spec.Spec) error {
		id, err := s.ID()
		if err != nil {
			t.Fatal(err)
		}
		cs, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		st := s.Init()
		man, err := cs.PutCheckpoint(ctx, id, st)
		if err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		d.runs[id] = &run{spec: s, store: cs}
		d.mu.Unlock()
		grant, err := exchange.IssueGrant(coord, id, fetcher.ID(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, err = exchange.FetchState(ctx, fetcher, []peer.ID{holder.ID()}, s, id, 0, man.Digest, exchange.Options{Grant: grant})
		return err
	}
	open := job(t, 20, 1)
	if err := fetch(open); err != nil {
		t.Fatalf("an open job's checkpoint to its grantee: %v", err)
	}
	conf := job(t, 20, 1)
	conf.Audit.Confidential = true
	if err := fetch(conf); !errors.Is(err, exchange.ErrNoHolder) {
		t.Fatalf("a confidential job's checkpoint: %v, want refused", err)
	}
	id, _ := conf.ID()
	if _, err := d.party(id); !errors.Is(err, disputenet.ErrNoParty) || !errors.Is(err, ErrConfidential) {
		t.Fatalf("a confidential job's dispute party: %v", err)
	}
}

func node(t *testing.T) *p2p.Node {
	t.Helper()
	n, err := p2p.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}
