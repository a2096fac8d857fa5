package ref_test

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/ref"
	"github.com/beluga-compute/beluga/spec/spectest"
)

const vectorsDir = "../testdata/vectors"

// vectorStep is one line of a vector's steps.txt.
type vectorStep struct {
	step   int64
	loss   int64
	digest string
}

func readVectorSteps(t *testing.T, dir string) []vectorStep {
	f, err := os.Open(filepath.Join(dir, "steps.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vectorStep
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		step, err1 := strconv.ParseInt(fs[0], 10, 64)
		loss, err2 := strconv.ParseInt(fs[2], 10, 64)
		if len(fs) != 4 || err1 != nil || err2 != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		out = append(out, vectorStep{step, loss, fs[3]})
	}
	return out
}

// loadVector returns a vector's spec and training data (regenerated from
// the spec when the vector lists no samples).
func loadVector(t *testing.T, name string) (*spec.Spec, *dataset.Dataset, []vectorStep) {
	dir := filepath.Join(vectorsDir, name)
	js, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	ds, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	return s, ds, readVectorSteps(t, dir)
}

func batch(s *spec.Spec, ds *dataset.Dataset, sm *spec.Sampler, step int64) ([][]uint8, []uint8) {
	idx := make([]int, s.BatchSize)
	sm.Batch(step, idx)
	x, y := make([][]uint8, len(idx)), make([]uint8, len(idx))
	for b, i := range idx {
		x[b], y[b] = ds.Sample(i)
	}
	return x, y
}

// TestStepOpsMatchesVectors runs the conformance vectors operator by
// operator: every state digest and loss must be the vector's.
func TestStepOpsMatchesVectors(t *testing.T) {
	for _, c := range []struct {
		name  string
		steps int64 // 0: all
	}{{"tiny", 0}, {"saturating", 0}, {"example-synthetic", 4}} {
		t.Run(c.name, func(t *testing.T) {
			s, ds, want := loadVector(t, c.name)
			id, _ := s.ID()
			var h commit.Hasher
			st := s.Init()
			if d := h.StateDigest(id, st); hex.EncodeToString(d[:]) != want[0].digest {
				t.Fatalf("initial digest %x, vector %s", d, want[0].digest)
			}
			sm := s.NewSampler()
			n := s.Steps
			if c.steps > 0 {
				n = c.steps
			}
			for step := range n {
				x, y := batch(s, ds, sm, step)
				tr, next, err := ref.StepOps(s, st, step, x, y)
				if err != nil {
					t.Fatal(err)
				}
				w := want[step+1]
				if d := h.StateDigest(id, next); hex.EncodeToString(d[:]) != w.digest || tr.LossQ16() != w.loss {
					t.Fatalf("step %d: digest %x loss %d, vector %s %d", step, d, tr.LossQ16(), w.digest, w.loss)
				}
				if st.Step != step {
					t.Fatalf("StepOps modified its input state")
				}
				st = next
			}
		})
	}
}

// TestStepOpsMatchesStep compares StepOps with Step on random specs: same
// new state, tensor for tensor, and same loss; and checks that RunOp on
// each operator's recorded inputs gives its recorded outputs.
func TestStepOpsMatchesStep(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	iters := 30
	if testing.Short() {
		iters = 10
	}
	for it := range iters {
		s := spectest.Random(r, 20, 12)
		ds, err := dataset.Synthetic(s.Data.Synthetic.Seed, s.Data.Train.Count, s.Data.Train.Features, s.Data.Train.Classes)
		if err != nil {
			t.Fatal(err)
		}
		st := s.Init()
		sm := s.NewSampler()
		for step := range s.Steps {
			x, y := batch(s, ds, sm, step)
			tr, next, err := ref.StepOps(s, st, step, x, y)
			if err != nil {
				t.Fatalf("iter %d step %d: %v", it, step, err)
			}
			loss, err := ref.Step(s, st, step, x, y)
			if err != nil {
				t.Fatal(err)
			}
			if loss != tr.LossQ16() || !reflect.DeepEqual(st, next) {
				t.Fatalf("iter %d step %d: StepOps differs from Step (loss %d vs %d)", it, step, tr.LossQ16(), loss)
			}
			if step == 0 {
				checkRunOpReproduces(t, s, tr)
			}
		}
	}
}

func checkRunOpReproduces(t *testing.T, s *spec.Spec, tr *ref.OpTrace) {
	t.Helper()
	g := tr.Graph
	for k, o := range g.Ops {
		in := map[string]ref.Tensor{}
		for _, name := range o.Inputs {
			in[name], _ = tr.Tensor(name)
		}
		out, err := ref.RunOp(s, tr.Step, k, in)
		if err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
		for _, name := range o.Outputs {
			want, _ := tr.Tensor(name)
			if !reflect.DeepEqual(out[name], want) {
				t.Fatalf("%s: output %s differs from the trace", o.Name, name)
			}
		}
	}
}

// TestGraphOfTiny pins the operator list of the tiny vector (linear 8 →
// relu → linear 3): the list is part of the dispute protocol.
func TestGraphOfTiny(t *testing.T) {
	s, _, _ := loadVector(t, "tiny")
	g, err := ref.NewGraph(s)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range g.Ops {
		got = append(got, fmt.Sprintf("%s(%s)->(%s)", o.Name, strings.Join(o.Inputs, ","), strings.Join(o.Outputs, ",")))
	}
	want := []string{
		"quantize.0(layers.0.weight,layers.0.bias)->(layers.0.wq,layers.0.bq)",
		"forward.0(batch.x,layers.0.wq,layers.0.bq)->(layers.0.out)",
		"relu.1(layers.0.out)->(layers.1.out)",
		"quantize.2(layers.2.weight,layers.2.bias)->(layers.2.wq,layers.2.bq)",
		"forward.2(layers.1.out,layers.2.wq,layers.2.bq)->(layers.2.out)",
		"loss(layers.2.out,batch.y)->(loss.grad,loss.grad.exp,loss.sum)",
		"backward.2(loss.grad,layers.1.out,loss.grad.exp,layers.2.wq,layers.0.out)->(layers.2.dw,layers.2.db,layers.0.grad,layers.0.grad.exp)",
		"update.2(layers.2.weight,layers.2.bias,layers.2.weight.momentum,layers.2.bias.momentum,layers.2.dw,layers.2.db,loss.grad.exp)->(next.layers.2.weight,next.layers.2.bias,next.layers.2.weight.momentum,next.layers.2.bias.momentum)",
		"backward.0(layers.0.grad,batch.x)->(layers.0.dw,layers.0.db)",
		"update.0(layers.0.weight,layers.0.bias,layers.0.weight.momentum,layers.0.bias.momentum,layers.0.dw,layers.0.db,layers.0.grad.exp)->(next.layers.0.weight,next.layers.0.bias,next.layers.0.weight.momentum,next.layers.0.bias.momentum)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("operators:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, o := range g.Ops {
		for _, name := range o.Inputs {
			i := g.Index(name)
			if i < 0 || (g.Tensors[i].Producer >= 0 && g.Ops[g.Tensors[i].Producer].Name == o.Name) {
				t.Fatalf("%s: input %s is not produced earlier", o.Name, name)
			}
		}
	}
	// State outputs come in state order, with state names.
	for k, i := range g.StateOutputs() {
		if g.Tensors[i].StateName != g.Tensors[g.StateInputs()[k]].StateName {
			t.Fatalf("state output %d is %s", k, g.Tensors[i].Name)
		}
	}
}

// traceOf returns step 0 of the tiny vector, operator by operator.
func traceOf(t testing.TB) (*spec.Spec, *ref.OpTrace) {
	js, err := os.ReadFile(filepath.Join(vectorsDir, "tiny", "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	ds, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	x, y := batch(s, ds, s.NewSampler(), 0)
	tr, _, err := ref.StepOps(s, s.Init(), 0, x, y)
	if err != nil {
		t.Fatal(err)
	}
	return s, tr
}

func inputsOf(tr *ref.OpTrace, op int) map[string]ref.Tensor {
	in := map[string]ref.Tensor{}
	for _, name := range tr.Graph.Ops[op].Inputs {
		v, _ := tr.Tensor(name)
		in[name] = v.Clone()
	}
	return in
}

func opIndex(t testing.TB, g *ref.Graph, name string) int {
	for k, o := range g.Ops {
		if o.Name == name {
			return k
		}
	}
	t.Fatalf("no operator %s", name)
	return -1
}

// TestRunOpRejectsHostileInputs: every malformed input is an error
// wrapping ErrBadOpInput, before any computation.
func TestRunOpRejectsHostileInputs(t *testing.T) {
	s, tr := traceOf(t)
	g := tr.Graph
	fwd, loss, bwd, upd := opIndex(t, g, "forward.0"), opIndex(t, g, "loss"), opIndex(t, g, "backward.2"), opIndex(t, g, "update.0")
	type mut func(in map[string]ref.Tensor)
	cases := []struct {
		name string
		op   int
		step int64
		mut  mut
	}{
		{"missing input", fwd, 0, func(in map[string]ref.Tensor) { delete(in, "layers.0.wq") }},
		{"extra input", fwd, 0, func(in map[string]ref.Tensor) { in["layers.2.wq"] = in["layers.0.wq"] }},
		{"renamed input", fwd, 0, func(in map[string]ref.Tensor) { in["batch.X"] = in["batch.x"]; delete(in, "batch.x") }},
		{"wrong rank", fwd, 0, func(in map[string]ref.Tensor) { v := in["batch.x"]; v.Shape = []int{len(v.Data)}; in["batch.x"] = v }},
		{"transposed", fwd, 0, func(in map[string]ref.Tensor) {
			v := in["layers.0.wq"]
			v.Shape = []int{v.Shape[1], v.Shape[0]}
			in["layers.0.wq"] = v
		}},
		{"huge shape", fwd, 0, func(in map[string]ref.Tensor) { in["batch.x"] = ref.Tensor{Shape: []int{1 << 40, 1 << 40}} }},
		{"negative shape", fwd, 0, func(in map[string]ref.Tensor) { in["batch.x"] = ref.Tensor{Shape: []int{-5, -12}} }},
		{"short data", fwd, 0, func(in map[string]ref.Tensor) { v := in["batch.x"]; v.Data = v.Data[:len(v.Data)-1]; in["batch.x"] = v }},
		{"nil data", fwd, 0, func(in map[string]ref.Tensor) { v := in["batch.x"]; v.Data = nil; in["batch.x"] = v }},
		{"feature byte 256", fwd, 0, func(in map[string]ref.Tensor) { in["batch.x"].Data[3] = 256 }},
		{"negative feature", fwd, 0, func(in map[string]ref.Tensor) { in["batch.x"].Data[0] = -1 }},
		{"weight over W", fwd, 0, func(in map[string]ref.Tensor) { in["layers.0.wq"].Data[0] = 1 << 11 }},
		{"bias beyond int32 range", fwd, 0, func(in map[string]ref.Tensor) { in["layers.0.bq"].Data[0] = math.MaxInt64 }},
		{"label = classes", loss, 0, func(in map[string]ref.Tensor) { in["batch.y"].Data[0] = 3 }},
		{"negative label", loss, 0, func(in map[string]ref.Tensor) { in["batch.y"].Data[0] = -1 }},
		{"logit over Z", loss, 0, func(in map[string]ref.Tensor) { in["layers.2.out"].Data[0] = 1 << 15 }},
		{"gradient over G", bwd, 0, func(in map[string]ref.Tensor) { in["loss.grad"].Data[0] = math.MinInt64 }},
		{"wrong loss exponent", bwd, 0, func(in map[string]ref.Tensor) { in["loss.grad.exp"].Data[0] = 1 << 40 }},
		{"scalar with two elements", bwd, 0, func(in map[string]ref.Tensor) {
			in["loss.grad.exp"] = ref.Tensor{Shape: []int{2}, Data: []int64{-11, -11}}
		}},
		{"state beyond int32", upd, 0, func(in map[string]ref.Tensor) { in["layers.0.weight.momentum"].Data[0] = 1 << 31 }},
		{"exponent far out", upd, 0, func(in map[string]ref.Tensor) { in["layers.0.grad.exp"].Data[0] = -1 << 62 }},
		{"dW beyond its bound", upd, 0, func(in map[string]ref.Tensor) { in["layers.0.dw"].Data[0] = math.MaxInt64 }},
		{"step past the job", upd, 12, func(map[string]ref.Tensor) {}},
		{"negative step", upd, -1, func(map[string]ref.Tensor) {}},
		{"operator out of range", len(g.Ops), 0, func(map[string]ref.Tensor) {}},
		{"negative operator", -1, 0, func(map[string]ref.Tensor) {}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op := max(0, min(c.op, len(g.Ops)-1))
			in := inputsOf(tr, op)
			c.mut(in)
			_, err := ref.RunOp(s, c.step, c.op, in)
			if !errors.Is(err, ref.ErrBadOpInput) {
				t.Fatalf("got %v, want ErrBadOpInput", err)
			}
		})
	}
	if _, err := ref.RunOp(nil, 0, 0, nil); err == nil {
		t.Fatal("nil spec accepted")
	}
	bad := *s
	bad.BatchSize = 0
	if _, err := ref.RunOp(&bad, 0, 0, nil); !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("invalid spec: %v", err)
	}
}

// TestStepOpsRejectsBadState: a state or batch of the wrong form is an
// error, not a panic.
func TestStepOpsRejectsBadState(t *testing.T) {
	s, tr := traceOf(t)
	x, y := [][]uint8{}, []uint8{}
	for b := range s.BatchSize {
		bx, _ := tr.Tensor("batch.x")
		by, _ := tr.Tensor("batch.y")
		row := make([]uint8, s.Data.Train.Features)
		for i := range row {
			row[i] = uint8(bx.Data[b*len(row)+i])
		}
		x, y = append(x, row), append(y, uint8(by.Data[b]))
	}
	cases := map[string]func() (*spec.State, [][]uint8, []uint8){
		"wrong step": func() (*spec.State, [][]uint8, []uint8) { st := s.Init(); st.Step = 3; return st, x, y },
		"short tensor": func() (*spec.State, [][]uint8, []uint8) {
			st := s.Init()
			st.Tensors[0].Data = st.Tensors[0].Data[1:]
			return st, x, y
		},
		"renamed tensor": func() (*spec.State, [][]uint8, []uint8) { st := s.Init(); st.Tensors[1].Name = "x"; return st, x, y },
		"missing tensor": func() (*spec.State, [][]uint8, []uint8) { st := s.Init(); st.Tensors = st.Tensors[:3]; return st, x, y },
		"short batch":    func() (*spec.State, [][]uint8, []uint8) { return s.Init(), x[1:], y[1:] },
		"ragged batch": func() (*spec.State, [][]uint8, []uint8) {
			xx := append([][]uint8(nil), x...)
			xx[2] = xx[2][1:]
			return s.Init(), xx, y
		},
		"bad label": func() (*spec.State, [][]uint8, []uint8) {
			yy := append([]uint8(nil), y...)
			yy[0] = 200
			return s.Init(), x, yy
		},
		"nil state": func() (*spec.State, [][]uint8, []uint8) { return nil, x, y },
	}
	for name, mk := range cases {
		st, xx, yy := mk()
		if _, _, err := ref.StepOps(s, st, 0, xx, yy); !errors.Is(err, ref.ErrBadOpInput) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if _, _, err := ref.StepOps(s, s.Init(), 0, x, y); err != nil {
		t.Fatal(err)
	}
}

// FuzzRunOp feeds operators inputs decoded from arbitrary bytes: shapes,
// lengths and values all hostile. RunOp must return an error or outputs of
// the right shapes, never panic.
func FuzzRunOp(f *testing.F) {
	s, tr := traceOf(f)
	g := tr.Graph
	for k := range g.Ops {
		f.Add(uint8(k), uint8(0), []byte{})
		f.Add(uint8(k), uint8(1), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	}
	f.Fuzz(func(t *testing.T, opb, which uint8, data []byte) {
		op := int(opb) % (len(g.Ops) + 1)
		if op == len(g.Ops) {
			op = -1
		}
		in := inputsOf(tr, max(op, 0))
		// Overwrite one input with fuzzed shape and values.
		o := g.Ops[max(op, 0)]
		name := o.Inputs[int(which)%len(o.Inputs)]
		v := in[name]
		if len(data) >= 2 {
			switch data[0] % 4 {
			case 0: // fuzzed shape
				v.Shape = []int{int(int8(data[1])), len(data)}
			case 1: // fuzzed values, right shape
				for i := 0; i+8 <= len(data)-1 && i/8 < len(v.Data); i += 8 {
					v.Data[i/8] = int64(binary.LittleEndian.Uint64(data[1+i:]))
				}
			case 2: // small perturbations, likely in range
				for i, b := range data[1:] {
					v.Data[int(b)%len(v.Data)] += int64(int8(data[1+(i+1)%(len(data)-1)]))
				}
			case 3: // truncated
				v.Data = v.Data[:int(data[1])%(len(v.Data)+1)]
			}
		}
		in[name] = v
		out, err := ref.RunOp(s, 0, op, in)
		if err != nil {
			return
		}
		for _, oname := range o.Outputs {
			info := g.Tensors[g.Index(oname)]
			if err := info.Check(out[oname]); err != nil {
				t.Fatalf("%s: output out of its own range: %v", o.Name, err)
			}
		}
	})
}
