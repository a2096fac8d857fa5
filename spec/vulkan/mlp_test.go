package vulkan_test

import (
	"bufio"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
	"github.com/beluga-compute/beluga/spec/spectest"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

var (
	devOnce sync.Once
	dev     *vulkan.Device
	devErr  error
)

// device returns the device every test shares (lavapipe here and in CI),
// skipping the test when the machine has no Vulkan at all, unless
// BELUGA_REQUIRE_VULKAN=1 (CI, where lavapipe is installed: a broken
// loader must fail, not skip).
func device(t *testing.T) *vulkan.Device {
	t.Helper()
	devOnce.Do(func() { dev, devErr = vulkan.Open() })
	if errors.Is(devErr, vulkan.ErrNoDevice) && os.Getenv("BELUGA_REQUIRE_VULKAN") != "1" {
		t.Skipf("no Vulkan device: %v", devErr)
	}
	if devErr != nil {
		t.Fatal(devErr)
	}
	return dev
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dev != nil {
		dev.Close()
	}
	os.Exit(code)
}

func TestDevices(t *testing.T) {
	d := device(t)
	infos, err := vulkan.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) == 0 {
		t.Fatal("an open device but no devices listed")
	}
	info := d.Info()
	t.Logf("device: %v (int64 %v, storage range %d MiB, shared %d KiB, device-local %d MiB, dot product %v, cooperative matrix %v)",
		info, info.ShaderInt64, info.MaxStorageBufferRange>>20, info.MaxSharedMemory>>10, info.DeviceLocalBytes>>20,
		info.IntegerDotProduct, info.CooperativeMatrix)
	if !info.ShaderInt64 || info.Unusable != "" {
		t.Fatalf("Open picked an unusable device: %v", info)
	}
	// GPUOnly never picks a CPU device such as lavapipe.
	g, err := vulkan.Open(vulkan.GPUOnly())
	if err == nil {
		defer g.Close()
		if !g.Info().GPU {
			t.Fatalf("GPUOnly picked %v", g.Info())
		}
	} else if !errors.Is(err, vulkan.ErrNoDevice) {
		t.Fatalf("GPUOnly: %v, want ErrNoDevice", err)
	}
	if _, err := vulkan.Open(vulkan.WithDeviceIndex(len(infos))); !errors.Is(err, vulkan.ErrNoDevice) {
		t.Fatalf("device %d of %d: %v, want ErrNoDevice", len(infos), len(infos), err)
	}
}

// stepper is what both trainers offer.
type stepper interface {
	Step(x [][]uint8, y []uint8) (int64, error)
	State() *spec.State
	Predict(x [][]uint8, out []int) error
}

// record is one step's loss and state digest.
type record struct {
	loss   int64
	digest string
}

// compare runs s on ds with the CPU engine and the Vulkan trainer,
// failing at the first step whose loss or state digest differs; mutate,
// when set, changes both states after the given step (a caller editing
// the state between steps).
func compare(t *testing.T, s *spec.Spec, ds *dataset.Dataset, mutate func(step int64, st *spec.State)) []record {
	return compareSteps(t, s, ds, s.Steps, mutate)
}

// compareSteps is compare over the first steps steps.
func compareSteps(t *testing.T, s *spec.Spec, ds *dataset.Dataset, steps int64, mutate func(step int64, st *spec.State)) []record {
	t.Helper()
	d := device(t)
	e, err := engine.New(s, s.Init(), engine.WithKernel(kernel.Generic()), engine.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// The same on the resident data set: only the indices cross.
	r, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d), vulkan.WithData(ds))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Resident() {
		t.Fatal("a small data set is not resident")
	}
	id, _ := s.ID()
	var h commit.Hasher
	sm := s.NewSampler()
	idx := make([]int, s.BatchSize)
	x := make([][]uint8, s.BatchSize)
	y := make([]uint8, s.BatchSize)
	var recs []record
	for step := range steps {
		sm.Batch(step, idx)
		for b, i := range idx {
			x[b], y[b] = ds.Sample(i)
		}
		var got [3]record
		for i, tr := range []stepper{e, v, r} {
			var loss int64
			var err error
			if tr == r {
				loss, err = r.StepIndices(idx)
			} else {
				loss, err = tr.Step(x, y)
			}
			if err != nil {
				t.Fatal(err)
			}
			dg := h.StateDigest(id, tr.State())
			got[i] = record{loss, hex.EncodeToString(dg[:])}
			if mutate != nil {
				mutate(step, tr.State())
			}
		}
		if got[0] != got[1] || got[0] != got[2] {
			t.Fatalf("%s (layers %+v, batch %d): step %d: vulkan loss %d digest %.12s, resident %d %.12s, engine loss %d digest %.12s",
				s.Name, s.Model.Layers, s.BatchSize, step, got[1].loss, got[1].digest, got[2].loss, got[2].digest, got[0].loss, got[0].digest)
		}
		recs = append(recs, got[0])
	}
	xs := make([][]uint8, min(ds.Len(), 3*s.BatchSize+1))
	for i := range xs {
		xs[i], _ = ds.Sample(i)
	}
	want, got := make([]int, len(xs)), make([]int, len(xs))
	if err := e.Predict(xs, want); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*vulkan.Trainer{v, r} {
		if err := tr.Predict(xs, got); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: prediction %d: vulkan %d, engine %d", s.Name, i, got[i], want[i])
			}
		}
	}
	return recs
}

