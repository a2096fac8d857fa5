package prover

import (
	"context"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/test"

	"github.com/beluga-compute/beluga/circuits/tile"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/rundir/rundirtest"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// confidentialRun trains a few steps of the synthetic example with
// commitments and computes its zk trace.
func confidentialRun(t *testing.T) (*spec.Spec, string) {
	t.Helper()
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.CheckpointInterval = 3, 2
	s.Audit.Confidential = true
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	train, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := rundirtest.Train(context.Background(), dir, s, train); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestConfidentialRunProvesAndBindsToItsZKTrace(t *testing.T) {
	t.Parallel()
	s, dir := confidentialRun(t)
	train, _, _ := catalog.LoadData(s, "")
	z, err := CommitRun(context.Background(), s, train, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(z.Entries) != int(s.Steps)+1 {
		t.Fatalf("%d zk entries for %d steps", len(z.Entries), s.Steps)
	}
	z2, err := ReadZKTrace(s, dir+"/"+ZKTraceFile)
	if err != nil || z2.Root() != z.Root() {
		t.Fatalf("re-read zk trace: %v", err)
	}
	c := zkchallenge.Challenge{Step: 1, Layer: 2, Row: 0, Col: 3}
	w, err := TileWitness(context.Background(), s, train, dir, c)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := TilePublic(s, z, c)
	if err != nil {
		t.Fatal(err)
	}
	if pub != w.Public {
		t.Fatalf("the verifier's public inputs %+v differ from the prover's %+v", pub, w.Public)
	}
	p, err := tile.ParamsFor(s, c.Layer)
	if err != nil {
		t.Fatal(err)
	}
	circuit, _ := tile.New(p)
	if err := test.IsSolved(circuit, w.Assignment(p), ecc.BN254.ScalarField()); err != nil {
		t.Fatalf("the run's witness does not satisfy the tile circuit: %v", err)
	}
	// The same witness against the roots of other steps fails.
	other, _ := TilePublic(s, z, zkchallenge.Challenge{Step: 2, Layer: 2, Row: 0, Col: 3})
	w.Public = other
	if test.IsSolved(circuit, w.Assignment(p), ecc.BN254.ScalarField()) == nil {
		t.Fatal("a witness of step 1 proved against the roots of step 2")
	}
	if _, err := TilePublic(s, z, zkchallenge.Challenge{Step: s.Steps, Layer: 2}); err == nil {
		t.Fatal("a challenge past the last step was accepted")
	}
}

func TestChallenges(t *testing.T) {
	t.Parallel()
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	var tr, zr [32]byte
	tr[0], zr[0] = 1, 2
	a, err := zkchallenge.Challenges(s, tr, zr, []byte("beacon"), 40)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := zkchallenge.Challenges(s, tr, zr, []byte("beacon"), 40)
	c, _ := zkchallenge.Challenges(s, tr, zr, []byte("other beacon"), 40)
	if len(a) != 40 {
		t.Fatalf("%d challenges", len(a))
	}
	layers := map[int]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("challenges are not a function of the seed")
		}
		if i > 0 && a[i].Step <= a[i-1].Step {
			t.Fatal("steps not distinct and ascending")
		}
		layers[a[i].Layer] = true
	}
	if len(layers) < 2 {
		t.Fatalf("40 tiles all from %d layer(s)", len(layers))
	}
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("another beacon drew the same challenges")
	}
	zr[5] ^= 1
	if d, _ := zkchallenge.Challenges(s, tr, zr, []byte("beacon"), 40); d[0] == a[0] && d[1] == a[1] && d[2] == a[2] {
		t.Fatal("the zk trace root does not enter the seed")
	}
	if _, err := zkchallenge.Challenges(s, tr, zr, nil, 1); err == nil {
		t.Fatal("an empty beacon was accepted")
	}
	if _, err := zkchallenge.Challenges(s, tr, zr, []byte("b"), int(s.Steps)+1); err == nil {
		t.Fatal("more challenges than steps")
	}
}
