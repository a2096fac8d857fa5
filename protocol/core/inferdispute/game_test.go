package inferdispute_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inferdispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/opgraph"
	"github.com/beluga-compute/beluga/spec/prng"
)

func config(layers int, seed uint64) gpt.Config {
	return gpt.Config{Context: 32, Dim: 16, Layers: layers, Heads: 2, FF: 32, Bits: 12, Batch: 1, Seed: seed,
		Beta1: gpt.Ratio{Num: 58982, Shift: 16}, Beta2: gpt.Ratio{Num: 62259, Shift: 16}, WeightDecay: gpt.Ratio{Num: 0, Shift: 16}, Eps: 1,
		LRShift: 40, LR: []gpt.LRPoint{{Step: 0, Value: 1 << 29}}}
}

// model is a checkpoint: its state (moments made non-zero, so that the
// claim's Moments matter), its generator and its name for the game.
type model struct {
	c   gpt.Config
	st  *gpt.State
	gen *gpt.Generator
	m   inferdispute.Model
}

var job = spec.JobID{7, 7, 7}

func newModel(t testing.TB, c gpt.Config) *model {
	t.Helper()
	st := c.Init()
	st.Step = 9
	for i := range st.M {
		for k := range st.M[i] {
			st.M[i][k] = int32(k%7) - 3
			st.V[i][k] = int64(k % 5)
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

func key() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
}

// request draws a request: prompts of 2 to 12 bytes, greedy or sampled.
func request(m *model, i int) *inference.Request {
	s := prng.Derive(uint64(i), "test.request", 0, 0)
	at := func(j int, n uint64) int { return int(prng.Below(s.At(uint64(j)), n)) }
	p := make([]byte, 2+at(0, 11))
	for j := range p {
		p[j] = byte('a' + at(10+j, 26))
	}
	return &inference.Request{ID: fmt.Sprintf("req-%d", i), Model: m.m.Digest, Prompt: p,
		MaxTokens: 1 + at(1, uint64(m.c.Context-len(p))), Seed: s.At(2), Temperature: int64(at(3, 3) * 40000)}
}

// serve generates req with gen (the request edit applied: a cheat) and
// signs the receipt as if for req.
func serve(t testing.TB, gen *gpt.Generator, req *inference.Request, edit func(*inference.Request)) inferdispute.Case {
	t.Helper()
	r := *req
	if edit != nil {
		edit(&r)
	}
	res, err := inference.Generate(gen, &r, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := inference.NewReceipt(req, res, key())
	if err != nil {
		t.Fatal(err)
	}
	return inferdispute.Case{Request: req, Output: res.Output, Receipt: rc}
}

// honest is the party of the published model.
func honest(t testing.TB, m *model, cs inferdispute.Case, opts ...inferdispute.ReplayerOption) *inferdispute.Replayer {
	t.Helper()
	r, err := inferdispute.NewReplayer(m.c, m.st, cs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// claimsItsLogits is a cheating solver that plays the game as consistently
// as it can: the published weights, the record's text, the honest pass up
// to the logits, then — at the output rows — the logits it actually
// sampled from (those of gen over prompt), the receipt's bytes and root.
func claimsItsLogits(t testing.TB, m *model, cs inferdispute.Case, gen *gpt.Generator, prompt []byte) *inferdispute.Replayer {
	t.Helper()
	p := len(cs.Request.Prompt)
	text := append(slices.Clone(prompt), cs.Output[:len(cs.Output)-1]...)
	type row struct {
		z []int64
		e int
	}
	var rows []row
	if err := gen.Positions(text, len(prompt)-1, func(_ int, z []int64, e int) error {
		rows = append(rows, row{slices.Clone(z), e})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return honest(t, m, cs, inferdispute.WithTamper(func(g *inferdispute.Graph, op int, out map[string]opgraph.Tensor) {
		if z, ok := out["act.logits"]; ok {
			ez := out["act.logits.exp"]
			for k, r := range rows {
				copy(z.Data[(p-1+k)*gpt.Vocab:], r.z)
				ez.Data[p-1+k] = int64(r.e)
			}
		}
		if s, ok := out[inferdispute.SampledTensor]; ok {
			for k, b := range cs.Output {
				s.Data[k] = int64(b)
			}
		}
		if r, ok := out[inferdispute.RootTensor]; ok {
			for k, b := range cs.Receipt.Positions {
				r.Data[k] = int64(b)
			}
		}
	}))
}

// play runs the game and re-checks its evidence, after a round trip
// through its wire encoding.
func play(t testing.TB, m *model, cs inferdispute.Case, solver, verifier inferdispute.Party) *inferdispute.Result {
	t.Helper()
	res, err := inferdispute.NewReferee().Play(context.Background(), m.m, cs, solver, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if res.Evidence == nil {
		if res.Verdict.Reason != inferdispute.ReasonForfeit {
			t.Fatalf("verdict %v without evidence", res.Verdict)
		}
		return res
	}
	b, err := res.Evidence.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := inferdispute.DecodeEvidence(b)
	if err != nil {
		t.Fatal(err)
	}
	v, err := inferdispute.Check(m.m, *ev)
	if err != nil || v != res.Verdict {
		t.Fatalf("Check of the evidence: %v, %v; the game decided %v", v, err, res.Verdict)
	}
	return res
}

// TestCheatersLoseOneOperator: each cheater class of the inference tests
// — another (smaller) model, other weights, a truncated context, other
// sampling, made-up bytes — loses the game against an honest verifier
// with the referee recomputing exactly one operator: the head for wrong
// logits, the sampling for wrong bytes. A cheater that claims the weights
// or the text it really used loses on the sources, recomputing nothing; a
// receipt false on its face loses before the game.
func TestCheatersLoseOneOperator(t *testing.T) {
	t.Parallel()
	// One set of models per cheat: a Generator is not concurrent.
	var pub, smaller, other *model
	truncate := func(r *inference.Request) { r.Prompt = r.Prompt[len(r.Prompt)-1:] }
	cheats := []struct {
		name   string
		play   func(t *testing.T, req *inference.Request) *inferdispute.Result
		reason inferdispute.Reason
		op     string
	}{
		{"smaller model", func(t *testing.T, req *inference.Request) *inferdispute.Result {
			cs := serve(t, smaller.gen, req, nil)
			return play(t, pub, cs, claimsItsLogits(t, pub, cs, smaller.gen, req.Prompt), honest(t, pub, cs))
		}, inferdispute.ReasonOp, "head"},
		{"other weights", func(t *testing.T, req *inference.Request) *inferdispute.Result {
			cs := serve(t, other.gen, req, nil)
			return play(t, pub, cs, claimsItsLogits(t, pub, cs, other.gen, req.Prompt), honest(t, pub, cs))
		}, inferdispute.ReasonOp, "head"},
		{"other weights, claimed", func(t *testing.T, req *inference.Request) *inferdispute.Result {
			cs := serve(t, other.gen, req, nil)
			return play(t, pub, cs, honest(t, other, cs), honest(t, pub, cs))
		}, inferdispute.ReasonInconsistent, ""},
		{"truncated context", func(t *testing.T, req *inference.Request) *inferdispute.Result {
			cs := serve(t, pub.gen, req, truncate)
			return play(t, pub, cs, claimsItsLogits(t, pub, cs, pub.gen, req.Prompt[len(req.Prompt)-1:]), honest(t, pub, cs))
		}, inferdispute.ReasonOp, "head"},
		{"other sampling", func(t *testing.T, req *inference.Request) *inferdispute.Result {
			cs := serve(t, pub.gen, req, func(r *inference.Request) { r.Seed++; r.Temperature = 65536 })
			return play(t, pub, cs, claimsItsLogits(t, pub, cs, pub.gen, req.Prompt), honest(t, pub, cs))
		}, inferdispute.ReasonOp, "sample"},
		{"made-up bytes", func(t *testing.T, req *inference.Request) *inferdispute.Result {
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
		{"wrong tokens, claimed", func(t *testing.T, req *inference.Request) *inferdispute.Result {
			cs := serve(t, pub.gen, req, truncate)
			// It answers for the text it really continued: another window.
			r2 := *req
			r2.Prompt = slices.Clone(req.Prompt)
			r2.Prompt[0] ^= 1
			lie := inferdispute.Case{Request: &r2, Output: cs.Output, Receipt: cs.Receipt}
			return play(t, pub, cs, honest(t, pub, lie), honest(t, pub, cs))
		}, inferdispute.ReasonInconsistent, ""},
		{"stops early", func(t *testing.T, req *inference.Request) *inferdispute.Result {
			cs := serve(t, pub.gen, req, func(r *inference.Request) { r.MaxTokens = 1 })
			return play(t, pub, cs, honest(t, pub, cs), honest(t, pub, cs))
		}, inferdispute.ReasonReceipt, ""},
	}
	for _, c := range cheats {
		t.Run(c.name, func(t *testing.T) {
			pub, smaller, other = newModel(t, config(2, 5)), newModel(t, config(1, 5)), newModel(t, config(2, 6))
			played := 0
			for i := range 6 {
				req := request(pub, 100+i)
				req.MaxTokens = pub.c.Context - len(req.Prompt)
				if c.name == "stops early" {
					req.MaxTokens = 2 + i
				}
				if c.name == "other sampling" && i%2 == 0 {
					req.Temperature = 0 // greedy honest, sampled cheat
				}
				res := c.play(t, req)
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
				if want == 1 && res.Cost.OpWork >= res.Cost.PassWork/2 {
					t.Errorf("request %d: the operator costs %d of the pass's %d", i, res.Cost.OpWork, res.Cost.PassWork)
				}
				played++
			}
			t.Logf("%d games", played)
		})
	}
}

// TestHonestSolverNeverSlashed: against an honest solver, a verifier that
// lies about any one operator's outputs (and so claims other bytes or
// another root than the receipt's) loses with that operator, and only it,
// recomputed; one that claims other weights, another text, or the
// receipt's own result, or does not answer, loses too.
func TestHonestSolverNeverSlashed(t *testing.T) {
	t.Parallel()
	pub := newModel(t, config(2, 5))
	other := newModel(t, config(2, 6))
	req := request(pub, 7)
	cs := serve(t, pub.gen, req, nil)
	g, err := inferdispute.NewGraph(pub.c, req, cs.Output)
	if err != nil {
		t.Fatal(err)
	}
	ops := g.Layout().Ops
	for k, o := range ops {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			liar := honest(t, pub, cs, lieAt(k, o))
			res := play(t, pub, cs, honest(t, pub, cs), liar)
			if res.Verdict.Loser != dispute.LoserVerifier {
				t.Fatalf("an honest solver lost: %v %s", res.Verdict, res.Forfeit)
			}
			if res.Verdict.Reason == inferdispute.ReasonOp && (res.Cost.OpsRun != 1 || res.Cost.Op != o.Name) {
				t.Fatalf("the referee ran %d operators (%s), want %s alone", res.Cost.OpsRun, res.Cost.Op, o.Name)
			}
			if res.Verdict.Reason != inferdispute.ReasonOp {
				t.Fatalf("verdict %v (%s), want the lie at %s recomputed", res.Verdict, res.Forfeit, o.Name)
			}
		})
	}
	others := map[string]inferdispute.Party{
		"other weights":   honest(t, other, cs),
		"another text":    honest(t, pub, inferdispute.Case{Request: &inference.Request{ID: req.ID, Model: req.Model, Prompt: append([]byte{'#'}, req.Prompt[1:]...), MaxTokens: req.MaxTokens, Seed: req.Seed, Temperature: req.Temperature}, Output: cs.Output, Receipt: cs.Receipt}),
		"agrees":          honest(t, pub, cs),
		"does not answer": silent{},
	}
	for name, v := range others {
		res := play(t, pub, cs, honest(t, pub, cs), v)
		if res.Verdict.Loser != dispute.LoserVerifier || res.Cost.OpsRun != 0 {
			t.Fatalf("verifier %s: %v, %d operators", name, res.Verdict, res.Cost.OpsRun)
		}
	}
}

func maxOf(infos []opgraph.TensorInfo, name string) int64 {
	for _, info := range infos {
		if info.Name == name {
			return info.Max
		}
	}
	return 0
}

// silent answers nothing.
type silent struct{}

func (silent) Claim(context.Context) (inferdispute.Claim, error) {
	return inferdispute.Claim{}, errors.New("no answer")
}
func (silent) Open(context.Context, string) (opgraph.Tensor, error) {
	return opgraph.Tensor{}, errors.New("no answer")
}

// TestBothLie: when the cheating solver and a lying verifier both depart
// from the spec at the same operator, its recomputation matches neither
// claim and both lose, with that one operator recomputed.
func TestBothLie(t *testing.T) {
	t.Parallel()
	pub := newModel(t, config(2, 5))
	req := request(pub, 40)
	cs := serve(t, pub.gen, req, func(r *inference.Request) { r.Prompt = r.Prompt[1:] })
	solver := claimsItsLogits(t, pub, cs, pub.gen, req.Prompt[1:])
	verifier := honest(t, pub, cs, inferdispute.WithTamper(func(_ *inferdispute.Graph, _ int, out map[string]opgraph.Tensor) {
		if z, ok := out["act.logits"]; ok {
			z.Data[0]++ // a row no leaf reads: only the head's claim changes
		}
		if r, ok := out[inferdispute.RootTensor]; ok {
			r.Data[0] ^= 1
		}
	}))
	res := play(t, pub, cs, solver, verifier)
	if res.Verdict != (inferdispute.Verdict{Loser: dispute.LoserBoth, Reason: inferdispute.ReasonOp}) || res.Cost.Op != "head" || res.Cost.OpsRun != 1 {
		t.Fatalf("%v, %d operators (%s)", res.Verdict, res.Cost.OpsRun, res.Cost.Op)
	}
}

// lieAt makes a verifier claim one wrong output of operator k (o) — the
// first value of its first output, flipped within its range — and accuse
// the receipt with another root.
func lieAt(k int, o opgraph.OpInfo) inferdispute.ReplayerOption {
	return inferdispute.WithTamper(func(g *inferdispute.Graph, op int, out map[string]opgraph.Tensor) {
		if op == k {
			v := out[o.Outputs[0]]
			v.Data[0] ^= 1
			if info := g.Layout().Tensors; v.Data[0] > maxOf(info, o.Outputs[0]) {
				v.Data[0] -= 2
			}
		}
		if r, ok := out[inferdispute.RootTensor]; ok && op != k {
			r.Data[0] ^= 1 // accuse: another root than the receipt's
		}
	})
}
