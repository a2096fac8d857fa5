package gpt

import (
	"strings"

	"github.com/beluga-compute/beluga/spec/fixed"
	"github.com/beluga-compute/beluga/spec/prng"
)

// State is what a training step changes: per parameter its master weights
// (int32, MasterFrac), AdamW's first moment (int32, MomentFrac) and second
// moment (int64, VarFrac), and the number of steps taken.
type State struct {
	Step int64
	W, M [][]int32
	V    [][]int64
}

// Init returns the initial state: moments 0, and weight i of parameter p
// (in Params order) (r mod (2L+1)) − L with r = Derive(seed, "init.gpt",
// p, 0).At(i), L = Isqrt(⌊4^MasterFrac / in⌋) for a matrix (uniform with
// bound 1/√in) and Isqrt(⌊3·4^MasterFrac / 2500⌋) for an embedding
// (standard deviation 0.02). GPT-2 blocks' gains start at 1 and their
// biases at 0.
func (c *Config) Init() *State {
	ps := c.Params()
	st := &State{W: make([][]int32, len(ps)), M: make([][]int32, len(ps)), V: make([][]int64, len(ps))}
	for i, p := range ps {
		n := p.Rows * p.In
		if p.Vector { // GPT-2 blocks: gains 1, biases 0
			w := make([]int32, n)
			if strings.HasSuffix(p.Name, ".gain") {
				for j := range w {
					w[j] = 1 << VectorFrac
				}
			}
			st.W[i], st.M[i], st.V[i] = w, make([]int32, n), make([]int64, n)
			continue
		}
		var l uint64
		if p.Embedding {
			l = fixed.Isqrt(3 << (2 * MasterFrac) / 2500)
		} else {
			l = fixed.Isqrt((1 << (2 * MasterFrac)) / uint64(p.In))
		}
		s := prng.Derive(c.Seed, "init.gpt", uint64(i), 0)
		w := make([]int32, n)
		for j := range w {
			w[j] = int32(int64(s.At(uint64(j))%(2*l+1)) - int64(l))
		}
		st.W[i], st.M[i], st.V[i] = w, make([]int32, n), make([]int64, n)
	}
	return st
}

// Clone returns a deep copy.
func (st *State) Clone() *State {
	c := &State{Step: st.Step, W: make([][]int32, len(st.W)), M: make([][]int32, len(st.M)), V: make([][]int64, len(st.V))}
	for i := range st.W {
		c.W[i] = append([]int32(nil), st.W[i]...)
		c.M[i] = append([]int32(nil), st.M[i]...)
		c.V[i] = append([]int64(nil), st.V[i]...)
	}
	return c
}
