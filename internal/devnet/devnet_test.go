package devnet

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/node"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// TestDevnet runs the whole network and checks the JSON result.
func TestDevnet(t *testing.T) {
	var log bytes.Buffer
	res, err := Run(context.Background(), Config{Steps: 30, Out: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	b, _ := json.Marshal(res)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"jobs", "slashed", "paid_micro_usd", "ledger_balanced"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("JSON result lacks %q: %s", k, b)
		}
	}
	if len(res.Jobs) != 3 || len(res.Slashed) != 1 || !res.LedgerBalanced || res.ReportsVerified != 3 {
		t.Fatalf("result %s\n%s", b, log.String())
	}
	if !strings.Contains(log.String(), "referee ruled") || !strings.Contains(log.String(), "solver loses") {
		t.Fatalf("no refereed dispute in the timeline:\n%s", log.String())
	}
	// The third job, the cheater's, is a GPT: its failed replay audit is
	// a dispute the referee settles on one operator of the GPT's step.
	g := gptJob(Config{})
	if len(res.Models) != 3 || res.Models[g] != "gpt" || res.Jobs[g].State != lifecycle.AdjudicatedCheat || res.Jobs[g].Verdict != node.VerdictFail {
		t.Fatalf("GPT job: models %v, outcome %+v\n%s", res.Models, res.Jobs[g], log.String())
	}
	if !strings.Contains(log.String(), "a byte-level GPT") {
		t.Fatalf("the timeline does not show the GPT job:\n%s", log.String())
	}
	// No backend configured: every solver trains on the CPU, and says so.
	if len(res.Solvers) != 3 || len(res.Backends) != 3 {
		t.Fatalf("default backend: solvers %+v, jobs' backends %q", res.Solvers, res.Backends)
	}
	for i, s := range res.Solvers {
		if !strings.HasPrefix(s.Backend, "cpu (") || !strings.HasPrefix(res.Backends[i], "cpu (") {
			t.Fatalf("default backend: solvers %+v, jobs' backends %q", res.Solvers, res.Backends)
		}
	}
}

// TestSilentVerifierIsReplaced: a verifier that takes an audit and never
// answers loses it to the other verifier; every job still ends.
func TestSilentVerifierIsReplaced(t *testing.T) {
	var log bytes.Buffer
	res, err := Run(context.Background(), Config{Steps: 20, Out: &log, SilentVerifier: true, AuditTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "verifier silent: reassigning the audit") {
		t.Fatalf("no reassignment in the timeline:\n%s", log.String())
	}
	if !res.LedgerBalanced {
		t.Fatal("ledger unbalanced")
	}
}

// TestKilledSolversJobResumes: a solver killed mid-job stops
// heartbeating; the coordinator declares it vanished and the job goes to
// another solver, which resumes from the last announced checkpoint
// (fetched from the replica a verifier keeps) and completes it; it is
// audited and settled.
func TestKilledSolversJobResumes(t *testing.T) {
	var log bytes.Buffer
	res, err := Run(context.Background(), Config{Steps: 1500, Out: &log, KillSolverAfter: 1500 * time.Millisecond, HeartbeatTimeout: 4 * time.Second})
	out := log.String()
	t.Log(out) // shown with -v
	if !strings.Contains(out, "solver went silent") || !strings.Contains(out, "job resumable") {
		t.Fatalf("the killed solver was not noticed (%v):\n%s", err, out)
	}
	if !strings.Contains(out, "resumes job") || !strings.Contains(out, "resuming from a checkpoint") {
		t.Fatalf("the job was not resumed from a checkpoint (%v):\n%s", err, out)
	}
	// The killed solver cannot be paid; the devnet's own check asks that
	// both honest solvers are paid, so only that complaint is expected.
	if err != nil && !strings.Contains(err.Error(), "was not paid") {
		t.Fatalf("%v\n%s", err, out)
	}
	// The rerun job ends like any other: settled if an honest solver
	// resumed it, the cheater slashed if it was the one (it cheats on
	// every job it runs).
	if res != nil {
		for _, o := range res.Jobs {
			if o.State != lifecycle.Settled && o.State != lifecycle.AdjudicatedCheat {
				t.Fatalf("job %s ended %s:\n%s", o.Job, o.State, out)
			}
		}
	} else if strings.Count(out, "settled: solver paid") < 1 {
		t.Fatalf("no job settled:\n%s", out)
	}
}

// TestOwnerComesBack: the owner of the second solver's machine comes back
// mid-job; the job pauses at a step boundary, resumes when the machine is
// idle again, and settles like the others.
func TestOwnerComesBack(t *testing.T) {
	var log bytes.Buffer
	res, err := Run(context.Background(), Config{Steps: 800, Out: &log, OwnerBusyFrom: 800 * time.Millisecond, OwnerBusyFor: 500 * time.Millisecond})
	out := log.String()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"idle gate closed", "paused at step", "idle gate opened", "resuming job"} {
		if !strings.Contains(out, want) {
			t.Fatalf("timeline lacks %q:\n%s", want, out)
		}
	}
	if len(res.Slashed) != 1 || !res.LedgerBalanced {
		t.Fatalf("result %+v", res)
	}
}

// TestConfidentialDevnet: the honest confidential job passes on zk tile
// proofs alone; the cheater, whose zk trace does not commit its run, is
// caught by an invalid proof and slashed after the coordinator checks the
// disputed tile's proof itself. Slow (BELUGA_SLOW=1): a development key
// setup of ~1 minute and ~20 tile proofs of ~1.5 s.
func TestConfidentialDevnet(t *testing.T) {
	spectest.Slow(t)
	var log bytes.Buffer
	res, err := Run(context.Background(), Config{Steps: 30, Out: &log, Confidential: true, ZKKeysDir: os.Getenv("BELUGA_ZK_KEYS")})
	out := log.String()
	t.Log(out) // shown with -v
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Jobs) != 3 || len(res.Slashed) != 1 || !res.LedgerBalanced || res.ReportsVerified != 3 {
		t.Fatalf("result %+v\n%s", res, out)
	}
	for _, want := range []string{"challenged tile proofs valid", "no weights or data seen", "zk referee ruled", "the solver's proof of tile", "is invalid", "solver slashed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the timeline lacks %q:\n%s", want, out)
		}
	}
}
