package update

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

// proverChecks is set by the prover_checks build tag; BELUGA_PROVE=1 does
// the same.
var proverChecks bool

// TestGroth16 proves and verifies the reference 16×16 tile with Groth16 and
// logs the timings and the proof size (timings never decide the outcome).
// Opt-in: -tags prover_checks or BELUGA_PROVE=1.
func TestGroth16(t *testing.T) {
	if !proverChecks && os.Getenv("BELUGA_PROVE") != "1" {
		t.Skip("full proving is opt-in: -tags prover_checks or BELUGA_PROVE=1")
	}
	p, s := refParams(t)
	w, v, d := randomTile(rand.New(rand.NewPCG(8, 9)), p)
	x := Witness{Step: 11, Tile: 3, LR: s.Optimizer.LRAt(11), MuNum: s.Optimizer.Momentum.Num, W: w, V: v, D: d}
	a, _, _, err := Assign(p, x)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := New(p)
	t0 := time.Now()
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	tCompile := time.Since(t0)
	t0 = time.Now()
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		t.Fatal(err)
	}
	tSetup := time.Since(t0)
	full, err := frontend.NewWitness(a, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := full.Public()
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
	var compressed, raw bytes.Buffer
	if _, err := proof.WriteTo(&compressed); err != nil {
		t.Fatal(err)
	}
	if _, err := proof.WriteRawTo(&raw); err != nil {
		t.Fatal(err)
	}
	var vkb bytes.Buffer
	if _, err := vk.WriteTo(&vkb); err != nil {
		t.Fatal(err)
	}
	t.Logf("16x16 update: %d constraints; compile %v, setup %v, prove %v, verify %v; proof %d B (raw %d B), vk %d B",
		ccs.GetNbConstraints(), tCompile.Round(time.Millisecond), tSetup.Round(time.Millisecond),
		tProve.Round(time.Millisecond), tVerify.Round(time.Microsecond), compressed.Len(), raw.Len(), vkb.Len())

	// The proof is bound to its public inputs: another step, tile, rate or
	// commitment fails.
	for name, mut := range map[string]func(g *Circuit){
		"step":   func(g *Circuit) { g.Step = x.Step + 1 },
		"tile":   func(g *Circuit) { g.Tile = x.Tile + 1 },
		"lr":     func(g *Circuit) { g.LR = x.LR + 1 },
		"commit": func(g *Circuit) { g.OutCommit = Digest(TagOut, x.Step, x.Tile, w, v) },
	} {
		g := *a
		mut(&g)
		other, err := frontend.NewWitness(&g, ecc.BN254.ScalarField(), frontend.PublicOnly())
		if err != nil {
			t.Fatal(err)
		}
		if err := groth16.Verify(proof, vk, other); err == nil {
			t.Errorf("proof verified against another %s", name)
		}
	}
}
