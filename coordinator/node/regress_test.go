package node

import (
	"context"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// fastConfig: short timeouts, so that every job's fate is decided within
// seconds.
func fastConfig() Config {
	return Config{AuditTimeout: time.Second, HeartbeatTimeout: time.Second}
}

// TestUnbondedVerifierNeverAudits: verifiers that are not enrolled or
// not bonded, with keys ground so that their party IDs sort first, never
// get the audit of a job and their reports are refused; a solver that
// committed lies is caught by the bonded verifier and not paid.
func TestUnbondedVerifierNeverAudits(t *testing.T) {
	h := newHarness(t, fastConfig())
	honest := h.verifier(nil, true, true)
	fakes := []*peerNode{
		h.verifier(keyBefore(t, wire.RoleVerifier, honest.party), false, false), // neither
		h.verifier(keyBefore(t, wire.RoleVerifier, honest.party), true, false),  // enrolled, no bond
		h.verifier(keyBefore(t, wire.RoleVerifier, honest.party), false, true),  // bonded, not enrolled
	}
	cheater := h.solver(100_000)
	id, s := h.post()
	cheater.assigned(5 * time.Second)
	honest.honest(id, s)
	if err := cheater.commit(id, s, 3); err != nil {
		t.Fatal(err)
	}
	// Whoever gets the audit answers: a fake passes the cheater at once.
	var got *peerNode
	for deadline := time.Now().Add(5 * time.Second); got == nil && time.Now().Before(deadline); {
		for _, v := range append([]*peerNode{honest}, fakes...) {
			if _, ok := v.task(10 * time.Millisecond); ok {
				got = v
				break
			}
		}
	}
	switch got {
	case nil:
		t.Fatal("nobody got the audit")
	case honest:
		if err := honest.report(id, cheater.n.ID(), false, 3); err != nil {
			t.Fatal(err)
		}
	default:
		t.Errorf("verifier %s (not both enrolled and bonded) got the audit", got.party)
		if err := got.report(id, cheater.n.ID(), true, -1); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fakes {
		if err := f.report(id, cheater.n.ID(), true, -1); err == nil {
			t.Errorf("a pass from %s, not assigned, was accepted", f.party)
		}
	}
	j := h.waitTerminal(id, 10*time.Second)
	if j.State != lifecycle.AdjudicatedCheat {
		t.Errorf("job ended %s, want adjudicated_cheat", j.State)
	}
	if got := h.balance(cheater.earnings()); got != 0 {
		t.Errorf("the cheater was paid %d", got)
	}
	h.checkMoney(cheater.bondRef(), honest.bondRef())
}

// TestManyFinishedJobsNoReader: more jobs finish than any buffer holds
// while nobody waits for outcomes; the node keeps answering.
func TestManyFinishedJobsNoReader(t *testing.T) {
	if testing.Short() {
		t.Skip("70 jobs end to end")
	}
	h := newHarness(t, fastConfig())
	const jobs = 70
	var solvers []*peerNode
	for range 4 {
		solvers = append(solvers, h.solver(100_000))
	}
	v := h.verifier(nil, true, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, sv := range solvers {
		go func() {
			for {
				select {
				case a := <-sv.assigns:
					s := h.specOf(a.msg.SpecJSON)
					if err := sv.commit(a.job, s, s.Steps); err != nil {
						t.Errorf("commit: %v", err)
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	reports := make(chan error, jobs)
	go func() {
		for {
			select {
			case a := <-v.tasks:
				reports <- v.report(a.job, a.msg.Solver, true, -1)
			case <-ctx.Done():
				return
			}
		}
	}()
	for range jobs {
		h.post()
	}
	for i := range jobs {
		select {
		case err := <-reports:
			if err != nil {
				t.Fatalf("report %d: %v", i+1, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d jobs reported, then nothing for 10 s", i, jobs)
		}
	}
	h.checkMoney()
}
