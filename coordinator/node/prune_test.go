package node

import (
	"context"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
)

// TestFinishedJobsAreForgotten: a finished job leaves the node's memory
// once Config.Retention has passed (memory holds the jobs in flight, not
// every job the node ever saw), and AwaitOutcome still answers for it
// from the service's record.
func TestFinishedJobsAreForgotten(t *testing.T) {
	t.Parallel()
	cfg := boundedConfig()
	cfg.JobTimeout, cfg.Retention = time.Second, 200*time.Millisecond
	h := newHarness(t, cfg)
	id, _ := h.post() // nobody takes it: it expires
	h.waitTerminal(id, 3*time.Second)
	known := func() bool {
		h.node.mu.Lock()
		defer h.node.mu.Unlock()
		return h.node.jobs[id] != nil
	}
	for deadline := time.Now().Add(3 * time.Second); known(); {
		if time.Now().After(deadline) {
			t.Fatalf("the node still holds the job %v after it ended (retention %v)", 3*time.Second, cfg.Retention)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	out, err := h.node.AwaitOutcome(ctx, id)
	if err != nil {
		t.Fatalf("AwaitOutcome of a forgotten job: %v", err)
	}
	if out.State != lifecycle.Expired || out.Job != id {
		t.Errorf("outcome %+v, want job %s expired", out, short(id))
	}
	h.checkMoney()
}
