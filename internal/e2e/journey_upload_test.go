package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJourneyUploadedCorpus: a client trains a GPT on its own text. It
// uploads the corpus (beluga job upload), writes a spec on it (beluga spec
// example --model gpt --text) and posts it; the solver and the verifier,
// each its own process and started without the file, fetch the corpus
// from the coordinator by root and size, keep it under their --dir, train
// and audit, and the job settles.
func TestJourneyUploadedCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary as separate processes and trains a GPT (~1 min)")
	}
	j, solver, verifier := gptNetwork(t)
	dir := j.dir
	var text strings.Builder
	for i := range 600 {
		fmt.Fprintf(&text, "Line %d: the owl and the pussy-cat went to sea in a beautiful pea-green boat.\n", i*7919%1000)
	}
	corpusFile := filepath.Join(dir, "my-corpus.txt")
	if err := os.WriteFile(corpusFile, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var up struct {
		Root  string `json:"root"`
		Bytes int    `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(j.client("upload", corpusFile, "--json")), &up); err != nil || len(up.Root) != 64 || up.Bytes != text.Len() {
		t.Fatalf("upload: %v %+v", err, up)
	}
	specFile := filepath.Join(dir, "gpt.json")
	if err := os.WriteFile(specFile, []byte(run(t, j.bin, nil, "spec", "example", "--model", "gpt", "--text", corpusFile, "--steps", "12", "--seed", "9")), 0o644); err != nil {
		t.Fatal(err)
	}
	var posted jobStatus
	if err := json.Unmarshal([]byte(j.client("post", "--spec", specFile, "--json")), &posted); err != nil || posted.ID == "" {
		t.Fatalf("post: %v %+v", err, posted)
	}
	j.client("watch", posted.ID)
	final := j.status(posted.ID)
	if final.State != "settled" || final.CommittedStep != 12 {
		t.Fatalf("GPT job on an uploaded corpus ended %s at step %d, want settled at 12", final.State, final.CommittedStep)
	}
	for _, d := range []*daemon{solver, verifier} {
		b, err := os.ReadFile(filepath.Join(d.dir, "data", "text", up.Root))
		if err != nil || string(b) != text.String() {
			t.Fatalf("%s does not keep the fetched corpus: %v", d.dir, err)
		}
	}
}
