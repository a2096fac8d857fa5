package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/ref"
)

// TestRefereeChecksEvidence plays a dispute against a solver that perturbs
// a weight at step 3 of the tiny vector, writes the evidence, and has the
// referee command re-check it; a tampered copy is refused.
func TestRefereeChecksEvidence(t *testing.T) {
	specPath := "../../spec/testdata/vectors/tiny/spec.json"
	data, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	ds, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	solver, err := dispute.NewReplayer(s, ds, s.Init(), dispute.WithStep(perturbAt(3)))
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := dispute.NewReplayer(s, ds, s.Init())
	if err != nil {
		t.Fatal(err)
	}
	start, _ := solver.DigestAt(ctx, 0)
	se, _ := solver.DigestAt(ctx, s.Steps)
	ve, _ := verifier.DigestAt(ctx, s.Steps)
	referee, err := dispute.NewReferee(s)
	if err != nil {
		t.Fatal(err)
	}
	res, err := referee.Play(ctx, dispute.Segment{Start: 0, End: s.Steps, StartDigest: start, SolverEnd: se, VerifierEnd: ve}, solver, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if res.Evidence == nil || res.Verdict.Loser != dispute.LoserSolver {
		t.Fatalf("game: %+v", res.Verdict)
	}
	raw, err := res.Evidence.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	evPath := filepath.Join(dir, "evidence.bin")
	if err := os.WriteFile(evPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "referee", "--spec", specPath, evPath)
	if code != 0 || !strings.Contains(out, "solver loses") {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
	raw[len(raw)/2] ^= 1
	if err := os.WriteFile(evPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := run(t, "referee", "--spec", specPath, evPath); code == 0 {
		t.Fatal("tampered evidence accepted")
	}
}

// perturbAt is a solver step that, at step t0, adds one to the first
// element of layer 0's updated weights.
func perturbAt(t0 int64) dispute.StepFunc {
	return func(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error) {
		tr, err := dispute.Honest(s, st, t, x, y)
		if err != nil || t != t0 {
			return tr, err
		}
		k := tr.Graph.Index("next.layers.0.weight")
		v := tr.Value[k].Clone()
		v.Data[0]++
		tr.Value[k] = v
		return tr, nil
	}
}
