package inferdispute_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inferdispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// gpt2Model is a checkpoint of a model of GPT-2 blocks (SPEC.md §22), as
// imported models are, with newModel's moments: gains 1 ± 0.25 and biases
// ±0.25 (a varies them), so that every vector matters.
func gpt2Model(t testing.TB, layers int, seed uint64, a int32) *model {
	t.Helper()
	c := config(layers, seed)
	c.GPT2 = true
	st := c.Init()
	st.Step = 9
	for i := range st.M {
		for k := range st.M[i] {
			st.M[i][k] = int32(k%7) - 3
			st.V[i][k] = int64(k % 5)
		}
	}
	for p, pr := range c.Params() {
		if !pr.Vector {
			continue
		}
		for i := range st.W[p] {
			v := (int32(i)*7919+int32(p)*104729+a*31)%32768 - 16384
			if strings.HasSuffix(pr.Name, ".gain") {
				v += 1 << 16
			}
			st.W[p][i] = v
		}
	}
	gen, err := gpt.NewGenerator(c, st, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	h := commit.Hasher{Threads: 1}
	d := h.StateDigest(job, spec.GPTTensors(c, st))
	return &model{c: c, st: st, gen: gen, m: inferdispute.Model{Config: c, Job: job, Step: st.Step, Digest: d}}
}

// TestGPT2CheatersLoseOneOperator: a solver serving an imported model of
// GPT-2 blocks that cheats — other weights (its own biases), a truncated
// context, made-up bytes — loses the game to an honest verifier with the
// referee recomputing one operator (the tied head, or the sampling), as
// for §20 models; one that claims the weights it really used loses on the
// sources, recomputing nothing.
func TestGPT2CheatersLoseOneOperator(t *testing.T) {
	t.Parallel()
	truncate := func(r *inference.Request) { r.Prompt = r.Prompt[len(r.Prompt)-1:] }
	cheats := []struct {
		name   string
		play   func(t *testing.T, pub, other *model, req *inference.Request) *inferdispute.Result
		reason inferdispute.Reason
		op     string
	}{
		{"other biases", func(t *testing.T, pub, other *model, req *inference.Request) *inferdispute.Result {
			cs := serve(t, other.gen, req, nil)
			return play(t, pub, cs, claimsItsLogits(t, pub, cs, other.gen, req.Prompt), honest(t, pub, cs))
		}, inferdispute.ReasonOp, "head"},
		{"other biases, claimed", func(t *testing.T, pub, other *model, req *inference.Request) *inferdispute.Result {
			cs := serve(t, other.gen, req, nil)
			return play(t, pub, cs, honest(t, other, cs), honest(t, pub, cs))
		}, inferdispute.ReasonInconsistent, ""},
		{"truncated context", func(t *testing.T, pub, _ *model, req *inference.Request) *inferdispute.Result {
			cs := serve(t, pub.gen, req, truncate)
			return play(t, pub, cs, claimsItsLogits(t, pub, cs, pub.gen, req.Prompt[len(req.Prompt)-1:]), honest(t, pub, cs))
		}, inferdispute.ReasonOp, "head"},
		{"made-up bytes", func(t *testing.T, pub, _ *model, req *inference.Request) *inferdispute.Result {
			cs := serve(t, pub.gen, req, nil)
			out := slices.Clone(cs.Output)
			out[len(out)-1] ^= 0x40
			rc := *cs.Receipt
			rc.Output = inference.OutputHash(out)
			if err := rc.Sign(key()); err != nil {
				t.Fatal(err)
			}
			cs = inferdispute.Case{Request: req, Output: out, Receipt: &rc}
			return play(t, pub, cs, claimsItsLogits(t, pub, cs, pub.gen, req.Prompt), honest(t, pub, cs))
		}, inferdispute.ReasonOp, "sample"},
	}
	for _, c := range cheats {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pub, other := gpt2Model(t, 2, 5, 0), gpt2Model(t, 2, 5, 1)
			for i := range 3 {
				req := request(pub, 200+i)
				req.MaxTokens = pub.c.Context - len(req.Prompt)
				res := c.play(t, pub, other, req)
				if res.Verdict.Loser != dispute.LoserSolver || res.Verdict.Reason != c.reason {
					t.Fatalf("request %d: %v (%s), want the solver to lose by %v", i, res.Verdict, res.Forfeit, c.reason)
				}
				want := 0
				if c.op != "" {
					want = 1
				}
				if res.Cost.OpsRun != want || res.Cost.Op != c.op {
					t.Fatalf("request %d: the referee ran %d operators (%q), want %d (%q)", i, res.Cost.OpsRun, res.Cost.Op, want, c.op)
				}
			}
		})
	}
}

// TestGPT2HonestSolverNeverSlashed: against an honest solver serving a
// model of GPT-2 blocks, a verifier that lies about any one operator's
// outputs — layernorm, the biased products, gelu, the tied head's
// quantisation included — loses with that operator, and only it,
// recomputed; one that claims other weights loses on the sources.
func TestGPT2HonestSolverNeverSlashed(t *testing.T) {
	t.Parallel()
	pub := gpt2Model(t, 1, 5, 0)
	other := gpt2Model(t, 1, 5, 1)
	req := request(pub, 9)
	cs := serve(t, pub.gen, req, nil)
	g, err := inferdispute.NewGraph(pub.c, req, cs.Output)
	if err != nil {
		t.Fatal(err)
	}
	ops := g.Layout().Ops
	var kinds []string
	for k, o := range ops {
		kinds = append(kinds, o.Name)
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			liar := honest(t, pub, cs, lieAt(k, o))
			res := play(t, pub, cs, honest(t, pub, cs), liar)
			if res.Verdict.Loser != dispute.LoserVerifier || res.Verdict.Reason != inferdispute.ReasonOp {
				t.Fatalf("verdict %v (%s), want the verifier's lie at %s recomputed", res.Verdict, res.Forfeit, o.Name)
			}
			if res.Cost.OpsRun != 1 || res.Cost.Op != o.Name {
				t.Fatalf("the referee ran %d operators (%s), want %s alone", res.Cost.OpsRun, res.Cost.Op, o.Name)
			}
		})
	}
	for _, want := range []string{"quantize.tok_emb", "0.ln1", "0.qkv", "0.out", "0.gelu", "0.down", "final.ln", "head"} {
		if !slices.Contains(kinds, want) {
			t.Fatalf("operators %v have no %s", kinds, want)
		}
	}
	res := play(t, pub, cs, honest(t, pub, cs), honest(t, other, cs))
	if res.Verdict.Loser != dispute.LoserVerifier || res.Cost.OpsRun != 0 {
		t.Fatalf("a verifier with other biases: %v, %d operators", res.Verdict, res.Cost.OpsRun)
	}
}
