package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// writeSpec writes s as JSON to path.
func writeSpec(t *testing.T, path string, s *spec.Spec) {
	t.Helper()
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, js, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAuditPinsTheJob: `beluga audit` audits the job it is told to, not
// whatever spec.json the run directory holds. --job ID (or --spec FILE)
// pins it; a run directory whose spec is another job is refused, and the
// report names the job audited (job_id) and how it was pinned.
func TestAuditPinsTheJob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.CheckpointInterval = 12, 4
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	id, _ := s.ID()
	other := *s
	other.Seed++
	otherID, _ := other.ID()
	specFile, otherFile := filepath.Join(dir, "job.json"), filepath.Join(dir, "other.json")
	writeSpec(t, specFile, s)
	writeSpec(t, otherFile, &other)
	runDir := filepath.Join(dir, "run")
	if code, _, errs := run(t, "train", "--spec", specFile, "--out", runDir, "--commit", "--quiet", "--json"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errs)
	}
	audit := func(args ...string) (int, string, string) {
		return run(t, append([]string{"audit", "--trace", runDir, "--samples", "2", "--beacon", "01"}, args...)...)
	}

	// Pinned by --job, and by --spec: the report names the job.
	for _, pin := range [][]string{{"--job", id.String()}, {"--spec", specFile}, {"--job", id.String(), "--spec", specFile}} {
		code, out, errs := audit(append(pin, "--json")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", pin, code, errs)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v: %v\n%s", pin, err, out)
		}
		if rep["job_id"] != id.String() || rep["verdict"] != "pass" || rep["pinned_by"] != strings.Join(flagNames(pin), " ") {
			t.Fatalf("%v: report %s", pin, out)
		}
	}
	code, out, errs := audit("--job", id.String())
	if code != 0 || !strings.Contains(out, id.String()) || !strings.Contains(out, "pinned by --job") {
		t.Fatalf("text report: exit %d: %s%s", code, out, errs)
	}

	// Pinned to another job than the run directory's: refused.
	for _, pin := range [][]string{{"--job", otherID.String()}, {"--spec", otherFile}, {"--job", otherID.String(), "--spec", specFile}} {
		code, out, errs := audit(pin...)
		if code == 0 || out != "" || !strings.Contains(errs, id.String()) || !strings.Contains(errs, otherID.String()) {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q; want a refusal naming both jobs", pin, code, out, errs)
		}
	}

	// The run directory's spec.json swapped for another job's: a pinned
	// audit refuses it; an unpinned one says whose spec it audited.
	writeSpec(t, filepath.Join(runDir, "spec.json"), &other)
	if code, out, errs := audit("--job", id.String()); code == 0 || !strings.Contains(errs, otherID.String()) {
		t.Fatalf("swapped spec.json, pinned: exit %d, %q %q", code, out, errs)
	}
	if code, out, errs := audit("--spec", specFile); code == 0 || !strings.Contains(errs, otherID.String()) {
		t.Fatalf("swapped spec.json, --spec: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := audit("--job", "xyz"); code != exitUsage || !strings.Contains(errs, "--job") {
		t.Fatalf("bad --job: exit %d, %q", code, errs)
	}
}

// flagNames returns the flags (not their values) of args.
func flagNames(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			out = append(out, a)
		}
	}
	return out
}
