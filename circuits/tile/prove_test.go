package tile

import (
	"bytes"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/beluga-compute/beluga/spec/spectest"
)

// TestGroth16ReferenceTile proves and verifies a 16×16 tile of every layer
// of the reference MLP 784-256-128-10 at batch 64 and logs the timings and
// the proof size (timings never decide the outcome). Slow (BELUGA_SLOW=1).
func TestGroth16ReferenceTile(t *testing.T) {
	spectest.Slow(t)
	s, err := spectest.MLP(64)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s, 7, 1)
	for _, j := range []int{2, 0} {
		p, err := ParamsFor(s, j)
		if err != nil {
			t.Fatal(err)
		}
		w, err := Build(s, f.l, j, 0, 0, f.st, f.vals, f.treeIn, f.treeOut)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := New(p)
		ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		pk, vk, err := groth16.Setup(ccs)
		if err != nil {
			t.Fatal(err)
		}
		tSetup := time.Since(t0)
		full, err := frontend.NewWitness(w.Assignment(p), ecc.BN254.ScalarField())
		if err != nil {
			t.Fatal(err)
		}
		pub, err := frontend.NewWitness(w.Public.Assignment(p), ecc.BN254.ScalarField(), frontend.PublicOnly())
		if err != nil {
			t.Fatal(err)
		}
		t0 = time.Now()
		proof, err := groth16.Prove(ccs, pk, full)
		if err != nil {
			t.Fatal(err)
		}
		tProve := time.Since(t0)
		t0 = time.Now()
		if err := groth16.Verify(proof, vk, pub); err != nil {
			t.Fatal(err)
		}
		tVerify := time.Since(t0)
		var buf bytes.Buffer
		if _, err := proof.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		t.Logf("layer %d: %d constraints, setup %v, prove %v, verify %v, proof %d bytes",
			j, ccs.GetNbConstraints(), tSetup.Round(time.Millisecond), tProve.Round(time.Millisecond), tVerify.Round(10*time.Microsecond), buf.Len())
	}
}
