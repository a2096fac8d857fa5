package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJourneyGPT is the walkthrough with the GPT example instead of the
// MLP: a coordinator, a solver and a verifier, each its own process, train,
// audit and settle a version-2 GPT job on the fortunes corpus, and the
// client downloads weights that match the committed final digest and an
// audit report that verifies.
func TestJourneyGPT(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary as separate processes and trains a GPT (~1 min)")
	}
	const corpus = "/usr/share/games/fortunes"
	if _, err := os.Stat(filepath.Join(corpus, "fortunes")); err != nil {
		t.Skipf("the fortunes corpus is not installed (apt-get install fortunes): %v", err)
	}
	j, solver, _ := gptNetwork(t, "--fortunes", corpus)
	dir := j.dir
	specFile := filepath.Join(dir, "gpt.json")
	if err := os.WriteFile(specFile, []byte(run(t, j.bin, nil, "spec", "example", "--model", "gpt", "--steps", "24", "--seed", "5")), 0o644); err != nil {
		t.Fatal(err)
	}
	var posted jobStatus
	if err := json.Unmarshal([]byte(j.client("post", "--spec", specFile, "--json")), &posted); err != nil || posted.ID == "" {
		t.Fatalf("post: %v %+v", err, posted)
	}
	j.client("watch", posted.ID)
	final := j.status(posted.ID)
	if final.State != "settled" || final.CommittedStep != 24 {
		t.Fatalf("GPT job ended %s at step %d, want settled at 24", final.State, final.CommittedStep)
	}
	if n := len(final.Solvers); n == 0 || !strings.Contains(final.Solvers[n-1].SolverID, solver.party) {
		t.Fatalf("the job was not run by the solver %s: %+v", solver.party, final.Solvers)
	}
	weights := filepath.Join(dir, "weights.bin")
	j.client("download", posted.ID, "-o", weights)
	report := filepath.Join(dir, "report.json")
	j.client("report", posted.ID, "-o", report)
	if out := run(t, j.bin, nil, "report", "verify", report, "--coordinator-key", j.p2pAddr); !strings.Contains(strings.ToLower(out), "ok") && !strings.Contains(strings.ToLower(out), "verified") {
		t.Fatalf("report verify:\n%s", out)
	}
}

// gptNetwork starts a coordinator, a solver and a verifier (each its own
// process, the daemons with extra flags), issues the keys and bonds, and
// configures a funded client: the setup of the GPT journeys.
func gptNetwork(t *testing.T, extra ...string) (j *journey, solver, verifier *daemon) {
	t.Helper()
	return network(t, extra, extra)
}

// network is gptNetwork with the solver's and the verifier's own extra
// flags.
func network(t *testing.T, solverExtra, verifierExtra []string) (j *journey, solver, verifier *daemon) {
	t.Helper()
	return networkWith(t, "", solverExtra, verifierExtra)
}

// networkWith is network with the solver run from a binary built with
// solverTags ("" for the one every other process runs).
func networkWith(t *testing.T, solverTags string, solverExtra, verifierExtra []string) (j *journey, solver, verifier *daemon) {
	t.Helper()
	j = newJourney(t)
	dir := j.dir
	solverBin := j.bin
	if solverTags != "" {
		solverBin = buildTagged(t, dir, "beluga-"+strings.ReplaceAll(solverTags, ",", "-"), solverTags)
	}
	j.coordinator()
	spawn := func(role, name string, extra []string) *daemon {
		d := &daemon{dir: filepath.Join(dir, name)}
		d.args = append([]string{role, "--coordinator", j.p2pAddr, "--dir", d.dir, "--listen", "/ip4/127.0.0.1/tcp/0"}, extra...)
		if role == "solver" {
			d.args = append(d.args, "--no-idle-check", "--ask", "0.02")
		}
		bin := j.bin
		if role == "solver" {
			bin = solverBin
		}
		d.p = start(t, dir, name, bin, nil, d.args...)
		d.party = d.p.wait(reParty, 60*time.Second)[1]
		return d
	}
	solver, verifier = spawn("solver", "solver", solverExtra), spawn("verifier", "verifier", verifierExtra)

	clientKey := strings.TrimSpace(j.operator("key", "--role", "client", "--subject", "acme"))
	j.operator("deposit", "--account", "client:acme", "--usd", "100", "--bank-ref", "wire-acme-1")
	j.operator("key", "--role", "solver", "--subject", solver.party)
	j.operator("deposit", "--account", "solver_bond:"+solver.party, "--usd", "100", "--bank-ref", "wire-solver-1")
	j.operator("key", "--role", "verifier", "--subject", verifier.party)
	j.operator("deposit", "--account", "verifier_bond:"+verifier.party, "--usd", "100", "--bank-ref", "wire-verifier-1")
	j.env = []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "client-config")}
	run(t, j.bin, j.env, "job", "config", "set", "--coordinator", j.http, "--api-key", clientKey)
	return j, solver, verifier
}
