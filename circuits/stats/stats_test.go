package stats

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/logger"

	cfixed "github.com/beluga-compute/beluga/circuits/fixed"
	"github.com/beluga-compute/beluga/circuits/tile"
	"github.com/beluga-compute/beluga/spec/spectest"
)

const goldenFile = "constraints.json"

// Count is one circuit's size.
type Count struct {
	Constraints int `json:"r1cs_constraints"`
	Public      int `json:"public_inputs"`
	Secret      int `json:"secret_inputs"`
}

// gadgetCircuit applies one gadget to N inputs (N = 256: the range-check
// table is shared, as in a real tile circuit).
type gadgetCircuit struct {
	X  []frontend.Variable
	op *func(frontend.API, frontend.Variable) frontend.Variable `gnark:"-"`
}

func (c *gadgetCircuit) Define(api frontend.API) error {
	var acc frontend.Variable = 0
	for _, x := range c.X {
		acc = api.Add(acc, (*c.op)(api, x))
	}
	api.AssertIsDifferent(acc, -1) // keep outputs alive
	return nil
}

func gadget(op func(frontend.API, frontend.Variable) frontend.Variable) frontend.Circuit {
	return &gadgetCircuit{X: make([]frontend.Variable, 256), op: &op}
}

// slowOnly are the circuits compiled only with BELUGA_SLOW=1: the
// 16-block SHA-256 reference alone takes ~10 s to compile on two cores and
// is a comparison point, not one of Beluga's circuits.
var slowOnly = map[string]bool{"reference/sha256/16-blocks": true}

// circuits returns every circuit whose count is golden; with all false,
// those in slowOnly are left out.
func circuits(all bool) map[string]frontend.Circuit {
	m := map[string]frontend.Circuit{
		"fixed/RoundShift(s=16,b=62)x256": gadget(func(api frontend.API, x frontend.Variable) frontend.Variable {
			return cfixed.RoundShift(api, x, 16, 62)
		}),
		"fixed/Clamp(±2^30,b=32)x256": gadget(func(api frontend.API, x frontend.Variable) frontend.Variable {
			return cfixed.ClampInt(api, x, -1<<30, 1<<30, 32)
		}),
		"fixed/Sat32(b=33)x256":       gadget(func(api frontend.API, x frontend.Variable) frontend.Variable { return cfixed.Sat32(api, x, 33) }),
		"fixed/ReLU(b=31)x256":        gadget(func(api frontend.API, x frontend.Variable) frontend.Variable { return cfixed.ReLU(api, x, 31) }),
		"fixed/Scale(k=-23,b=62)x256": gadget(func(api frontend.API, x frontend.Variable) frontend.Variable { return cfixed.Scale(api, x, -23, 62) }),
		"fixed/CheckInt32x256": gadget(func(api frontend.API, x frontend.Variable) frontend.Variable {
			cfixed.CheckInt32(api, x)
			return x
		}),
	}
	for _, n := range []int{1, 16} {
		m[fmt.Sprintf("reference/sha256/%d-blocks", n)] = shaBlocks(n)
		m[fmt.Sprintf("reference/poseidon2/%d-compressions", n)] = poseidonCompressions(n)
	}
	if !all {
		for name := range slowOnly {
			delete(m, name)
		}
	}
	ref, err := spectest.MLP(64)
	if err != nil {
		panic(err)
	}
	for _, j := range []int{0, 1, 2} {
		p, err := tile.ParamsFor(ref, j)
		if err != nil {
			panic(err)
		}
		c, err := tile.New(p)
		if err != nil {
			panic(err)
		}
		m[fmt.Sprintf("tile/ref-mlp-b64/layer%d", j)] = c
	}
	return m
}

// TestGoldenConstraintCounts compiles each circuit and compares its size
// with constraints.json.
func TestGoldenConstraintCounts(t *testing.T) {
	logger.Disable()
	// Updating the golden file compiles every circuit, slow or not.
	update := os.Getenv("BELUGA_UPDATE_GOLDEN") == "1"
	all := update || spectest.IsSlow()
	got := map[string]Count{}
	for name, c := range circuits(all) {
		ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got[name] = Count{ccs.GetNbConstraints(), ccs.GetNbPublicVariables() - 1, ccs.GetNbSecretVariables()}
	}
	if update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", goldenFile)
		return
	}
	b, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]Count
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for name, g := range got {
		w, ok := want[name]
		switch {
		case !ok:
			t.Errorf("%s: %+v not in %s", name, g, goldenFile)
		case w != g:
			t.Errorf("%s: %+v, golden %+v", name, g, w)
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok && (all || !slowOnly[name]) {
			t.Errorf("%s: in %s but no longer built", name, goldenFile)
		}
	}
}
