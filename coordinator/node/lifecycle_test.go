package node

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
)

// nodeGoroutines returns the stacks of the goroutines running a method of
// the package's Node.
func nodeGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "beluga/coordinator/node.(*Node).") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseLeavesNoGoroutine: with a job waiting for its audit, an audit
// task in flight to a verifier that never acknowledges it and the clock
// running, Close cancels everything the node started and returns only
// when none of it runs; a closed node refuses requests.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	h := newHarness(t, boundedConfig())
	stuck := h.verifierWith(&peerNode{hold: make(chan struct{})}, true, true)
	sv := h.solver(100_000)
	id, s := h.post()
	sv.assigned(5 * time.Second)
	if err := sv.commit(id, s, s.Steps); err != nil {
		t.Fatal(err)
	}
	if _, ok := stuck.task(5 * time.Second); !ok {
		t.Fatal("no audit task")
	}
	h.post() // and one nobody takes
	if len(nodeGoroutines()) == 0 {
		t.Fatal("no goroutine of the node found while it runs: the check cannot fail")
	}
	done := make(chan error, 1)
	go func() { done <- h.node.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatalf("Close did not return within a second; still running:\n%s", strings.Join(nodeGoroutines(), "\n\n"))
	}
	if gs := nodeGoroutines(); len(gs) > 0 {
		t.Fatalf("%d goroutine(s) of the node after Close:\n%s", len(gs), strings.Join(gs, "\n\n"))
	}
	if err := h.node.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := h.node.AwaitOutcome(context.Background(), id); err == nil {
		t.Fatal("AwaitOutcome on a closed node returned no error")
	}
	if err := sv.report(id, sv.n.ID(), true, -1); err == nil {
		t.Fatal("a closed node accepted a report")
	}
	// The job is where the service has it, for the next node.
	if st := h.job(id).State; st != lifecycle.AuditWindow {
		t.Fatalf("job %s after Close", st)
	}
}

// TestEventsAreStructured: the node's events carry the job and the peers
// as attributes, from the offer to the end.
func TestEventsAreStructured(t *testing.T) {
	t.Parallel()
	h := newHarness(t, boundedConfig())
	v := h.verifier(nil, true, true)
	sv := h.solver(100_000)
	id, s := h.post()
	sv.assigned(5 * time.Second)
	if err := sv.commit(id, s, s.Steps); err != nil {
		t.Fatal(err)
	}
	a, ok := v.task(5 * time.Second)
	if !ok {
		t.Fatal("no audit task")
	}
	if err := v.report(id, a.msg.Solver, true, -1); err != nil {
		t.Fatal(err)
	}
	out, err := h.node.AwaitOutcome(context.Background(), id)
	if err != nil || out.State != lifecycle.Settled || out.Verdict != VerdictPass || out.Verifier != v.n.ID() {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	job := short(id)
	for _, want := range []struct {
		msg   string
		attrs map[string]string
	}{
		{"job offered", map[string]string{"job": job}},
		{"verifier joined", map[string]string{"party": v.party}},
		{"job assigned", map[string]string{"job": job, "peer": shortPeer(sv.n.ID())}},
		{"job committed", map[string]string{"job": job}},
		{"audit assigned", map[string]string{"job": job, "party": v.party}},
		{"audit passed", map[string]string{"job": job}},
		{"job ended", map[string]string{"job": job, "state": "settled", "verdict": "pass"}},
	} {
		if _, ok := h.rec.wait(want.msg, want.attrs, time.Second); !ok {
			t.Errorf("no event %q with %v", want.msg, want.attrs)
		}
	}
}
