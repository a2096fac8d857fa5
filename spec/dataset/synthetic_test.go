package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/beluga-compute/beluga/spec/prng"
)

func mustSynthetic(t testing.TB, seed uint64, n, features, classes int) *Dataset {
	t.Helper()
	ds, err := Synthetic(seed, n, features, classes)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func digest(ds *Dataset) string {
	h := sha256.New()
	h.Write(ds.x)
	h.Write(ds.y)
	return hex.EncodeToString(h.Sum(nil))
}

// The bytes below were produced by this code and reproduced independently
// from Synthetic's doc comment (a separate implementation in another
// language), so they pin the documented algorithm.
func TestSyntheticVector(t *testing.T) {
	train, test, err := SyntheticSplit(1, 4, 3, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantProto := []uint8{211, 234, 24, 211, 249, 205, 146, 82, 2, 175, 67, 43, 237, 136, 73, 18, 138, 166, 216, 11, 33, 26, 183, 219}
	if got := prototypes(1, 8, 3); !bytes.Equal(got, wantProto) {
		t.Errorf("prototypes = %v, want %v", got, wantProto)
	}
	for _, c := range []struct {
		ds   *Dataset
		x, y []uint8
	}{
		{train, []uint8{199, 212, 38, 154, 216, 192, 181, 85, 89, 215, 77, 102, 230, 154, 101, 37, 110, 199, 194, 41, 36, 40, 193, 191, 129, 155, 189, 24, 50, 50, 157, 231}, []uint8{0, 1, 2, 2}},
		{test, []uint8{21, 174, 36, 17, 255, 134, 47, 12, 204, 229, 31, 190, 248, 232, 124, 57, 202, 216, 110, 124, 163, 146, 149, 101}, []uint8{1, 0, 0}},
	} {
		if !bytes.Equal(c.ds.x, c.x) || !bytes.Equal(c.ds.y, c.y) {
			t.Errorf("%s: got x=%v y=%v\nwant x=%v y=%v", c.ds.Name, c.ds.x, c.ds.y, c.x, c.y)
		}
	}
}

// Golden digest of a larger dataset: any change to the algorithm shows here.
func TestSyntheticGolden(t *testing.T) {
	const want = "22cc263f7fbc21d06c4913c1ee63cb398c1e6af4beb4dbd2fdd42e00a678cfc8"
	if got := digest(mustSynthetic(t, 42, 100, 16, 4)); got != want {
		t.Fatalf("SHA-256(features || labels) = %s, want %s", got, want)
	}
}

func TestSyntheticDeterminism(t *testing.T) {
	a := mustSynthetic(t, 7, 3000, 100, 10)
	b := mustSynthetic(t, 7, 3000, 100, 10)
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.x, b.x) || !bytes.Equal(a.y, b.y) {
		t.Fatal("same seed gave different datasets")
	}
	c := mustSynthetic(t, 8, 3000, 100, 10)
	if bytes.Equal(a.x, c.x) || bytes.Equal(a.y, c.y) {
		t.Fatal("different seeds gave equal datasets")
	}
	// Prefix property: n does not enter any stream.
	p := mustSynthetic(t, 7, 1000, 100, 10)
	if !bytes.Equal(p.x, a.x[:len(p.x)]) || !bytes.Equal(p.y, a.y[:len(p.y)]) {
		t.Fatal("Synthetic(n) is not a prefix of Synthetic(n') for n < n'")
	}
	// Shape enters the prototypes.
	if d := mustSynthetic(t, 7, 3000, 100, 9); bytes.Equal(a.x, d.x) {
		t.Fatal("class count does not change the data")
	}
}

func TestSyntheticSplit(t *testing.T) {
	train, test, err := SyntheticSplit(3, 500, 200, 20, 5)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 500 || test.Len() != 200 || test.Features() != 20 || test.Classes() != 5 {
		t.Fatalf("shapes %d, %d×%d/%d", train.Len(), test.Len(), test.Features(), test.Classes())
	}
	if digest(train) != digest(mustSynthetic(t, 3, 500, 20, 5)) {
		t.Fatal("training split differs from Synthetic")
	}
	if bytes.Equal(train.x[:200*20], test.x) {
		t.Fatal("test split repeats the training split")
	}
	if _, _, err := SyntheticSplit(3, 500, 0, 20, 5); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("nTest = 0: got %v", err)
	}
}

func TestSyntheticBounds(t *testing.T) {
	for _, c := range []struct{ n, f, k int }{
		{0, 10, 10}, {-1, 10, 10}, {1<<24 + 1, 1, 10},
		{10, 0, 10}, {10, -5, 10}, {10, 1<<16 + 1, 10},
		{10, 10, 1}, {10, 10, 0}, {10, 10, 257}, {10, 10, -1},
		{1 << 24, 1 << 7, 2}, {1 << 15, 1 << 16, 2},
	} {
		if _, err := Synthetic(1, c.n, c.f, c.k); !errors.Is(err, ErrBadArgument) {
			t.Errorf("Synthetic(1, %d, %d, %d) = %v, want ErrBadArgument", c.n, c.f, c.k, err)
		}
	}
	if ds, err := Synthetic(1, 1, 1, 256); err != nil || ds.Len() != 1 {
		t.Fatalf("smallest dataset: %v", err)
	}
	if _, err := Synthetic(1, 3, 1<<16, 256); err != nil {
		t.Fatalf("widest dataset: %v", err)
	}
}

