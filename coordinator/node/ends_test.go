package node

import (
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/report"
)

// jobBound is the JobTimeout of these tests: every job must be over by
// then (plus a tick and some slack).
const jobBound = 4 * time.Second

// within is how long a test waits for a job to end.
const within = jobBound + 3*time.Second

// TestEveryJobEnds: whatever one party does — stays silent, lies, comes
// late or never comes — every job reaches a terminal state within the
// bound, money is released or paid exactly once, and the ledger holds.
func TestEveryJobEnds(t *testing.T) {
	t.Run("solver silent", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, boundedConfig())
		sv := h.solver(100_000)
		id, _ := h.post()
		sv.assigned(5 * time.Second) // and then nothing: no heartbeat, no trace
		j := h.waitTerminal(id, within)
		if j.State != lifecycle.Expired {
			t.Errorf("job ended %s, want expired", j.State)
		}
		h.checkMoney(sv.bondRef())
		if r := h.verifiedReport(id); r.Outcome.State != report.StateExpired || r.Trace != nil {
			t.Errorf("report of the expired job: %+v", r.Outcome)
		}
		if got := h.balance(service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}); got != 100_000_000_000 {
			t.Errorf("client holds %d after an expired job, want its deposit back", got)
		}
	})
	t.Run("client gone", func(t *testing.T) {
		t.Parallel()
		// Nobody takes the job and the client never cancels it.
		h := newHarness(t, boundedConfig())
		id, _ := h.post()
		j := h.waitTerminal(id, within)
		if j.State != lifecycle.Expired {
			t.Errorf("job ended %s, want expired", j.State)
		}
		h.checkMoney()
	})
	t.Run("only verifier silent", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, boundedConfig())
		v := h.verifier(nil, true, true)
		sv := h.solver(100_000)
		id, s := h.post()
		sv.assigned(5 * time.Second)
		if err := sv.commit(id, s, s.Steps); err != nil {
			t.Fatal(err)
		}
		if _, ok := v.task(5 * time.Second); !ok {
			t.Fatal("no audit task")
		}
		j := h.waitTerminal(id, within)
		if j.State != lifecycle.Expired {
			t.Errorf("job ended %s, want expired", j.State)
		}
		h.checkMoney(sv.bondRef(), v.bondRef())
		if r := h.verifiedReport(id); r.Trace == nil || r.Beacon == nil || len(r.Audits) != 0 {
			t.Errorf("report of the job expired in its audit: %+v", r)
		}
	})
	t.Run("verifier silent, another reports", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, boundedConfig())
		vs := []*peerNode{h.verifier(nil, true, true), h.verifier(nil, true, true)}
		sv := h.solver(100_000)
		id, s := h.post()
		sv.assigned(5 * time.Second)
		if err := sv.commit(id, s, s.Steps); err != nil {
			t.Fatal(err)
		}
		silent, reporter := h.firstTask(vs...)
		if _, ok := reporter.task(5 * time.Second); !ok {
			t.Fatal("the audit was not reassigned")
		}
		if err := reporter.report(id, sv.n.ID(), true, -1); err != nil {
			t.Fatal(err)
		}
		j := h.waitTerminal(id, within)
		if j.State != lifecycle.Settled {
			t.Fatalf("job ended %s, want settled", j.State)
		}
		if h.balance(silent.earnings()) != 0 || h.balance(reporter.earnings()) == 0 || h.balance(sv.earnings()) == 0 {
			t.Errorf("pay: silent verifier %d, reporting verifier %d, solver %d", h.balance(silent.earnings()), h.balance(reporter.earnings()), h.balance(sv.earnings()))
		}
		h.checkMoney(sv.bondRef(), silent.bondRef(), reporter.bondRef())
	})
	t.Run("verifier lying", func(t *testing.T) {
		t.Parallel()
		// The first verifier accuses an honest solver and cannot back it
		// (it answers no dispute query): it is slashed and the other
		// verifier's audit settles the job.
		h := newHarness(t, boundedConfig())
		vs := []*peerNode{h.verifier(nil, true, true), h.verifier(nil, true, true)}
		sv := h.solver(100_000)
		id, s := h.post()
		sv.assigned(5 * time.Second)
		sv.honest(id, s)
		if err := sv.commit(id, s, s.Steps); err != nil {
			t.Fatal(err)
		}
		liar, other := h.firstTask(vs...)
		if err := liar.report(id, sv.n.ID(), false, 2); err != nil {
			t.Fatal(err)
		}
		if _, ok := other.task(5 * time.Second); !ok {
			t.Fatal("the audit was not given to the other verifier after the false accusation")
		}
		if err := other.report(id, sv.n.ID(), true, -1); err != nil {
			t.Fatal(err)
		}
		j := h.waitTerminal(id, within)
		if j.State != lifecycle.Settled {
			t.Fatalf("job ended %s, want settled", j.State)
		}
		if got := h.balance(liar.bondRef()); got >= 100_000_000 {
			t.Errorf("the liar's bond holds %d: not slashed", got)
		}
		if h.balance(liar.earnings()) != 0 {
			t.Error("the liar was paid")
		}
		h.checkMoney(sv.bondRef(), liar.bondRef(), other.bondRef())
		r := h.verifiedReport(id)
		if len(r.Audits) != 2 || len(r.Disputes) != 1 || r.Disputes[0].Loser != report.LoserVerifier || len(r.Slashes) != 1 ||
			r.Slashes[0].PeerID != liar.n.ID().String() {
			t.Errorf("report: %d audits, disputes %+v, slashes %+v", len(r.Audits), r.Disputes, r.Slashes)
		}
	})
	t.Run("verifier late", func(t *testing.T) {
		t.Parallel()
		// The job commits while no verifier is online; one joins later.
		h := newHarness(t, boundedConfig())
		sv := h.solver(100_000)
		id, s := h.post()
		sv.assigned(5 * time.Second)
		if err := sv.commit(id, s, s.Steps); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		v := h.verifier(nil, true, true)
		if _, ok := v.task(3 * time.Second); !ok {
			t.Fatal("the late verifier got no audit")
		}
		if err := v.report(id, sv.n.ID(), true, -1); err != nil {
			t.Fatal(err)
		}
		if j := h.waitTerminal(id, within); j.State != lifecycle.Settled {
			t.Fatalf("job ended %s, want settled", j.State)
		}
		h.checkMoney(sv.bondRef(), v.bondRef())
	})
	t.Run("coordinator restart", func(t *testing.T) {
		t.Parallel()
		// The coordinator restarts while the job waits for its audit: the
		// job is recovered from the service and audited when a verifier
		// joins the new node.
		h := newHarness(t, boundedConfig())
		sv := h.solver(100_000)
		id, s := h.post()
		sv.assigned(5 * time.Second)
		if err := sv.commit(id, s, s.Steps); err != nil {
			t.Fatal(err)
		}
		h.waitState(id, lifecycle.AuditWindow, 2*time.Second)
		h.restart()
		sv.join()
		v := h.verifier(nil, true, true)
		a, ok := v.task(3 * time.Second)
		if !ok {
			t.Fatal("the job was not audited after the restart")
		}
		if err := v.report(id, a.msg.Solver, true, -1); err != nil {
			t.Fatal(err)
		}
		if j := h.waitTerminal(id, within); j.State != lifecycle.Settled {
			t.Fatalf("job ended %s, want settled", j.State)
		}
		h.checkMoney(sv.bondRef(), v.bondRef())
		if r := h.verifiedReport(id); r.Outcome.State != report.StateSettled || len(r.Audits) != 1 {
			t.Errorf("report after a restart: %+v", r.Outcome)
		}
	})
}

