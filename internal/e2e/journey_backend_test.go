package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/spec/vulkan"
)

// requireVulkan skips the test when the machine has no Vulkan device
// (lavapipe counts), unless BELUGA_REQUIRE_VULKAN=1 (CI, where lavapipe
// is installed: no device there is a failure).
func requireVulkan(t *testing.T) {
	t.Helper()
	devs, err := vulkan.Devices()
	if err == nil && len(devs) > 0 {
		return
	}
	why := fmt.Sprintf("no Vulkan device (%v; Mesa's lavapipe is one: apt-get install mesa-vulkan-drivers libvulkan1)", err)
	if os.Getenv("BELUGA_REQUIRE_VULKAN") == "1" {
		t.Fatal(why + ", and BELUGA_REQUIRE_VULKAN=1")
	}
	t.Skip(why)
}

// reVulkanBackend is the solver's startup line when it trains on Vulkan.
var reVulkanBackend = regexp.MustCompile(`backend: vulkan: (.+)`)

// crossJob is what the test reads of `beluga job status --json`.
type crossJob struct {
	State         string `json:"state"`
	CommittedStep int64  `json:"committed_step"`
	Solvers       []struct {
		SolverID string `json:"solver_id"`
		Backend  string `json:"backend"`
	} `json:"solvers"`
	Dispute *json.RawMessage `json:"dispute"`
}

// crossReport is what the test reads of the job's audit report.
type crossReport struct {
	Audits []struct {
		Signed struct {
			Findings struct {
				Method   string `json:"method"`
				Verdict  string `json:"verdict"`
				Segments []struct {
					Outcome string `json:"outcome"`
				} `json:"segments"`
				StepsChecked int64 `json:"steps_checked"`
			} `json:"findings"`
		} `json:"signed"`
	} `json:"audits"`
	Disputes []json.RawMessage `json:"disputes"`
	Slashes  []json.RawMessage `json:"slashes"`
	Outcome  struct {
		State   string `json:"state"`
		Verdict string `json:"verdict"`
	} `json:"outcome"`
}