// TestVectors: every MLP conformance vector gives, step by step, the loss
// and state digest its steps.txt records (the reference's), and the CPU
// engine's.
func TestVectors(t *testing.T) {
	t.Parallel()
	device(t)
	forEachVector(t, "vectors", func(t *testing.T, dir string, s *spec.Spec, want []record) {
		ds, _, err := catalog.LoadData(s, "")
		if err != nil {
			t.Fatal(err)
		}
		// lavapipe runs the 600 steps of the synthetic example in
		// ~15 s: its first 40 by default, all with BELUGA_SLOW=1.
		steps := s.Steps
		if !spectest.IsSlow() {
			steps = min(steps, 40)
			want = want[:min(len(want), int(steps))]
		}
		got := compareSteps(t, s, ds, steps, nil)
		if len(got) != len(want) {
			t.Fatalf("%d steps, the vector records %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("step %d: loss %d digest %.12s, vector loss %d digest %.12s", i, got[i].loss, got[i].digest, want[i].loss, want[i].digest)
			}
		}
	})
}

// forEachVector runs check, as a parallel subtest named after the
// vector, on every conformance vector of spec/testdata/set (vectors,
// gptvectors): the vector's folder, its decoded spec.json and the records
// of its steps.txt.
func forEachVector(t *testing.T, set string, check func(t *testing.T, dir string, s *spec.Spec, want []record)) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", set, "*", "spec.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no vectors in %s: %v", set, err)
	}
	for _, path := range paths {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := spec.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			check(t, dir, s, readSteps(t, filepath.Join(dir, "steps.txt")))
		})
	}
}

// readSteps reads the records of steps 0, 1, … of a vector's steps.txt
// ("step windows loss digest"; step -1, the initial state, is skipped).
func readSteps(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		if fields[0] == "-1" {
			continue
		}
		loss, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, record{loss, fields[3]})
	}
	return recs
}

func syntheticData(t *testing.T, s *spec.Spec) *dataset.Dataset {
	ds, err := dataset.Synthetic(s.Data.Synthetic.Seed, s.Data.Train.Count, s.Data.Train.Features, s.Data.Train.Classes)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestRandomSpecs: 48 random small specs (formats ranging widely, so
// every clamp and saturation of SPEC.md §8 fires somewhere) give the CPU
// engine's loss and digest after every step, and its predictions.
func TestRandomSpecs(t *testing.T) {
	t.Parallel()
	compareRandom(t, 1, 48, 40, 37)
}

// compareRandom compares n random specs (spectest.Random(r, maxWidth,
// maxBatch), drawn in turn from the stream 14, stream), each in a parallel
// subtest.
func compareRandom(t *testing.T, stream uint64, n, maxWidth, maxBatch int) {
	device(t)
	r := rand.New(rand.NewPCG(14, stream))
	for i := range n {
		s := spectest.Random(r, maxWidth, maxBatch)
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			compare(t, s, syntheticData(t, s), nil)
		})
	}
}

// TestRandomSpecsWide: wider layers and batches than the 64×64 tiles and
// the split of the batch sum, so partial tiles, several tiles and the
// split weight-gradient sums all run.
func TestRandomSpecsWide(t *testing.T) {
	t.Parallel()
	compareRandom(t, 2, 6, 150, 700)
}

// TestStateEditedBetweenSteps: a caller that changes the state between
// steps (as model.Runner allows) trains from the changed values, as on
// the CPU.
func TestStateEditedBetweenSteps(t *testing.T) {
	t.Parallel()
	device(t)
	r := rand.New(rand.NewPCG(14, 3))
	s := spectest.Random(r, 20, 9)
	compare(t, s, syntheticData(t, s), func(step int64, st *spec.State) {
		w := st.Layer(0, spec.TensorWeight)
		w[int(step)%len(w)] += 12345
	})
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	d := device(t)
	r := rand.New(rand.NewPCG(14, 4))
	s := spectest.Random(r, 10, 4)
	tr, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	f := s.Data.Train.Features
	x := make([][]uint8, s.BatchSize)
	for i := range x {
		x[i] = make([]uint8, f)
	}
	y := make([]uint8, s.BatchSize)
	if _, err := tr.Step(x[:len(x)-1], y[:len(y)-1]); err == nil {
		t.Error("short batch accepted")
	}
	y[0] = uint8(s.Data.Train.Classes)
	if _, err := tr.Step(x, y); err == nil {
		t.Error("label out of range accepted")
	}
	y[0] = 0
	x[0] = x[0][:f-1]
	if _, err := tr.Step(x, y); err == nil {
		t.Error("short sample accepted")
	}
	if _, err := tr.StepIndices(make([]int, s.BatchSize)); err == nil {
		t.Error("StepIndices without resident data accepted")
	}
	ds := syntheticData(t, s)
	res, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d), vulkan.WithData(ds))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	idx := make([]int, s.BatchSize)
	idx[0] = ds.Len()
	if _, err := res.StepIndices(idx); err == nil {
		t.Error("index past the data set accepted")
	}
	if _, err := res.StepIndices(idx[1:]); err == nil {
		t.Error("short index list accepted")
	}
	if res.Steps() != 0 || tr.State().Step != 0 {
		t.Errorf("refused batches changed the step to %d, %d", tr.State().Step, res.Steps())
	}
	bad := s.Init()
	bad.Tensors = bad.Tensors[1:]
	if _, err := vulkan.New(s, bad, vulkan.WithDevice(d)); err == nil {
		t.Error("a state of the wrong shape accepted")
	}
	g := modeltest.TinyGPT(modeltest.Corpus(1, 2000), 4)
	if _, err := vulkan.New(g, s.Init(), vulkan.WithDevice(d)); !errors.Is(err, vulkan.ErrUnsupported) {
		t.Errorf("GPT spec: %v, want ErrUnsupported", err)
	}
	x[0] = make([]uint8, f)
	tr.Close()
	if _, err := tr.Step(x, y); !errors.Is(err, vulkan.ErrClosed) {
		t.Errorf("step after Close: %v, want ErrClosed", err)
	}
}

