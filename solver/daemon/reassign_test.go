package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/net/p2p"
)

// TestSameJobAgainAfterItEnded: a job given back to a solver whose earlier
// run of it is still held (finished, its store open to serve checkpoints)
// runs again: the earlier run is dropped before the new one opens the
// same store (a coordinator that took the job away, or restarted, may
// give it back).
func TestSameJobAgainAfterItEnded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newFakeCoordinator(t)
	sn, err := p2p.New(ctx, p2p.WithAllow(c.n.ID()))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	rec := &recorder{}
	d, err := Start(ctx, sn, Config{Coordinator: c.n.Addrs()[0], Dir: t.TempDir(), Logger: rec.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := job(t, 20, 7)
	for round := range 2 {
		id := c.assign(t, sn, s)
		select {
		case got := <-c.commits:
			if got != id {
				t.Fatalf("round %d: commitment of %s, want %s", round, got, id)
			}
		case <-time.After(30 * time.Second):
			r, _ := rec.find("job failed")
			t.Fatalf("round %d: no trace commitment (job failed: %v)", round, r)
		}
		// Wait until the run is marked finished, so that the next
		// assignment is not the job still running.
		for deadline := time.Now().Add(5 * time.Second); !d.idle(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the daemon is not idle 5 s after the trace commitment", round)
			}
		}
	}
}
