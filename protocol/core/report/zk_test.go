package report_test

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// TestZKFindingsCheck: a confidential job's findings must list exactly
// the tiles SPEC.md §17.3 draws from the trace roots and the beacon, as
// many as the policy requires; another tile, one fewer, or the replay
// method is refused.
func TestZKFindingsCheck(t *testing.T) {
	t.Parallel()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.Audit.Confidential = 12, true
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	job, _ := s.ID()
	root, zroot, beacon := [32]byte{1}, [32]byte{2}, []byte("zk beacon")
	required, err := report.RequiredSamples(s)
	if err != nil {
		t.Fatal(err)
	}
	chs, err := zkchallenge.Challenges(s, root, zroot, beacon, int(required))
	if err != nil {
		t.Fatal(err)
	}
	build := func() *report.Findings {
		f := &report.Findings{JobID: job.String(), TraceRoot: hex.EncodeToString(root[:]), ZKTraceRoot: hex.EncodeToString(zroot[:]),
			Beacon: hex.EncodeToString(beacon), Method: report.MethodZK, Population: s.Steps, Verdict: report.Pass}
		for _, c := range chs {
			f.Tiles = append(f.Tiles, report.TileCheck{Step: c.Step, Layer: int64(c.Layer), Row: int64(c.Row), Col: int64(c.Col), Outcome: report.Match})
			f.StepsChecked++
		}
		return f
	}
	if err := build().CheckAgainst(s, root, zroot, beacon, required); err != nil {
		t.Fatalf("the drawn tiles: %v", err)
	}
	other := build()
	other.Tiles[0].Row++
	short := build()
	short.Tiles, short.StepsChecked = short.Tiles[1:], short.StepsChecked-1
	replay := build()
	replay.Method, replay.Tiles, replay.ZKTraceRoot = report.MethodReplay, nil, ""
	replay.Segments = []report.SegmentCheck{{Segment: 0, FromStep: 0, ToStep: 1, Outcome: report.Match}}
	replay.StepsChecked = 1
	for name, f := range map[string]*report.Findings{"another tile": other, "a tile short": short, "replay": replay} {
		if err := f.CheckAgainst(s, root, zroot, beacon, required); !errors.Is(err, report.ErrInconsistent) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