// firstTask waits for the first of vs to get an audit task and returns it
// and another of vs.
func (h *harness) firstTask(vs ...*peerNode) (first, other *peerNode) {
	h.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		for i, v := range vs {
			if _, ok := v.task(10 * time.Millisecond); ok {
				return v, vs[(i+1)%len(vs)]
			}
		}
	}
	h.t.Fatal("no verifier got the audit")
	return nil, nil
}

// TestRestartRecoversJobs: jobs in flight when the coordinator stops are
// picked up by the next node over the same service: a running job whose
// solver the new node does not know goes back to the market and is run by
// another solver; a job whose deadline passed while the coordinator was
// down expires at the first tick.
func TestRestartRecoversJobs(t *testing.T) {
	t.Run("running job rematched", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, boundedConfig())
		first := h.solver(100_000)
		id, s := h.post()
		first.assigned(5 * time.Second)
		h.waitState(id, lifecycle.Running, 2*time.Second)
		h.restart()
		if _, ok := h.rec.wait("job recovered", map[string]string{"job": short(id), "state": "running"}, time.Second); !ok {
			t.Fatal("no recovery event for the running job")
		}
		second := h.solver(100_000)
		a := second.assigned(5 * time.Second)
		if a.job != id {
			t.Fatalf("assigned %s, want the recovered job", short(a.job))
		}
		if err := second.commit(id, s, s.Steps); err != nil {
			t.Fatal(err)
		}
		v := h.verifier(nil, true, true)
		task, ok := v.task(5 * time.Second)
		if !ok {
			t.Fatal("no audit of the recovered job")
		}
		if err := v.report(id, task.msg.Solver, true, -1); err != nil {
			t.Fatal(err)
		}
		if j := h.waitTerminal(id, within); j.State != lifecycle.Settled {
			t.Fatalf("job ended %s, want settled", j.State)
		}
		h.checkMoney(first.bondRef(), second.bondRef(), v.bondRef())
	})
	t.Run("deadline passed while down", func(t *testing.T) {
		t.Parallel()
		cfg := boundedConfig()
		cfg.JobTimeout = time.Second
		h := newHarness(t, cfg)
		sv := h.solver(100_000)
		id, _ := h.post()
		sv.assigned(5 * time.Second)
		h.close()
		time.Sleep(cfg.JobTimeout + 100*time.Millisecond)
		h.open()
		if j := h.waitTerminal(id, time.Second); j.State != lifecycle.Expired {
			t.Fatalf("job ended %s, want expired", j.State)
		}
		h.checkMoney(sv.bondRef())
	})
}
