package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Patterns in what the processes print (the README's walkthrough shows the
// same lines).
var (
	reOperatorKey = regexp.MustCompile(`^(blg_[A-Za-z0-9_-]+)$`)
	reCoordP2P    = regexp.MustCompile(`(/ip4/127\.0\.0\.1/tcp/\d+/p2p/\w+)`)
	reHTTP        = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	reParty       = regexp.MustCompile(`party[= ]([a-z2-7]{13})\b`)
)

// journey is one run of the README's walkthrough: the binary, the
// directory, the coordinator's ports and the keys handed out.
type journey struct {
	t        *testing.T
	bin, dir string
	httpPort int
	p2pPort  int
	coord    *proc
	http     string
	p2pAddr  string
	opKey    string
	env      []string // the client's environment
}

// coordinator starts (or restarts) the coordinator on the journey's ports
// and data directory, with extra flags.
func (j *journey) coordinator(extra ...string) {
	t := j.t
	args := append([]string{"coordinator", "--data", filepath.Join(j.dir, "coord"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", j.httpPort),
		"--p2p-listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", j.p2pPort),
		"--vault-key-file", filepath.Join(j.dir, "vault.key"),
		"--ach-company-name", "Beluga Test", "--ach-company-id", "1234567890",
		"--ach-origin", "121000358", "--ach-destination", "021000021", "--ach-odfi", "121000358",
		"--heartbeat-timeout", "3s", "--minimum-payout", "0.01", "--audit-timeout", "20s", "--job-timeout", "10m"}, extra...)
	j.coord = start(t, j.dir, fmt.Sprintf("coordinator-%d", time.Now().UnixNano()), j.bin, nil, args...)
	if j.opKey == "" {
		j.opKey = j.coord.wait(reOperatorKey, 60*time.Second)[1]
	}
	j.p2pAddr = j.coord.wait(reCoordP2P, 60*time.Second)[1]
	j.http = j.coord.wait(reHTTP, 60*time.Second)[1]
}

// newJourney is a journey in a fresh directory (kept after the test
// with BELUGA_E2E_KEEP=1, and named in the log of a failed test): the
// binary built there, two free ports for the coordinator and the vault
// key that seals bank details at rest. No process runs yet.
func newJourney(t *testing.T) *journey {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("BELUGA_E2E_KEEP") == "1" {
		var err error
		if dir, err = os.MkdirTemp("", "beluga-e2e-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs are in %s (kept with BELUGA_E2E_KEEP=1)", dir)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "vault.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &journey{t: t, bin: buildBeluga(t, dir), dir: dir, httpPort: freePort(t), p2pPort: freePort(t)}
}

// enrol does what an operator does for a new solver or verifier process
// p: an API key for its party and a $usd bond; it returns the party.
func (j *journey) enrol(p *proc, role, usd string) string {
	party := p.wait(reParty, 60*time.Second)[1]
	j.operator("key", "--role", role, "--subject", party)
	j.operator("deposit", "--account", role+"_bond:"+party, "--usd", usd, "--bank-ref", "wire-"+role+"-"+party)
	return party
}

// report downloads job id's signed audit report to name in the journey's
// directory, checks it offline against the coordinator's key with
// `beluga report verify`, and decodes it into into.
func (j *journey) report(id, name string, into any) {
	t := j.t
	t.Helper()
	file := filepath.Join(j.dir, name)
	j.client("report", id, "-o", file)
	run(t, j.bin, nil, "report", "verify", file, "--coordinator-key", j.p2pAddr)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("report %s: %v", name, err)
	}
}

// operator runs `beluga operator args…` with the operator's key.
func (j *journey) operator(args ...string) string {
	j.t.Helper()
	return run(j.t, j.bin, []string{"BELUGA_COORDINATOR=" + j.http}, append([]string{"operator", "--api-key", j.opKey}, args...)...)
}

// client runs `beluga job args…` as the client.
func (j *journey) client(args ...string) string {
	j.t.Helper()
	return run(j.t, j.bin, j.env, append([]string{"job"}, args...)...)
}

// jobStatus is what `beluga job status --json` prints that the test reads.
type jobStatus struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	CommittedStep int64  `json:"committed_step"`
	Solvers       []struct {
		SolverID string `json:"solver_id"`
	} `json:"solvers"`
}

func (j *journey) status(id string) jobStatus {
	j.t.Helper()
	var s jobStatus
	out := j.client("status", id, "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		j.t.Fatalf("job status --json: %v\n%s", err, out)
	}
	return s
}

