package inference_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// TestReferee: the referee re-runs only the position a verifier blames.
// A made-up byte at k: Check blames k and the referee confirms it there;
// a claim about any other position of that output, or any position of an
// honest output, is refuted (nil); a fraud of no single byte (another
// model: position −1) is confirmed by the full pass; a claim past the
// output is refused as a bad request, not judged.
func TestReferee(t *testing.T) {
	t.Parallel()
	honest := newModel(t, config(2, 5))
	other := newModel(t, config(2, 6))
	k := key(7)
	for i := range 10 {
		req := request(honest, 2000+i)
		req.MaxTokens, req.Stop = 32-len(req.Prompt), nil
		res, rc := serve(t, honest, req, k)
		for pos := range res.Output {
			if err := inference.Referee(honest.g, honest.digest, req, res.Output, rc, pos); err != nil {
				t.Fatalf("request %d: an honest position %d judged %v", i, pos, err)
			}
		}
		// A made-up byte at position bad.
		bad := i % len(res.Output)
		lie := *res
		lie.Output = slices.Clone(res.Output)
		lie.Output[bad] ^= 0x40
		lrc, _ := inference.NewReceipt(req, &lie, k)
		err := inference.Check(honest.g, honest.digest, req, lie.Output, lrc)
		if got := inference.FraudPosition(err); got != bad {
			t.Fatalf("request %d: check blames position %d (%v), want %d", i, got, err, bad)
		}
		if err := inference.Referee(honest.g, honest.digest, req, lie.Output, lrc, bad); !errors.Is(err, inference.ErrFraud) || inference.FraudPosition(err) != bad {
			t.Fatalf("request %d: the referee at %d says %v, want fraud there", i, bad, err)
		}
		for pos := range bad { // before the made-up byte the output is the model's
			if err := inference.Referee(honest.g, honest.digest, req, lie.Output, lrc, pos); err != nil {
				t.Fatalf("request %d: position %d, before the lie, judged %v", i, pos, err)
			}
		}
		if err := inference.Referee(honest.g, honest.digest, req, lie.Output, lrc, len(lie.Output)); !errors.Is(err, inference.ErrRequest) {
			t.Fatalf("a position past the output: %v", err)
		}
		// Another model's output under the honest digest.
		oreq := *req
		oreq.Model = other.digest
		ores, err := inference.Generate(other.g, &oreq, nil)
		if err != nil {
			t.Fatal(err)
		}
		orc, _ := inference.NewReceipt(req, ores, k)
		ferr := inference.Check(honest.g, honest.digest, req, ores.Output, orc)
		if err := inference.Referee(honest.g, honest.digest, req, ores.Output, orc, inference.FraudPosition(ferr)); !errors.Is(err, inference.ErrFraud) {
			t.Fatalf("request %d: another model's output judged %v", i, err)
		}
	}
}

// BenchmarkRefereeVsCheck: what the referee's re-run of one blamed
// position costs against the verifier's full check, on the GPT example's
// model (T = 128), one thread, 16 prompt and 112 output bytes, the last
// position blamed (the longest prefix). Reports ms per check and per
// referee run. Measured: ~12 ms each — one row of logits costs what the
// whole teacher-forced pass does, because the engine runs the full
// window either way; the referee's point is judging the blamed byte, not
// speed.
func BenchmarkRefereeVsCheck(b *testing.B) {
	c, err := spec.ExampleGPT().GPT()
	if err != nil {
		b.Fatal(err)
	}
	g, err := gpt.NewGenerator(c, c.Init(), kernel.Best(), 1)
	if err != nil {
		b.Fatal(err)
	}
	req := &inference.Request{ID: "bench", Model: merkle.Digest{1}, Prompt: []byte("abcdefghijklmnop"), MaxTokens: 112, Seed: 1, Temperature: 52429}
	res, err := inference.Generate(g, req, nil)
	if err != nil {
		b.Fatal(err)
	}
	rc, err := inference.NewReceipt(req, res, key(3))
	if err != nil {
		b.Fatal(err)
	}
	var chk, ref time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := inference.Check(g, req.Model, req, res.Output, rc); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := inference.Referee(g, req.Model, req, res.Output, rc, len(res.Output)-1); err != nil {
			b.Fatal(err)
		}
		chk, ref = chk+t1.Sub(t0), ref+time.Since(t1)
	}
	b.ReportMetric(float64(chk.Microseconds())/1000/float64(b.N), "check-ms")
	b.ReportMetric(float64(ref.Microseconds())/1000/float64(b.N), "referee-ms")
}