// TestDeviceGone: a trainer whose device went away (here: closed under
// it) returns errors from then on, never a state it did not copy back.
func TestDeviceGone(t *testing.T) {
	t.Parallel()
	d := ownDevice(t)
	r := rand.New(rand.NewPCG(14, 5))
	s := spectest.Random(r, 10, 4)
	ds := syntheticData(t, s)
	if !d.LastSubmit().IsZero() {
		t.Fatal("a fresh device reports a submission")
	}
	tr, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d))
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(d.LastSubmit()) > time.Minute {
		t.Fatalf("the upload's submission is not recorded: %v", d.LastSubmit())
	}
	b := engine.NewBatcher(s, ds)
	if _, err := tr.Step(b.Batch(0)); err != nil {
		t.Fatal(err)
	}
	checkDeviceGone(t, d, tr, func() error {
		_, err := tr.Step(b.Batch(1))
		return err
	}, func() int64 { return tr.State().Step })
}

// ownDevice opens a device for the test alone (one to close under a
// trainer), skipping or failing as device does.
func ownDevice(t *testing.T) *vulkan.Device {
	t.Helper()
	device(t)
	d, err := vulkan.Open()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkDeviceGone closes d under tr, which has run one step: from then on
// Sync and step (another step) fail with ErrClosed, the state (whose step
// count stateStep reads through State) stays at the one step, and Close
// succeeds.
func checkDeviceGone(t *testing.T, d *vulkan.Device, tr interface {
	Sync() error
	Close() error
}, step func() error, stateStep func() int64) {
	t.Helper()
	d.Close()
	if err := tr.Sync(); !errors.Is(err, vulkan.ErrClosed) {
		t.Fatalf("Sync on a closed device: %v, want ErrClosed", err)
	}
	if err := step(); !errors.Is(err, vulkan.ErrClosed) {
		t.Fatalf("Step on a closed device: %v, want ErrClosed", err)
	}
	if n := stateStep(); n != 1 {
		t.Fatalf("state after a failed step: step %d", n)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNoDriver: a loader that finds no driver gives ErrNoDevice, naming
// the VkResult, from Devices, Open and New alike (what tests and --backend
// auto rely on to fall back cleanly).
func TestNoDriver(t *testing.T) {
	t.Setenv("VK_DRIVER_FILES", "/nonexistent/icd.json")
	t.Setenv("VK_ICD_FILENAMES", "/nonexistent/icd.json")
	if _, err := vulkan.Devices(); !errors.Is(err, vulkan.ErrNoDevice) {
		t.Fatalf("Devices: %v, want ErrNoDevice", err)
	} else {
		t.Log(err)
	}
	if _, err := vulkan.Open(); !errors.Is(err, vulkan.ErrNoDevice) {
		t.Fatalf("Open: %v, want ErrNoDevice", err)
	}
	s := spectest.Random(rand.New(rand.NewPCG(14, 6)), 4, 2)
	if _, err := vulkan.New(s, s.Init()); !errors.Is(err, vulkan.ErrNoDevice) {
		t.Fatalf("New: %v, want ErrNoDevice", err)
	}
}

// TestTooLarge: a job whose buffers exceed what the device binds is
// refused with ErrUnsupported before any memory is allocated.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	d := device(t)
	s, _ := spectest.MLP(65536) // invalid as it comes: the batch's sums overflow int32
	s.Numeric.GradBits = 3      // keeps the batch's sums within int32 (SPEC.md §10)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if 65536*784*4 <= d.Info().MaxStorageBufferRange {
		t.Skipf("%v binds %d MiB: the job fits", d.Info(), d.Info().MaxStorageBufferRange>>20)
	}
	if _, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d)); !errors.Is(err, vulkan.ErrUnsupported) {
		t.Fatalf("a 205 MB batch buffer: %v, want ErrUnsupported", err)
	}
}