// until polls cond every 200 ms for up to within.
func until(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// daemon is a solver or verifier process and its party ID.
type daemon struct {
	p     *proc
	party string
	dir   string
	args  []string
}

// TestJourney is the README's walkthrough as four separate processes —
// a coordinator, two solvers and a verifier on 127.0.0.1 — with a client
// driving the CLI: keys, deposit, quote, post, watch; the coordinator is
// restarted mid-job and the solver running the job is killed with
// SIGKILL; the job still settles, the downloaded weights match the
// committed final digest, the audit report verifies, and the solver
// that finished the job, with bank details registered, is in a payout run.
func TestJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary as separate processes (~1 min)")
	}
	j := newJourney(t)
	dir := j.dir
	j.coordinator()

	// Solvers and the verifier, each its own process with its own key.
	spawn := func(role, name string, extra ...string) *daemon {
		d := &daemon{dir: filepath.Join(dir, name)}
		d.args = append([]string{role, "--coordinator", j.p2pAddr, "--dir", d.dir, "--listen", "/ip4/127.0.0.1/tcp/0"}, extra...)
		d.p = start(t, dir, name, j.bin, nil, d.args...)
		d.party = d.p.wait(reParty, 60*time.Second)[1]
		return d
	}
	solvers := []*daemon{
		spawn("solver", "solver1", "--no-idle-check", "--ask", "0.02"),
		spawn("solver", "solver2", "--no-idle-check", "--ask", "0.02"),
	}
	verifier := spawn("verifier", "verifier")

	// Operator: keys for the client and the daemons, the client's funds,
	// the bonds.
	clientKey := strings.TrimSpace(j.operator("key", "--role", "client", "--subject", "acme"))
	j.operator("deposit", "--account", "client:acme", "--usd", "100", "--bank-ref", "wire-acme-1")
	for i, s := range solvers {
		key := strings.TrimSpace(j.operator("key", "--role", "solver", "--subject", s.party))
		j.operator("deposit", "--account", "solver_bond:"+s.party, "--usd", "100", "--bank-ref", fmt.Sprintf("wire-solver-%d", i))
		// Solver: its bank details, for the payouts.
		run(t, j.bin, []string{"BELUGA_COORDINATOR=" + j.http},
			"solver", "bank", "--api-key", key, "--party", s.party, "--holder", fmt.Sprintf("Solver %d", i+1), "--routing", "021000021", "--account", fmt.Sprintf("00012345%d", i))
		if st := run(t, j.bin, []string{"BELUGA_COORDINATOR=" + j.http}, "solver", "status", "--dir", s.dir, "--api-key", key); !strings.Contains(st, "$100") || strings.Contains(st, "no bank details") {
			t.Fatalf("solver status after its bond and bank details:\n%s", st)
		}
	}
	// The verifier is enrolled by its key and bonded.
	j.operator("key", "--role", "verifier", "--subject", verifier.party)
	j.operator("deposit", "--account", "verifier_bond:"+verifier.party, "--usd", "100", "--bank-ref", "wire-verifier-1")

	// Client: config, a spec, a quote, the job.
	j.env = []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "client-config")}
	run(t, j.bin, j.env, "job", "config", "set", "--coordinator", j.http, "--api-key", clientKey)
	specFile := filepath.Join(dir, "job.json")
	if err := os.WriteFile(specFile, []byte(run(t, j.bin, nil, "spec", "example", "--steps", "8000", "--seed", "11")), 0o644); err != nil {
		t.Fatal(err)
	}
	if q := j.client("quote", "--spec", specFile); !strings.Contains(q, "solver") || !strings.Contains(q, "audit") {
		t.Fatalf("quote lacks its lines:\n%s", q)
	}
	var posted jobStatus
	if err := json.Unmarshal([]byte(j.client("post", "--spec", specFile, "--json")), &posted); err != nil || posted.ID == "" {
		t.Fatalf("post: %v %+v", err, posted)
	}
	id := posted.ID

	// The job runs; the coordinator restarts under it.
	until(t, 60*time.Second, "the job commits a checkpoint", func() bool {
		s := j.status(id)
		return s.State == "running" && s.CommittedStep > 0
	})
	j.coord.stop(syscall.SIGTERM)
	j.coordinator()

	// The solver running the job is killed; the other resumes it.
	s := j.status(id)
	if len(s.Solvers) == 0 {
		t.Fatalf("running job with no solver: %+v", s)
	}
	var victim, survivor *daemon
	for _, d := range solvers {
		if strings.Contains(s.Solvers[len(s.Solvers)-1].SolverID, d.party) {
			victim = d
		} else {
			survivor = d
		}
	}
	if victim == nil {
		t.Fatalf("the job's solver %s is none of ours", s.Solvers[len(s.Solvers)-1].SolverID)
	}
	until(t, 30*time.Second, "the job moves on after the restart", func() bool { return j.status(id).CommittedStep > s.CommittedStep })
	victim.p.stop(syscall.SIGKILL)

	// Watch to the end.
	j.client("watch", id)
	final := j.status(id)
	if final.State != "settled" {
		t.Fatalf("job ended %s, want settled", final.State)
	}
	if n := len(final.Solvers); n < 2 || !strings.Contains(final.Solvers[n-1].SolverID, survivor.party) {
		t.Fatalf("the job was not finished by the surviving solver %s: %+v", survivor.party, final.Solvers)
	}

	// Download: the weights are checked against the committed final digest.
	weights := filepath.Join(dir, "weights.bin")
	j.client("download", id, "-o", weights)
	// The audit report, verified by the third-party command.
	report := filepath.Join(dir, "report.json")
	j.client("report", id, "-o", report)
	run(t, j.bin, nil, "report", "verify", report, "--coordinator-key", j.p2pAddr)

	// Payout: the coordinator, restarted as if 20 days later, runs the
	// period's payout; the surviving solver is in it.
	j.coord.stop(syscall.SIGTERM)
	j.coordinator("--clock-ahead", "480h")
	period := nextRunDay(time.Now())
	out := j.operator("payout", "--period", period, "--json")
	if !strings.Contains(out, survivor.party) {
		t.Fatalf("the payout run of %s does not pay the solver %s:\n%s", period, survivor.party, out)
	}
}

// nextRunDay is the first payout day (the 1st or the 15th) after t.
func nextRunDay(t time.Time) string {
	t = t.UTC()
	if t.Day() < 15 {
		return time.Date(t.Year(), t.Month(), 15, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}
