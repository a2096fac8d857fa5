package zkcommit

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/ref"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// randomBatch draws a batch for s (values only matter for the test, not
// for the commitment's layout).
func randomBatch(r *rand.Rand, s *spec.Spec) ([][]uint8, []uint8) {
	x := make([][]uint8, s.BatchSize)
	y := make([]uint8, s.BatchSize)
	for b := range x {
		x[b] = make([]uint8, s.Data.Train.Features)
		for i := range x[b] {
			x[b][i] = uint8(r.IntN(256))
		}
		y[b] = uint8(r.IntN(s.Data.Train.Classes))
	}
	return x, y
}

func smallSpec(t testing.TB) *spec.Spec {
	s, err := spectest.MLP(4)
	if err != nil {
		t.Fatal(err)
	}
	s.Model.Layers = []spec.Layer{{Op: spec.OpLinear, Out: 20}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: 10}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLayoutIndicesAreDistinctAndDense(t *testing.T) {
	t.Parallel()
	s := smallSpec(t)
	l, err := NewLayout(s)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for j, ll := range l.Layers {
		for r := range ll.Rows {
			for c := range ll.Cols {
				i, err := l.StateLeaf(j, r, c)
				if err != nil || seen[i] {
					t.Fatalf("state leaf (%d,%d,%d) = %d, %v", j, r, c, i, err)
				}
				seen[i] = true
			}
			i, err := l.GradLeaf(j, r)
			if err != nil || seen[i] {
				t.Fatalf("grad leaf (%d,%d) = %d, %v", j, r, i, err)
			}
			seen[i] = true
		}
		for c := range ll.Cols {
			i, err := l.InputLeaf(j, c)
			if err != nil || seen[i] {
				t.Fatalf("input leaf (%d,%d) = %d, %v", j, c, i, err)
			}
			seen[i] = true
		}
	}
	if len(seen) != l.Leaves || 1<<l.Depth < l.Leaves || (l.Depth > 0 && 1<<(l.Depth-1) >= l.Leaves) {
		t.Fatalf("%d leaves indexed, layout says %d at depth %d", len(seen), l.Leaves, l.Depth)
	}
	if _, err := l.StateLeaf(0, l.Layers[0].Rows, 0); !errors.Is(err, ErrBounds) {
		t.Fatalf("out-of-range tile: %v", err)
	}
}

func TestCommitOpensEveryLeafAndBindsValues(t *testing.T) {
	t.Parallel()
	s := smallSpec(t)
	l, _ := NewLayout(s)
	r := rand.New(rand.NewPCG(1, 2))
	st := s.Init()
	x, y := randomBatch(r, s)
	tr, next, err := ref.StepOps(s, st, 0, x, y)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := StepValues(tr)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := l.Commit(st, vals)
	if err != nil {
		t.Fatal(err)
	}
	root := tree.Root()
	for i := range 1 << l.Depth {
		leaf, _ := tree.Leaf(i)
		path, err := tree.Path(i)
		if err != nil || len(path) != l.Depth {
			t.Fatalf("path %d: %v", i, err)
		}
		if err := VerifyPath(root, leaf, i, path); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		if VerifyPath(root, leaf, i^1, path) == nil && !leaf.Equal(&path[0]) {
			t.Fatalf("leaf %d opened at index %d", i, i^1)
		}
	}

	// Each leaf is the hash the circuit recomputes from the step's values.
	j, rb, cb := 1, 0, 1
	idx, _ := l.StateLeaf(j, rb, cb)
	want, err := StateLeafHash(0, idx, l.StateTile(st, j, rb, cb))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tree.Leaf(idx); !got.Equal(&want) {
		t.Fatal("state leaf differs from StateLeafHash")
	}
	gi, _ := l.GradLeaf(j, rb)
	wantG, _ := GradLeafHash(0, gi, vals[j].E, l.Block(vals[j].G, l.Layers[j].Out, rb))
	if got, _ := tree.Leaf(gi); !got.Equal(&wantG) {
		t.Fatal("gradient leaf differs from GradLeafHash")
	}
	ai, _ := l.InputLeaf(j, cb)
	wantA, _ := InputLeafHash(0, ai, l.Block(vals[j].A, l.Layers[j].In, cb))
	if got, _ := tree.Leaf(ai); !got.Equal(&wantA) {
		t.Fatal("input leaf differs from InputLeafHash")
	}

	// Any changed value, exponent or step changes the root.
	alt := st.Clone()
	alt.Layer(1, spec.TensorWeightMomentum)[3]++
	if t2, _ := l.Commit(alt, vals); rootOf(t2).Equal(&root) {
		t.Fatal("a changed momentum kept the root")
	}
	vals[0].E++
	if t2, _ := l.Commit(st, vals); rootOf(t2).Equal(&root) {
		t.Fatal("a changed exponent kept the root")
	}
	vals[0].E--
	vals[1].A[0]++
	if t2, _ := l.Commit(st, vals); rootOf(t2).Equal(&root) {
		t.Fatal("a changed input kept the root")
	}
	vals[1].A[0]--
	// The final commitment covers the next state with zero step values.
	fin, err := l.Commit(next, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fr1 := fin.Root(); fr1.Equal(&root) {
		t.Fatal("final commitment equals the step's")
	}
}

func TestPackRejectsOutOfSlot(t *testing.T) {
	t.Parallel()
	if _, err := Pack([]int64{1 << 15}, 16, Per16); !errors.Is(err, ErrRange) {
		t.Fatalf("2^15 in a 16-bit slot: %v", err)
	}
	if _, err := Pack([]int64{-1 << 15, 1<<15 - 1}, 16, Per16); err != nil {
		t.Fatal(err)
	}
	if _, err := StateLeafHash(0, 0, make([]int64, 3)); !errors.Is(err, ErrShape) {
		t.Fatalf("short state leaf: %v", err)
	}
	l, _ := NewLayout(smallSpec(t))
	if _, err := l.Commit(smallSpec(t).Init(), []LayerValues{{}}); !errors.Is(err, ErrShape) {
		t.Fatalf("wrong layer count: %v", err)
	}
	var zero fr.Element
	if VerifyPath(zero, zero, 0, nil) != nil {
		t.Fatal("a depth-0 tree's only leaf is its root")
	}
}

// BenchmarkCommitReferenceMLP is the per-step cost of the zk commitment
// for the reference MLP 784-256-128-10 at batch 64.
func BenchmarkCommitReferenceMLP(b *testing.B) {
	s, err := spectest.MLP(64)
	if err != nil {
		b.Fatal(err)
	}
	l, _ := NewLayout(s)
	r := rand.New(rand.NewPCG(3, 4))
	st := s.Init()
	x, y := randomBatch(r, s)
	tr, _, err := ref.StepOps(s, st, 0, x, y)
	if err != nil {
		b.Fatal(err)
	}
	vals, err := StepValues(tr)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(l.Leaves), "leaves")
	b.ResetTimer()
	for range b.N {
		if _, err := l.Commit(st, vals); err != nil {
			b.Fatal(err)
		}
	}
}

func rootOf(t *Tree) *fr.Element {
	r := t.Root()
	return &r
}

// TestVectors pins the values of SPEC.md §17.6.
func TestVectors(t *testing.T) {
	t.Parallel()
	hexOf := func(e fr.Element) string {
		b := e.Bytes()
		return hex.EncodeToString(b[:])
	}
	vals := make([]int64, 512)
	for i := range vals {
		vals[i] = int64(i) - 256
	}
	h, err := StateLeafHash(3, 5, vals)
	if err != nil || hexOf(h) != "113633458e31a34a3d85ec17a688495bb1e9ecd40ae11e75c79629fc202c9603" {
		t.Fatalf("state leaf vector: %s, %v", hexOf(h), err)
	}
	g := make([]int64, 64)
	for i := range g {
		g[i] = int64(i%7) - 3
	}
	h, err = GradLeafHash(3, 9, -11, g)
	if err != nil || hexOf(h) != "278a71815940d8d4c35b50a26841a67209dcf85b90c9b2c7a810ec709c7ccdf1" {
		t.Fatalf("gradient leaf vector: %s, %v", hexOf(h), err)
	}
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	train, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	l, _ := NewLayout(s)
	idx := make([]int, s.BatchSize)
	x := make([][]uint8, s.BatchSize)
	y := make([]uint8, s.BatchSize)
	s.NewSampler().Batch(0, idx)
	for k, i := range idx {
		x[k], y[k] = train.Sample(i)
	}
	st := s.Init()
	tr, _, err := ref.StepOps(s, st, 0, x, y)
	if err != nil {
		t.Fatal(err)
	}
	v, err := StepValues(tr)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := l.Commit(st, v)
	if err != nil {
		t.Fatal(err)
	}
	if got := hexOf(tree.Root()); got != "0fb98e7f73aea4ba503aaf1b3b10c198cd4a37fcc58aa521690b06b1ef738969" || l.Leaves != 205 || l.Depth != 8 {
		t.Fatalf("z_0 of the synthetic example: %s (%d leaves, depth %d)", got, l.Leaves, l.Depth)
	}
}
