package cli

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// TestJobUpload: `beluga job upload FILE` stores the corpus on the
// coordinator and prints its root, size and the spec snippet; the spec
// `beluga spec example --model gpt --text FILE` writes names the same
// root and validates. A missing, empty or too-large file is a usage
// error and uploads nothing.
func TestJobUpload(t *testing.T) {
	t.Parallel()
	e := newClientEnv(t)
	corpus := bytes.Repeat([]byte("a corpus of my own. "), 2000)
	path := filepath.Join(e.dir, "corpus.txt")
	if err := os.WriteFile(path, corpus, 0o644); err != nil {
		t.Fatal(err)
	}
	tx, _ := dataset.NewText(corpus)
	r := tx.Root()
	root := hex.EncodeToString(r[:])
	code, out, errs := e.cli("upload", path)
	if code != 0 || !strings.Contains(out, "root "+root+", 40000 bytes") || !strings.Contains(out, `"source": "text"`) {
		t.Fatalf("upload: exit %d: %s %s", code, out, errs)
	}
	if b, ok, err := e.svc.Text(r, len(corpus)); err != nil || !ok || !bytes.Equal(b, corpus) {
		t.Fatalf("the coordinator does not hold the corpus: %v %v", ok, err)
	}
	if code, out, _ := e.cli("upload", path, "--json"); code != 0 || !strings.Contains(out, `"root": "`+root+`"`) {
		t.Fatalf("upload --json: exit %d: %s", code, out)
	}

	empty := filepath.Join(e.dir, "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	big := filepath.Join(e.dir, "big.txt")
	os.WriteFile(big, make([]byte, service.MaxTextUpload+1), 0o644)
	for _, bad := range []string{filepath.Join(e.dir, "missing.txt"), empty, big} {
		if code, _, errs := e.cli("upload", bad); code != exitUsage || errs == "" {
			t.Errorf("upload %s: exit %d, want %d with a message", filepath.Base(bad), code, exitUsage)
		}
	}

	code, out, errs = run(t, "spec", "example", "--model", "gpt", "--text", path)
	if code != 0 {
		t.Fatalf("spec example --text: exit %d: %s", code, errs)
	}
	s, err := spec.Decode([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if s.Data.Source != spec.SourceText || s.Data.Text.Root != root || s.Data.Text.Bytes != len(corpus) {
		t.Fatalf("spec data %+v %+v", s.Data, s.Data.Text)
	}
	if code, _, _ := run(t, "spec", "example", "--text", path); code == 0 {
		t.Fatal("--text with an MLP was accepted")
	}
}