// TestJourneyCrossBackend is the cross-backend audit with real
// processes: a solver daemon started with --backend vulkan (lavapipe will
// do) trains an MLP job (the synthetic example) and a small GPT job (one
// layer, d16, on an uploaded text), and a verifier daemon, which replays
// on the CPU, audits both. Each job settles clean: the coordinator's
// record says the solver trained it on "vulkan (…)", the signed audit
// report has every replayed segment matching, no dispute or slash, and
// the solver is paid. Bit-exactness across backends is what makes this
// pass: one differing bit is a mismatch, a dispute and a slash.
func TestJourneyCrossBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary as separate processes and trains on Vulkan (~40 s)")
	}
	requireVulkan(t)
	begin := time.Now()
	j, solver, verifier := network(t, []string{"--backend", "vulkan"}, []string{"--backend", "cpu"}) // the verifier on the CPU even where a GPU is
	device := solver.p.wait(reVulkanBackend, 30*time.Second)[1]
	t.Logf("solver trains on %s", device)

	// The jobs: the synthetic MLP, and a GPT on a text the client uploads.
	dir := j.dir
	mlp := filepath.Join(dir, "mlp.json")
	if err := os.WriteFile(mlp, []byte(run(t, j.bin, nil, "spec", "example", "--steps", "60", "--seed", "41")), 0o644); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for i := range 120 {
		fmt.Fprintf(&text, "%d: a GPU trains, a CPU checks, and the bits agree.\n", i*37%101)
	}
	corpus := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(corpus, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	j.client("upload", corpus)
	gpt := filepath.Join(dir, "gpt.json")
	if err := os.WriteFile(gpt, tinyGPT(t, run(t, j.bin, nil, "spec", "example", "--model", "gpt", "--text", corpus, "--steps", "16", "--seed", "43")), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, job := range []struct {
		name, spec string
		steps      int64
	}{{"mlp", mlp, 60}, {"gpt", gpt, 16}} {
		var posted jobStatus
		if err := json.Unmarshal([]byte(j.client("post", "--spec", job.spec, "--json")), &posted); err != nil || posted.ID == "" {
			t.Fatalf("%s: post: %v %+v", job.name, err, posted)
		}
		started := time.Now()
		if out, err := runErr(j.bin, j.env, "job", "watch", posted.ID); err != nil {
			t.Fatalf("%s job did not settle: %v\n%s\nsolver:\n%s\nverifier:\n%s", job.name, err, out, solver.p.output(), verifier.p.output())
		}
		t.Logf("%s job settled in %v", job.name, time.Since(started).Round(time.Millisecond))

		// The record, as the client reads it: settled, run by our solver
		// on Vulkan, no dispute.
		var rec crossJob
		if out := j.client("status", posted.ID, "--json"); json.Unmarshal([]byte(out), &rec) != nil {
			t.Fatalf("%s: job status --json:\n%s", job.name, out)
		}
		if rec.State != "settled" || rec.CommittedStep != job.steps || rec.Dispute != nil {
			t.Fatalf("%s job: state %s at step %d, dispute %v; want settled at %d without one", job.name, rec.State, rec.CommittedStep, rec.Dispute != nil, job.steps)
		}
		if len(rec.Solvers) != 1 || !strings.Contains(rec.Solvers[0].SolverID, solver.party) {
			t.Fatalf("%s job was not run by the solver %s alone: %+v", job.name, solver.party, rec.Solvers)
		}
		if b := rec.Solvers[0].Backend; !strings.HasPrefix(b, "vulkan (") {
			t.Fatalf("%s job: the coordinator records backend %q for the solver, want vulkan (…)", job.name, b)
		}
		if out := j.client("status", posted.ID); !strings.Contains(out, solver.party+" on vulkan (") {
			t.Fatalf("%s: job status does not say the solver trained on vulkan:\n%s", job.name, out)
		}

		// The signed audit report: verified, every audit a replay (on the
		// verifier's CPU) that matched each sampled segment.
		var rep crossReport
		j.report(posted.ID, job.name+"-report.json", &rep)
		if rep.Outcome.State != "settled" || len(rep.Disputes) != 0 || len(rep.Slashes) != 0 || len(rep.Audits) == 0 {
			t.Fatalf("%s report: outcome %+v, %d disputes, %d slashes, %d audits", job.name, rep.Outcome, len(rep.Disputes), len(rep.Slashes), len(rep.Audits))
		}
		for _, a := range rep.Audits {
			f := a.Signed.Findings
			if f.Method != "replay" || f.Verdict != "pass" || len(f.Segments) == 0 || f.StepsChecked == 0 {
				t.Fatalf("%s audit: method %s verdict %s, %d segments, %d steps checked", job.name, f.Method, f.Verdict, len(f.Segments), f.StepsChecked)
			}
			for _, s := range f.Segments {
				if s.Outcome != "match" {
					t.Fatalf("%s audit: a replayed segment's outcome is %s", job.name, s.Outcome)
				}
			}
		}
	}

	// Paid: the solver's earnings, as the operator reads its party.
	var party struct {
		EarningsMicroUSD int64 `json:"earnings_micro_usd"`
		Jobs             []struct {
			State string `json:"state"`
		} `json:"jobs"`
	}
	if code, _ := httpJSON(t, http.MethodGet, j.http+"/v1/parties/"+solver.party+"?role=solver", j.opKey, nil, &party); code != http.StatusOK {
		t.Fatalf("GET /v1/parties/%s: %d", solver.party, code)
	}
	if party.EarningsMicroUSD <= 0 || len(party.Jobs) != 2 || party.Jobs[0].State != "settled" || party.Jobs[1].State != "settled" {
		t.Fatalf("the solver is not paid for two settled jobs: %+v", party)
	}
	t.Logf("whole journey %v", time.Since(begin).Round(time.Millisecond))
}

// tinyGPT shrinks the GPT example spec (JSON) to one transformer layer of
// width 16 over a 16-byte context, batches of 4, a checkpoint every 8
// steps: a job lavapipe trains in a few hundred milliseconds.
func tinyGPT(t *testing.T, example string) []byte {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal([]byte(example), &s); err != nil {
		t.Fatalf("spec example: %v", err)
	}
	s["model"].(map[string]any)["layers"] = []any{
		map[string]any{"op": "embedding", "vocab": 256, "context": 16, "dim": 16},
		map[string]any{"op": "transformer", "heads": 2, "ff": 32},
		map[string]any{"op": "rmsnorm"},
		map[string]any{"op": "linear", "out": 256},
	}
	s["batch_size"], s["checkpoint_interval"] = 4, 8
	s["data"].(map[string]any)["text"].(map[string]any)["eval_windows"] = 8
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
