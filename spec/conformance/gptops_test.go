package conformance

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/spec/gptref"
)

// Per-operator vectors (SPEC.md §16): ops.json of a GPT vector holds, for
// some steps, every operator of the reference graph (spec/gptref) with the
// exact values of its inputs and outputs, so an implementation can check
// each formula of §20.11–§20.14 on its own — forward and backward.

// gptOpsSteps are the steps whose operators ops.json records, per vector.
var gptOpsSteps = map[string][]int64{"gpt-saturating": {0, 5}}

type opsFile struct {
	Vector string      `json:"vector"`
	Steps  []opsOfStep `json:"steps"`
}

type opsOfStep struct {
	Step int64     `json:"step"`
	Ops  []opValue `json:"ops"`
}

type opValue struct {
	Name    string                `json:"name"`
	Inputs  map[string]jsonTensor `json:"inputs"`
	Outputs map[string]jsonTensor `json:"outputs"`
}

type jsonTensor struct {
	Shape []int   `json:"shape"`
	Data  []int64 `json:"data"`
}

// gptOps runs the reference over a vector's steps and records the
// operators of the steps in want.
func gptOps(t *testing.T, name string, want []int64) *opsFile {
	s, text, _ := loadGPTVector(t, filepath.Join(gptVectorsDir, name))
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	split, _ := s.TextSplit()
	g, err := gptref.NewGraph(c)
	if err != nil {
		t.Fatal(err)
	}
	f := &opsFile{Vector: name}
	st := c.Init()
	tx := newText(t, text)
	for step := range s.Steps {
		b, _ := gptStepBatch(t, tx, c, split.Train, step)
		tokens, targets := b.Tokens, b.Targets
		if slices.Contains(want, step) {
			vals, err := g.Run(st, tokens, targets)
			if err != nil {
				t.Fatal(err)
			}
			rec := opsOfStep{Step: step}
			for _, o := range g.Ops() {
				ov := opValue{Name: o.Name, Inputs: map[string]jsonTensor{}, Outputs: map[string]jsonTensor{}}
				for _, in := range o.Inputs {
					ov.Inputs[in] = jsonTensor{Shape: vals[in].Shape, Data: vals[in].Data}
				}
				for _, out := range o.Outputs {
					ov.Outputs[out] = jsonTensor{Shape: vals[out].Shape, Data: vals[out].Data}
				}
				rec.Ops = append(rec.Ops, ov)
			}
			f.Steps = append(f.Steps, rec)
		}
		if st, _, err = gptref.Step(c, st, tokens, targets); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestUpdateGPTOps(t *testing.T) {
	if !*update {
		t.Skip("pass -update to regenerate the vectors")
	}
	for name, steps := range gptOpsSteps {
		js, err := json.Marshal(gptOps(t, name, steps))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(gptVectorsDir, name, "ops.json"), append(js, '\n'))
	}
}

// TestGPTOps: every recorded operator of ops.json, run alone on its
// recorded inputs, gives its recorded outputs (the vectors stay true to the
// reference), and the file is what the reference records today.
func TestGPTOps(t *testing.T) {
	t.Parallel()
	for name, steps := range gptOpsSteps {
		data, err := os.ReadFile(filepath.Join(gptVectorsDir, name, "ops.json"))
		if err != nil {
			t.Fatal(err)
		}
		var f opsFile
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		s, _, _ := loadGPTVector(t, filepath.Join(gptVectorsDir, name))
		c, _ := s.GPT()
		g, err := gptref.NewGraph(c)
		if err != nil {
			t.Fatal(err)
		}
		ops := g.Ops()
		for _, st := range f.Steps {
			if len(st.Ops) != len(ops) {
				t.Fatalf("%s step %d: %d operators, the graph has %d", name, st.Step, len(st.Ops), len(ops))
			}
			for i, o := range st.Ops {
				in := map[string]gptref.Tensor{}
				for k, v := range o.Inputs {
					in[k] = gptref.Tensor{Shape: v.Shape, Data: v.Data}
				}
				out, err := g.RunOp(i, in, st.Step)
				if err != nil {
					t.Fatalf("%s step %d operator %s: %v", name, st.Step, o.Name, err)
				}
				for k, v := range o.Outputs {
					if !slices.Equal(out[k].Data, v.Data) || !slices.Equal(out[k].Shape, v.Shape) {
						t.Fatalf("%s step %d operator %s: output %s differs from ops.json", name, st.Step, o.Name, k)
					}
				}
			}
		}
		fresh, err := json.Marshal(gptOps(t, name, steps))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(fresh, '\n'), data) {
			t.Fatalf("%s: ops.json is not what the reference records (run go test ./spec/conformance -run TestUpdateGPTOps -update)", name)
		}
	}
}
