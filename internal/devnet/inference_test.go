package devnet

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRunInference: the inference devnet ends with every request
// answered (some streamed), receipts verified at the planner's rate, the
// cheating solver caught and slashed after the referee confirmed a
// verdict, a lying verifier's verdict refused and its bond slashed, the
// solver of another model serving it, money billed and the ledger
// balanced.
func TestRunInference(t *testing.T) {
	var out bytes.Buffer
	res, err := RunInference(context.Background(), InferenceConfig{Requests: 24, Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded != 24 || res.Streamed == 0 || res.ReceiptsVerified == 0 || !res.CheaterSlashed || res.FraudsFound == 0 ||
		res.BilledMicroUSD <= 0 || !res.LedgerBalanced || !res.OtherModelServed || res.SlashedMicroUSD <= 0 ||
		!res.LyingVerifierSlashed || res.VerdictsRefused != 1 || res.Disputes != res.FraudsFound+res.VerdictsRefused {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(out.String(), "banned: true") {
		t.Fatal("the timeline does not say the cheater was banned")
	}
}
