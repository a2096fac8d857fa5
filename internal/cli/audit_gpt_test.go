package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditGPTRun: `beluga audit --trace DIR --data CORPUS` replays a GPT
// run written by `train --commit` on the corpus file, as it audits an
// MLP; after a checkpoint of the run is altered (the solver's store no
// longer opens its commitments) the audit fails with exit status 1, and
// with another corpus it refuses to audit at all.
func TestAuditGPTRun(t *testing.T) {
	t.Parallel()
	_, specPath, corpus := tinyGPTFiles(t, 12)
	runDir := filepath.Join(t.TempDir(), "run")
	if code, _, errs := run(t, "train", "--spec", specPath, "--data", corpus, "--out", runDir, "--commit", "--quiet", "--json", "--threads", "1"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errs)
	}
	audit := func(data string) (int, map[string]any, string) {
		code, out, errs := run(t, "audit", "--trace", runDir, "--spec", specPath, "--data", data, "--beacon", "02", "--json")
		var rep map[string]any
		if code <= 1 && out != "" {
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("exit %d, not one JSON object: %v\n%s%s", code, err, out, errs)
			}
		}
		return code, rep, errs
	}
	code, rep, errs := audit(corpus)
	if code != 0 || rep["verdict"] != "pass" || rep["steps_checked"].(float64) < 1 {
		t.Fatalf("honest GPT run: exit %d, %v %s", code, rep, errs)
	}
	other := filepath.Join(t.TempDir(), "other.txt")
	b, err := os.ReadFile(corpus)
	if err != nil {
		t.Fatal(err)
	}
	b[10] ^= 1
	if err := os.WriteFile(other, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, rep, errs := audit(other); code == 0 || rep != nil || !strings.Contains(errs, "does not match") {
		t.Fatalf("audited with another corpus: exit %d, %v %s", code, rep, errs)
	}
	// The trace commits another digest at step 9: the run no longer
	// opens it, and replaying step 8 does not reach it.
	tracePath := filepath.Join(runDir, "trace.txt")
	tr, err := os.ReadFile(tracePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(tr), "\n")
	if !strings.HasPrefix(lines[10], "9 ") {
		t.Fatalf("trace line 10 is %q, want step 9", lines[10])
	}
	lines[10] = "9 " + strings.Repeat("ab", 32)
	if err := os.WriteFile(tracePath, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, rep, errs = audit(corpus)
	if code != 1 || rep["verdict"] != "fail" {
		t.Fatalf("tampered GPT trace: exit %d, %v %s", code, rep, errs)
	}
	if bad := rep["first_bad_step"].(float64); bad != 8 && bad != 9 {
		t.Fatalf("first bad step %v, want 8 or 9", bad)
	}
}
