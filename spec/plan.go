package spec

// Plan is the validated spec as the step function executes it: every linear
// layer with its input and output formats.
type Plan struct {
	Linear []LinearPlan
	// Largest magnitudes of each kind of value.
	WMax, AMax, GMax, LogitMax int64
	// MasterMax bounds |master weight| and |master bias|: WMax in master units.
	MasterMax int64
	// Params counts weights and biases (each also has a momentum buffer).
	Params int64
}

// LinearPlan is one linear layer.
type LinearPlan struct {
	Index   int // position in Model.Layers
	In, Out int
	InFrac  int   // fractional bits of the input
	InMax   int64 // bound on |input|
	OutFrac int   // fractional bits of the output
	OutMax  int64 // saturation bound of the output
	Shift   int   // InFrac + WeightFrac - OutFrac
	ReLU    bool  // a relu follows
	First   bool
	Last    bool // its outputs are the logits
}

// Plan derives the layer plan. Call it only on a spec that passed the
// structural checks of Validate (Decode guarantees that). A GPT (IsGPT)
// has no layer plan: its Plan is the zero Plan, with no linear layers and
// no parameters, so MLP code handed a GPT sees an empty model rather than
// misreading the GPT's head as an MLP layer; GPT() describes its model.
func (s *Spec) Plan() Plan {
	if s.IsGPT() {
		return Plan{}
	}
	n := &s.Numeric
	p := Plan{
		WMax:     1<<n.WeightBits - 1,
		AMax:     1<<n.ActBits - 1,
		GMax:     1<<n.GradBits - 1,
		LogitMax: 1<<n.LogitBits - 1,
	}
	p.MasterMax = p.WMax << (n.MasterFrac - n.WeightFrac)
	in, inFrac, inMax := s.Data.Train.Features, InputFrac, int64(255)
	ls := s.Model.Layers
	for i, l := range ls {
		if l.Op != OpLinear {
			continue
		}
		lp := LinearPlan{
			Index: i, In: in, Out: l.Out,
			InFrac: inFrac, InMax: inMax,
			OutFrac: n.ActFrac, OutMax: p.AMax,
			ReLU:  i+1 < len(ls) && ls[i+1].Op == OpReLU,
			First: len(p.Linear) == 0,
			Last:  i == len(ls)-1,
		}
		if lp.Last {
			lp.OutFrac, lp.OutMax = n.LogitFrac, p.LogitMax
		}
		lp.Shift = lp.InFrac + n.WeightFrac - lp.OutFrac
		p.Linear = append(p.Linear, lp)
		p.Params += int64(lp.In)*int64(lp.Out) + int64(lp.Out)
		in, inFrac, inMax = l.Out, n.ActFrac, p.AMax
	}
	return p
}

// Accumulator is one integer sum of the step with its worst-case magnitude.
type Accumulator struct {
	Name  string
	Bound int64
}

// Accumulators lists the sums layer l computes in a step of batch b and
// their worst-case magnitudes (SPEC.md §"Accumulator bounds"). All factors
// are below 2^17, so no product here overflows int64.
func (l LinearPlan) Accumulators(p Plan, batch int) []Accumulator {
	b := int64(batch)
	acc := []Accumulator{
		{"forward", int64(l.In)*l.InMax*p.WMax + p.WMax<<l.InFrac},
		{"weight gradient", b * l.InMax * p.GMax},
		{"bias gradient", b * p.GMax},
	}
	if !l.First {
		acc = append(acc, Accumulator{"input gradient", int64(l.Out) * p.GMax * p.WMax})
	}
	return acc
}
