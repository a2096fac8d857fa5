package conformance

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/ref"
	"github.com/beluga-compute/beluga/spec/spectest"
)

var update = flag.Bool("update", false, "regenerate spec/testdata/vectors from the reference step")

const vectorsDir = "../testdata/vectors"

// definitions are the vectors -update writes.
func definitions(t *testing.T) map[string]*spec.Spec {
	base := func(name string, features, classes, samples int, layers []spec.Layer, n spec.Numeric, batch int, steps int64, lr []spec.LRPoint) *spec.Spec {
		s := &spec.Spec{
			Version: spec.Version, Name: name,
			Model:   spec.Model{Layers: layers, Loss: spec.LossSoftmaxCrossEntropy},
			Numeric: n,
			Optimizer: spec.Optimizer{Kind: spec.OptimizerSGDMomentum, Momentum: spec.Ratio{Num: 29491, Shift: 15},
				LRShift: 30, LR: lr},
			Data: spec.Data{Source: spec.SourceSynthetic, Synthetic: &spec.SyntheticData{Seed: 5, Train: samples}},
			Seed: 11, Steps: steps, BatchSize: batch, CheckpointInterval: steps, DigestInterval: 1,
			Audit: spec.Audit{CheatFractionPPM: 10_000, ConfidencePPM: 990_000},
		}
		ds, err := dataset.Synthetic(5, samples, features, classes)
		if err != nil {
			t.Fatal(err)
		}
		s.Data.Train = catalog.Ref(ds)
		if err := s.Validate(); err != nil {
			t.Fatalf("vector %s: %v", name, err)
		}
		return s
	}
	def := spec.Numeric{ActBits: 10, ActFrac: 8, WeightBits: 11, WeightFrac: 10, MasterFrac: 26, GradBits: 11, LogitBits: 15, LogitFrac: 10}
	// 2-bit gradients and a rate of up to (2^31 − 1)/2^8 reach every clamp
	// and saturation of §8 that can fire (spec/ref's
	// TestSaturatingVectorFiresEveryClamp checks).
	saturating := base("saturating", 7, 4, 13,
		[]spec.Layer{{Op: spec.OpLinear, Out: 9}, {Op: spec.OpLinear, Out: 5}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: 4}},
		spec.Numeric{ActBits: 5, ActFrac: 3, WeightBits: 5, WeightFrac: 4, MasterFrac: 12, GradBits: 2, LogitBits: 7, LogitFrac: 2},
		6, 10, []spec.LRPoint{{Step: 0, Value: 1 << 29}, {Step: 5, Value: 1<<31 - 1}})
	saturating.Optimizer.LRShift = 8
	if err := saturating.Validate(); err != nil {
		t.Fatal(err)
	}
	ex, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*spec.Spec{
		"tiny": base("tiny", 12, 3, 40,
			[]spec.Layer{{Op: spec.OpLinear, Out: 8}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: 3}},
			def, 5, 12, []spec.LRPoint{{Step: 0, Value: 1 << 30 / 20 / 5}, {Step: 8, Value: 1 << 30 / 200 / 5}}),
		// Narrow formats, odd sizes, a layer without relu, batches that
		// straddle epochs, a large rate: saturation and clamping everywhere.
		"saturating":        saturating,
		"example-synthetic": ex,
	}
}

// trace is trace.json: what step 0 computes on its way, for debugging a
// new implementation.
type trace struct {
	InitialDigest string    `json:"initial_digest"`
	Batch         []int     `json:"batch"`
	Logits        [][]int64 `json:"logits"`
	LogitGrad     [][]int64 `json:"logit_gradient"`
	LossQ16       []int64   `json:"loss_q16"`
}

