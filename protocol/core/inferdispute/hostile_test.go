package inferdispute_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inferdispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// opener claims what inner claims and opens what open returns.
type opener struct {
	inner inferdispute.Party
	open  func(name string) opgraph.Tensor
}

func (o opener) Claim(ctx context.Context) (inferdispute.Claim, error) { return o.inner.Claim(ctx) }
func (o opener) Open(_ context.Context, name string) (opgraph.Tensor, error) {
	return o.open(name), nil
}

// TestHostileOpenings: openings of the wrong shape, rank, length or
// values, or that do not match the agreed hash, are errors that lose the
// opener the game (both, if both open them), never panics; when the
// solver's opening fails the verifier's decides; evidence with altered
// openings, operator or verdict does not check.
func TestHostileOpenings(t *testing.T) {
	t.Parallel()
	pub := newModel(t, config(1, 5))
	req := request(pub, 11)
	cs := serve(t, pub.gen, req, func(r *inference.Request) { r.Prompt = r.Prompt[1:] })
	cheat := claimsItsLogits(t, pub, cs, pub.gen, req.Prompt[1:])
	hostile := []func(name string) opgraph.Tensor{
		func(string) opgraph.Tensor { return opgraph.Tensor{} },
		func(string) opgraph.Tensor {
			return opgraph.Tensor{Shape: []int{1, 1, 1, 1, 1, 1, 1}, Data: []int64{1}}
		},
		func(string) opgraph.Tensor { return opgraph.Tensor{Shape: []int{1 << 30, 1 << 30}} },
		func(string) opgraph.Tensor { return opgraph.Tensor{Shape: []int{-1}, Data: nil} },
		func(name string) opgraph.Tensor {
			v, _ := cheat.Open(context.Background(), name)
			for i := range v.Data {
				v.Data[i] = math.MaxInt64
			}
			return v
		},
		func(name string) opgraph.Tensor { // in range, but not the agreed value
			v, _ := cheat.Open(context.Background(), name)
			v.Data[0] ^= 1
			return v
		},
	}
	for i, h := range hostile {
		res := play(t, pub, cs, opener{cheat, h}, opener{honest(t, pub, cs), h})
		if res.Verdict != (inferdispute.Verdict{Loser: dispute.LoserBoth, Reason: inferdispute.ReasonForfeit}) {
			t.Fatalf("hostile opening %d: %v, want both to forfeit", i, res.Verdict)
		}
		res = play(t, pub, cs, opener{cheat, h}, honest(t, pub, cs))
		if res.Verdict != (inferdispute.Verdict{Loser: dispute.LoserSolver, Reason: inferdispute.ReasonOp}) || res.Cost.OpsRun != 1 {
			t.Fatalf("hostile opening %d by the solver alone: %v, want the verifier's opening to decide", i, res.Verdict)
		}
	}
	res := play(t, pub, cs, cheat, honest(t, pub, cs))
	ev := *res.Evidence
	bad := map[string]func(e *inferdispute.Evidence){
		"input altered": func(e *inferdispute.Evidence) {
			in := append([]dispute.NamedTensor(nil), e.Inputs...)
			in[0].Tensor = in[0].Tensor.Clone()
			in[0].Tensor.Data[0] ^= 1
			e.Inputs = in
		},
		"input missing": func(e *inferdispute.Evidence) { e.Inputs = e.Inputs[1:] },
		"input renamed": func(e *inferdispute.Evidence) {
			in := append([]dispute.NamedTensor(nil), e.Inputs...)
			in[0].Name = "tokens"
			e.Inputs = in
		},
		"other operator": func(e *inferdispute.Evidence) { e.Op-- },
		"no operator":    func(e *inferdispute.Evidence) { e.Op, e.Inputs = inferdispute.NoOp, nil },
		"other verdict":  func(e *inferdispute.Evidence) { e.Verdict.Loser = dispute.LoserVerifier },
		"short claim":    func(e *inferdispute.Evidence) { e.Verifier.Hashes = e.Verifier.Hashes[:3] },
	}
	for name, edit := range bad {
		e := ev
		edit(&e)
		if _, err := inferdispute.Check(pub.m, e); err == nil {
			t.Errorf("%s: the evidence checks", name)
		}
	}
}

// TestSampleRefusesImpossibleLogits: the sampling operator samples the
// widest rows a valid head computes, refuses with an error an exponent no
// valid pass computes, and every operator refuses inputs of
// the wrong names, shapes or ranges.
func TestSampleRefusesImpossibleLogits(t *testing.T) {
	t.Parallel()
	c := config(1, 5)
	req := &inference.Request{ID: "x", Prompt: []byte("ab"), MaxTokens: 2, Temperature: 65536}
	g, err := inferdispute.NewGraph(c, req, []byte("cd"))
	if err != nil {
		t.Fatal(err)
	}
	l := g.Layout()
	op := len(l.Ops) - 2 // sample
	var zmax int64
	for _, info := range l.Tensors {
		if info.Name == "act.logits" {
			zmax = info.Max
		}
	}
	n := 4
	z := opgraph.Tensor{Shape: []int{n, gpt.Vocab}, Data: make([]int64, n*gpt.Vocab)}
	z.Data[gpt.Vocab] = zmax
	z.Data[gpt.Vocab+1] = -zmax
	e := opgraph.Tensor{Shape: []int{n}, Data: make([]int64, n)}
	for _, x := range []int64{-1 << 19, 1 << 9, 0} {
		e.Data[1] = x // the extremes of the logits' range sample without leaving int64
		if _, err := g.RunOp(op, map[string]opgraph.Tensor{"act.logits": z, "act.logits.exp": e}, 0); err != nil && x == 0 {
			t.Fatalf("the widest logits a valid head computes: %v", err)
		}
	}
	z.Data[gpt.Vocab], z.Data[gpt.Vocab+1] = 0, 0
	e.Data[1] = 1 << 19
	if _, err := g.RunOp(op, map[string]opgraph.Tensor{"act.logits": z, "act.logits.exp": e}, 0); !errors.Is(err, opgraph.ErrBadOpInput) {
		t.Fatalf("a huge exponent: %v", err)
	}
	for _, in := range []map[string]opgraph.Tensor{
		nil,
		{"act.logits": z},
		{"act.logits": z, "tokens": e},
		{"act.logits": e, "act.logits.exp": z},
	} {
		for k := range l.Ops {
			if _, err := g.RunOp(k, in, 0); err == nil {
				t.Fatalf("operator %s ran on %v", l.Ops[k].Name, in)
			}
		}
	}
	if _, err := g.RunOp(len(l.Ops), nil, 0); err == nil {
		t.Fatal("an operator past the graph ran")
	}
}
