package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// TestVerifyInference: `beluga verify-inference RECEIPT --run DIR` passes
// an honest receipt of the trained run's model (exit 0, verified), proves
// fraud on a receipt whose solver made up a byte (exit 1, fraud: true),
// refuses a receipt for another model without blaming anyone, and refuses
// a malformed record, a missing --run and a directory with no model.
func TestVerifyInference(t *testing.T) {
	t.Parallel()
	_, specPath, corpusPath := tinyGPTFiles(t, 6)
	dir := filepath.Join(t.TempDir(), "run")
	trainJSON(t, "--spec", specPath, "--data", corpusPath, "--out", dir)
	m, err := rundir.OpenModel(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gpt.NewGenerator(m.Config, m.State, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	req := &inference.Request{ID: "cmpl-1", Model: m.Digest, Prompt: []byte("the "), MaxTokens: 10, Seed: 9, Temperature: 65536}
	res, err := inference.Generate(g, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, out []byte, positions [32]byte) string {
		r := *res
		r.Output, r.Positions = out, positions
		rc, err := inference.NewReceipt(req, &r, key)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, inference.NewRecord("tiny", req, out, rc).Marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	verify := func(args ...string) (int, verifyInferenceResult, string) {
		t.Helper()
		code, out, errs := run(t, append([]string{"verify-inference", "--json", "--threads", "1"}, args...)...)
		var v verifyInferenceResult
		if out != "" {
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("not JSON: %q", out)
			}
		}
		return code, v, errs
	}
	honest := write("honest.json", res.Output, res.Positions)
	if code, v, errs := verify(honest, "--run", dir); code != 0 || !v.Verified || v.CompletionTokens != 10 || !strings.HasPrefix(v.Solver, "s") {
		t.Fatalf("honest receipt: exit %d, %+v, %s", code, v, errs)
	}
	madeUp := slices.Clone(res.Output)
	madeUp[4] ^= 0x20
	cheat := write("cheat.json", madeUp, res.Positions)
	if code, v, errs := verify(cheat, "--run", dir); code != 1 || v.Verified || !v.Fraud || !strings.Contains(errs, "position 4") {
		t.Fatalf("made-up byte: exit %d, %+v, %s", code, v, errs)
	}
	// Another run (one more step: another model) is not the receipt's.
	other := filepath.Join(t.TempDir(), "other")
	_, specPath2, corpusPath2 := tinyGPTFiles(t, 7)
	trainJSON(t, "--spec", specPath2, "--data", corpusPath2, "--out", other)
	if code, v, errs := verify(honest, "--run", other); code != 1 || v.Verified || v.Fraud || !strings.Contains(errs, "another model, request or output") {
		t.Fatalf("other model: exit %d, %+v, %s", code, v, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"object":"inference.receipt"}`), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{bad, "--run", dir}, 1, "malformed inference receipt"},
		{[]string{honest}, exitUsage, "--run DIR is required"},
		{[]string{honest, "--run", t.TempDir()}, 1, "no GPT model"},
		{[]string{filepath.Join(dir, "nope.json"), "--run", dir}, 1, "no such file"},
	} {
		if code, _, errs := verify(c.args...); code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}