// samplesFor returns the vector's data: samples.txt when present, else the
// spec's own synthetic generator (for vectors too big to list).
func samplesFor(t *testing.T, dir string, s *spec.Spec) *dataset.Dataset {
	if _, err := os.Stat(filepath.Join(dir, "samples.txt")); err == nil {
		ds, err := readSamples(filepath.Join(dir, "samples.txt"), s)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	ds, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// run executes s on ds with step, recording every step.
func run(t *testing.T, s *spec.Spec, ds *dataset.Dataset, st *spec.State, step func(x [][]uint8, y []uint8) (int64, error), listBatches bool) []StepRecord {
	id, _ := s.ID()
	var h commit.Hasher
	d := h.StateDigest(id, st)
	recs := []StepRecord{{Step: -1, Digest: hex.EncodeToString(d[:])}}
	sm := s.NewSampler()
	idx := make([]int, s.BatchSize)
	x := make([][]uint8, s.BatchSize)
	y := make([]uint8, s.BatchSize)
	for t0 := range s.Steps {
		sm.Batch(t0, idx)
		for b, i := range idx {
			x[b], y[b] = ds.Sample(i)
		}
		loss, err := step(x, y)
		if err != nil {
			t.Fatal(err)
		}
		d := h.StateDigest(id, st)
		r := StepRecord{Step: t0, LossQ16: loss, Digest: hex.EncodeToString(d[:])}
		if listBatches {
			r.Batch = append([]int(nil), idx...)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestUpdateVectors(t *testing.T) {
	if !*update {
		t.Skip("pass -update to regenerate the vectors")
	}
	for name, s := range definitions(t) {
		dir := filepath.Join(vectorsDir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		js, _ := s.JSON()
		write(t, filepath.Join(dir, "spec.json"), js)
		ds, _, err := catalog.LoadData(s, "")
		if err != nil {
			t.Fatal(err)
		}
		small := ds.Len()*ds.Features() <= 4096
		if small {
			write(t, filepath.Join(dir, "samples.txt"), []byte(FormatSamples(ds)))
		}
		st := s.Init()
		id, _ := s.ID()
		var h commit.Hasher
		d0 := h.StateDigest(id, st)
		tr := trace{InitialDigest: hex.EncodeToString(d0[:]), Batch: make([]int, s.BatchSize)}
		s.NewSampler().Batch(0, tr.Batch)
		x := make([][]uint8, s.BatchSize)
		for b, i := range tr.Batch {
			var label uint8
			x[b], label = ds.Sample(i)
			f := ref.RunForward(s, st, x[b:b+1])
			g, l := ref.LossGrad(&s.Numeric, f.Logits[0], int(label))
			tr.Logits, tr.LogitGrad, tr.LossQ16 = append(tr.Logits, f.Logits[0]), append(tr.LogitGrad, g), append(tr.LossQ16, l)
		}
		tj, _ := json.MarshalIndent(tr, "", " ")
		write(t, filepath.Join(dir, "trace.json"), append(tj, '\n'))
		recs := run(t, s, ds, st, func(x [][]uint8, y []uint8) (int64, error) { return ref.Step(s, st, st.Step, x, y) }, small)
		write(t, filepath.Join(dir, "steps.txt"), []byte(Format(recs)))
	}
}

func write(t *testing.T, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVectors checks the reference and the engine against every vector.
func TestVectors(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(vectorsDir, "*", "spec.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no vectors in %s: %v", vectorsDir, err)
	}
	for _, specPath := range dirs {
		dir := filepath.Dir(specPath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			v, err := loadWith(t, dir)
			if err != nil {
				t.Fatal(err)
			}
			s := v.Spec
			check := func(impl string, got []StepRecord) {
				if len(got) != len(v.Steps) {
					t.Fatalf("%s: %d records, vector has %d", impl, len(got), len(v.Steps))
				}
				for i, want := range v.Steps {
					g := got[i]
					if g.Step != want.Step || g.LossQ16 != want.LossQ16 || g.Digest != want.Digest ||
						(want.Batch != nil && fmt.Sprint(g.Batch) != fmt.Sprint(want.Batch)) {
						t.Fatalf("%s: step %d: got loss %d digest %s batch %v; vector: loss %d digest %s batch %v",
							impl, want.Step, g.LossQ16, g.Digest, g.Batch, want.LossQ16, want.Digest, want.Batch)
					}
				}
			}
			// The reference is slow (int64 loops over 2-D slices: 25 s for
			// the synthetic example); it checks the large vectors only with
			// BELUGA_SLOW=1 (the engines check every vector always).
			if (spectest.IsSlow() && !testing.Short()) || s.Plan().Params*s.Steps < 1<<20 {
				st := s.Init()
				check("reference", run(t, s, v.Samples, st, func(x [][]uint8, y []uint8) (int64, error) { return ref.Step(s, st, st.Step, x, y) }, true))
			}
			kernels := []kernel.Kernel{kernel.Generic()}
			if b := kernel.Best(); b.Name() != kernels[0].Name() {
				kernels = append(kernels, b)
			}
			for _, k := range kernels {
				// One thread and an odd split by default; 1, 2 and 4 with
				// BELUGA_SLOW=1.
				threadCounts := []int{1, 3}
				if spectest.IsSlow() {
					threadCounts = []int{1, 2, 4}
				}
				for _, threads := range threadCounts {
					st := s.Init()
					e, err := engine.New(s, st, engine.WithKernel(k), engine.WithThreads(threads))
					if err != nil {
						t.Fatal(err)
					}
					check(fmt.Sprintf("engine %s/%d threads", k.Name(), threads), run(t, s, v.Samples, st, e.Step, true))
				}
			}
		})
	}
}

func loadWith(t *testing.T, dir string) (*Vector, error) {
	data, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		return nil, err
	}
	s, err := spec.Decode(data)
	if err != nil {
		return nil, err
	}
	v := &Vector{Name: filepath.Base(dir), Spec: s, Samples: samplesFor(t, dir, s)}
	if v.Steps, err = readSteps(filepath.Join(dir, "steps.txt")); err != nil {
		return nil, err
	}
	return v, nil
}
