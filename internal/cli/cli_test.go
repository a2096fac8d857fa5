package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSpecExample(t *testing.T) {
	for _, ds := range []string{"synthetic", "fashion-mnist"} {
		code, out, errs := run(t, "spec", "example", "--dataset", ds)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", ds, code, errs)
		}
		if _, err := spec.Decode([]byte(out)); err != nil {
			t.Fatalf("%s: printed spec does not decode: %v", ds, err)
		}
	}
	if code, _, errs := run(t, "spec", "example", "--dataset", "cifar"); code == 0 || !strings.Contains(errs, "no example") {
		t.Fatalf("unknown dataset: exit %d, %q", code, errs)
	}
}

// lastDigest returns the final digest recorded in a conformance vector.
func lastDigest(t *testing.T, vector string) string {
	data, err := os.ReadFile(filepath.Join("../../spec/testdata/vectors", vector, "steps.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	return f[len(f)-1]
}

func TestTrainJSONMatchesVector(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "train", "--out", dir, "--json", "--quiet", "--commit")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"job_id", "steps", "final_digest", "final_loss", "test_accuracy", "seconds"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("missing %q in %s", k, out)
		}
	}
	if got, want := sum["final_digest"], lastDigest(t, "example-synthetic"); got != want {
		t.Fatalf("final digest %v, the conformance vector says %s", got, want)
	}
	for _, f := range []string{"spec.json", "result.json", "store", "trace.txt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	// Training the spec file it wrote gives the same job.
	code, out2, errs := run(t, "train", "--spec", filepath.Join(dir, "spec.json"), "--json", "--quiet", "--kernel", "go", "--threads", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var sum2 map[string]any
	if err := json.Unmarshal([]byte(out2), &sum2); err != nil {
		t.Fatal(err)
	}
	if sum2["final_digest"] != sum["final_digest"] || sum2["job_id"] != sum["job_id"] {
		t.Fatal("pure-Go single-thread run differs from the default run")
	}
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version": 1, "model": {"layers": [{"op": "conv2d"}]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"train", "--spec", bad}, 1, "bad.json"},
		{[]string{"train", "--spec", filepath.Join(dir, "missing.json")}, 1, "no such file"},
		{[]string{"train", "--resume"}, exitUsage, "--resume needs --out"},
		{[]string{"train", "--kernel", "quantum"}, 1, "quantum"},
		{[]string{"train", "--bogus"}, exitUsage, "unknown flag"},
		{[]string{"spec", "id", bad}, 1, "invalid"},
	} {
		code, _, errs := run(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, errs, c.code, c.msg)
		}
	}
}