// nearestPrototype is the classifier the generator is designed around.
func nearestPrototype(ds *Dataset, proto []uint8) int {
	f, correct := ds.Features(), 0
	for i := range ds.Len() {
		x, y := ds.Sample(i)
		best, bestDist := 0, math.MaxInt
		for c := range ds.Classes() {
			dist := 0
			for j, v := range x {
				d := int(v) - int(proto[c*f+j])
				dist += d * d
			}
			if dist < bestDist {
				best, bestDist = c, dist
			}
		}
		if best == int(y) {
			correct++
		}
	}
	return correct
}

// The classes overlap a little: the best classifier is right on about 95%.
func TestSyntheticDifficulty(t *testing.T) {
	for _, c := range []struct{ f, k int }{{784, 10}, {16, 4}, {32, 2}} {
		_, test, err := SyntheticSplit(11, 1, 4000, c.f, c.k)
		if err != nil {
			t.Fatal(err)
		}
		counts := make([]int, c.k)
		for _, y := range test.y {
			counts[y]++
		}
		for k, n := range counts {
			if n < 4000/c.k/2 {
				t.Errorf("f=%d c=%d: class %d has only %d samples", c.f, c.k, k, n)
			}
		}
		acc := nearestPrototype(test, prototypes(11, c.f, c.k))
		if acc < 4000*90/100 || acc > 4000*99/100 {
			t.Errorf("f=%d c=%d: oracle accuracy %d/4000, want 90%%..99%%", c.f, c.k, acc)
		}
	}
}

// A one-hidden-layer MLP trained by plain SGD for 300 steps of 32 samples
// gets close to the best possible accuracy.
func TestSyntheticLearnableByMLP(t *testing.T) {
	const (
		features, classes, hidden = 64, 10, 32
		steps, batch              = 300, 32
		lr                        = 0.05
	)
	train, test, err := SyntheticSplit(5, 4000, 2000, features, classes)
	if err != nil {
		t.Fatal(err)
	}
	init := prng.Derive(5, "test/mlp-init", 0, 0)
	w1 := make([]float64, hidden*features)
	w2 := make([]float64, classes*hidden)
	b1, b2 := make([]float64, hidden), make([]float64, classes)
	for i := range w1 {
		w1[i] = (float64(init.At(uint64(i))>>11)/(1<<53) - 0.5) * 2 / math.Sqrt(features)
	}
	for i := range w2 {
		w2[i] = (float64(init.At(uint64(len(w1)+i))>>11)/(1<<53) - 0.5) * 2 / math.Sqrt(hidden)
	}
	in := make([]float64, features)
	h := make([]float64, hidden)
	out := make([]float64, classes)
	forward := func(x []uint8) {
		for j, v := range x {
			in[j] = float64(v)/128 - 1
		}
		for k := range h {
			s := b1[k]
			for j, v := range in {
				s += w1[k*features+j] * v
			}
			h[k] = max(s, 0)
		}
		m := math.Inf(-1)
		for c := range out {
			s := b2[c]
			for k, v := range h {
				s += w2[c*hidden+k] * v
			}
			out[c] = s
			m = max(m, s)
		}
		sum := 0.0
		for c := range out {
			out[c] = math.Exp(out[c] - m)
			sum += out[c]
		}
		for c := range out {
			out[c] /= sum
		}
	}
	order := prng.Derive(5, "test/mlp-batch", 0, 0)
	gw1, gw2 := make([]float64, len(w1)), make([]float64, len(w2))
	gb1, gb2 := make([]float64, hidden), make([]float64, classes)
	dh := make([]float64, hidden)
	for step := range steps {
		clear(gw1)
		clear(gw2)
		clear(gb1)
		clear(gb2)
		for s := range batch {
			x, y := train.Sample(int(prng.Below(order.At(uint64(step*batch+s)), uint64(train.Len()))))
			forward(x)
			out[y]--
			clear(dh)
			for c, g := range out {
				gb2[c] += g
				for k, v := range h {
					gw2[c*hidden+k] += g * v
					dh[k] += g * w2[c*hidden+k]
				}
			}
			for k, g := range dh {
				if h[k] <= 0 {
					continue
				}
				gb1[k] += g
				for j, v := range in {
					gw1[k*features+j] += g * v
				}
			}
		}
		for i := range w1 {
			w1[i] -= lr * gw1[i] / batch
		}
		for i := range w2 {
			w2[i] -= lr * gw2[i] / batch
		}
		for i := range b1 {
			b1[i] -= lr * gb1[i] / batch
		}
		for i := range b2 {
			b2[i] -= lr * gb2[i] / batch
		}
	}
	correct := 0
	for i := range test.Len() {
		x, y := test.Sample(i)
		forward(x)
		best := 0
		for c := range out {
			if out[c] > out[best] {
				best = c
			}
		}
		if best == int(y) {
			correct++
		}
	}
	t.Logf("MLP test accuracy after %d steps: %d/%d", steps, correct, test.Len())
	if correct < test.Len()*85/100 {
		t.Fatalf("MLP test accuracy %d/%d, want at least 85%%", correct, test.Len())
	}
}

func BenchmarkSynthetic(b *testing.B) {
	for b.Loop() {
		mustSynthetic(b, 1, 60000, 784, 10)
	}
}
