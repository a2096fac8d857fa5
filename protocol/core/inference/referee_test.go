package inference_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/inference"
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
