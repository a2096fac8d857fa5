package gptref

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// fires are the saturation sites of SPEC.md §20 the GPT vectors fire
// together: every one that a valid step can reach (gpt-saturating-wide
// adds the SiLU input's Sat32 and NormParts' clamp). The other two cannot
// fire: the embedding's Sat32 (two master values sum below 2^32 before the
// shift by 8) and AdamW's h clamp (|h| ≤ 2^30 after clipping, and without
// it |h| ≤ ν·2^15 ≤ 2^30).
var fires = []string{siteAdamMean, siteAdamNormT, siteAdamClipIn, siteAdamMu, siteAdamW, siteExpCap, siteNorm,
	siteNormParts, siteResidual, siteShiftRound, siteUp}

// cannotFire are the sites no valid step reaches.
var cannotFire = []string{siteEmbed, siteAdamH}

// TestGPTVectorsFireEveryReachableClamp runs the reference over every step
// of the GPT vectors and checks which saturation sites they fire: every
// one of fires, none of cannotFire.
func TestGPTVectorsFireEveryReachableClamp(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	saturated = func(site string) {
		mu.Lock()
		hits[site]++
		mu.Unlock()
	}
	t.Cleanup(func() { saturated = nil })
	for _, name := range []string{"gpt-saturating", "gpt-saturating-wide", "gpt-tiny"} {
		dir := filepath.Join("..", "testdata", "gptvectors", name)
		js, err := os.ReadFile(filepath.Join(dir, "spec.json"))
		if err != nil {
			t.Fatal(err)
		}
		text, err := os.ReadFile(filepath.Join(dir, "corpus.txt"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := spec.Decode(js)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.GPT()
		if err != nil {
			t.Fatal(err)
		}
		split, err := s.TextSplit()
		if err != nil {
			t.Fatal(err)
		}
		tx, err := dataset.NewText(text)
		if err != nil {
			t.Fatal(err)
		}
		st := c.Init()
		for step := range s.Steps {
			// §20.5: window i is T+1 bytes at its start; tokens are its
			// first T, targets its last T.
			var tokens, targets []byte
			for _, o := range dataset.TrainWindows(c.Seed, step, c.Batch, c.Context, split.Train, nil) {
				w, err := tx.Bytes(int(o), c.Context+1)
				if err != nil {
					t.Fatal(err)
				}
				tokens, targets = append(tokens, w[:c.Context]...), append(targets, w[1:]...)
			}
			if st, _, err = Step(c, st, tokens, targets); err != nil {
				t.Fatal(err)
			}
		}
	}
	var fired []string
	for site := range hits {
		fired = append(fired, site)
	}
	sort.Strings(fired)
	t.Logf("sites fired: %v", hits)
	for _, site := range fires {
		if hits[site] == 0 {
			t.Errorf("no GPT vector fires %q", site)
		}
	}
	for _, site := range fired {
		if slices.Contains(cannotFire, site) {
			t.Errorf("%q fired, but SPEC.md says it cannot", site)
		}
	}
}
