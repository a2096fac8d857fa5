package inferdispute_test

import (
	"context"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/opgraph"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// exampleConfig is the built-in example GPT (spec.ExampleGPT): 4 blocks,
// context 128, width 128, 4 heads, MLP 512, 12-bit operands.
func exampleConfig() gpt.Config {
	return gpt.Config{Context: 128, Dim: 128, Layers: 4, Heads: 4, FF: 512, Bits: 12, Batch: 1, Seed: 1,
		Beta1: gpt.Ratio{Num: 58982, Shift: 16}, Beta2: gpt.Ratio{Num: 62259, Shift: 16}, WeightDecay: gpt.Ratio{Num: 6554, Shift: 16}, Eps: 1,
		LRShift: 39, LR: []gpt.LRPoint{{Step: 0, Value: 0}, {Step: 30, Value: 549755814}, {Step: 600, Value: 54975581}}}
}

// TestRefereeCost measures what the referee pays on the example GPT for a
// full window (64-byte prompt, 64 bytes generated): the operator it
// recomputes (Work and wall time) against the whole pass (Work) and the
// engine's teacher-forced pass that the old referee ran (wall time).
// Timings are logged, never asserted.
func TestRefereeCost(t *testing.T) {
	spectest.Slow(t)
	pub := newModel(t, exampleConfig())
	req := request(pub, 5)
	req.Prompt = make([]byte, 64)
	for i := range req.Prompt {
		req.Prompt[i] = byte('a' + i%26)
	}
	req.MaxTokens = 64
	truncate := func(r *inference.Request) { r.Prompt = r.Prompt[32:] }
	cs := serve(t, pub.gen, req, truncate)
	solver := claimsItsLogits(t, pub, cs, pub.gen, req.Prompt[32:])
	verifier := honest(t, pub, cs)
	t0 := time.Now()
	if _, err := verifier.Claim(context.Background()); err != nil {
		t.Fatal(err)
	}
	partyTime := time.Since(t0)
	res := play(t, pub, cs, solver, verifier)
	if res.Cost.OpsRun != 1 {
		t.Fatalf("%v: %d operators", res.Verdict, res.Cost.OpsRun)
	}
	g := solver.Graph()
	l := g.Layout()
	var maxWork int64
	var maxOp string
	for _, o := range l.Ops {
		if o.Work > maxWork {
			maxWork, maxOp = o.Work, o.Name
		}
	}
	// The recomputation alone, timed.
	op := -1
	for k, o := range l.Ops {
		if o.Name == res.Cost.Op {
			op = k
		}
	}
	in := map[string]opgraph.Tensor{}
	for _, name := range l.Ops[op].Inputs {
		v, err := verifier.Open(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		in[name] = v
	}
	t0 = time.Now()
	if _, err := g.RunOp(op, in, 0); err != nil {
		t.Fatal(err)
	}
	opTime := time.Since(t0)
	text := append(append([]byte(nil), req.Prompt...), cs.Output[:len(cs.Output)-1]...)
	t0 = time.Now()
	if err := pub.gen.Positions(text, len(req.Prompt)-1, func(int, []int64, int) error { return nil }); err != nil {
		t.Fatal(err)
	}
	passTime := time.Since(t0)
	t.Logf("verdict %v: recomputed %s, Work %d of the pass's %d (%.2f%%), %v; largest operator %s, Work %d (%.2f%%); hashed %d bytes; the engine's teacher-forced pass %v; a party's claim (the reference pass and its hashes) %v",
		res.Verdict, res.Cost.Op, res.Cost.OpWork, res.Cost.PassWork, 100*float64(res.Cost.OpWork)/float64(res.Cost.PassWork), opTime,
		maxOp, maxWork, 100*float64(maxWork)/float64(res.Cost.PassWork), res.Cost.HashedBytes, passTime, partyTime)
}
