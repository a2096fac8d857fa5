package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/internal/modelimport/importtest"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// TestModelImportGenerateReceipt: `beluga model import` turns a GPT-2
// safetensors checkpoint (random, written here) into a run directory and
// prints its digest; `beluga generate --run` continues a prompt with it,
// the same bytes twice; and the receipt path of SPEC.md §21 works on it —
// an honest receipt passes inference.Check, a changed byte is fraud.
func TestModelImportGenerateReceipt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, cj, err := importtest.GPT2(7, importtest.Small, true, "F32")
	if err != nil {
		t.Fatal(err)
	}
	in, cfg, out := filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "config.json"), filepath.Join(dir, "run")
	if err := os.WriteFile(in, st, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, cj, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "model", "import", "--in", in, "--hf-config", cfg, "--out", out)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	m, err := rundir.OpenModel(context.Background(), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(stdout); got != hex.EncodeToString(m.Digest[:]) {
		t.Fatalf("import printed %q, the run's digest is %x", got, m.Digest)
	}
	if code, _, stderr := run(t, "model", "import", "--in", in, "--hf-config", cfg, "--out", out); code == 0 || !strings.Contains(stderr, "already holds a run") {
		t.Fatalf("import over a run: exit %d: %s", code, stderr)
	}
	gen := func() string {
		code, stdout, stderr := run(t, "generate", "--run", out, "--prompt", "Hello", "--tokens", "12", "--seed", "3", "--temperature", "0.8", "--threads", "1")
		if code != 0 {
			t.Fatalf("generate: exit %d: %s", code, stderr)
		}
		if strings.Contains(stderr, "unfinished") {
			t.Fatalf("generate calls an imported model unfinished: %s", stderr)
		}
		return stdout
	}
	if a, b := gen(), gen(); a != b || len(a) != 13 {
		t.Fatalf("generate: %q then %q", a, b)
	}
	g, err := gpt.NewGenerator(m.Config, m.State, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	req := &inference.Request{ID: "imported", Model: m.Digest, Prompt: []byte("The "), MaxTokens: 16, Seed: 5, Temperature: 1 << 16}
	res, err := inference.Generate(g, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	rc, err := inference.NewReceipt(req, res, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := inference.Check(g, m.Digest, req, res.Output, rc); err != nil {
		t.Fatalf("honest receipt on the imported model: %v", err)
	}
	bad := append([]byte(nil), res.Output...)
	bad[3] ^= 1
	res2 := &inference.Result{Output: bad, Finish: res.Finish, Positions: res.Positions}
	rc2, err := inference.NewReceipt(req, res2, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := inference.Check(g, m.Digest, req, bad, rc2); !errors.Is(err, inference.ErrFraud) {
		t.Fatalf("a changed byte: %v, want fraud", err)
	}
}

// TestModelImportRefusesTokenizer: a checkpoint whose vocabulary is not
// the 256 bytes is refused, saying a tokenizer is not supported yet, and
// nothing is written.
func TestModelImportRefusesTokenizer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := importtest.Small
	s.Vocab = 512
	st, _, err := importtest.GPT2(1, s, false, "F32")
	if err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "run")
	if err := os.WriteFile(in, st, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "model", "import", "--in", in, "--heads", "2", "--out", out)
	if code == 0 || !strings.Contains(stderr, "tokenizer is not supported yet") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a refused import wrote %s (%v)", out, err)
	}
}
