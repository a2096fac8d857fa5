package inferdispute_test

import (
	"context"
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/inferdispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
)

// seedEvidence returns the encoding of a real game's evidence (an
// operator recomputed) and of a claim.
func seedEvidence(f *testing.F) (ev, claim []byte) {
	f.Helper()
	pub := newModel(f, config(1, 5))
	req := request(pub, 3)
	cs := serve(f, pub.gen, req, func(r *inference.Request) { r.Prompt = r.Prompt[1:] })
	res := play(f, pub, cs, claimsItsLogits(f, pub, cs, pub.gen, req.Prompt[1:]), honest(f, pub, cs))
	ev, err := res.Evidence.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	c, err := honest(f, pub, cs).Claim(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	claim, err = c.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	return ev, claim
}

// FuzzDecodeEvidence: evidence from outside decodes or fails with
// ErrMalformed, never panics, and what decodes re-encodes to itself.
func FuzzDecodeEvidence(f *testing.F) {
	ev, claim := seedEvidence(f)
	f.Add(ev)
	f.Add(ev[:len(ev)/2])
	f.Add(claim)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := inferdispute.DecodeEvidence(b)
		if err != nil {
			if !errors.Is(err, inferdispute.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if _, err := e.MarshalBinary(); err != nil {
			t.Fatalf("decoded evidence does not encode: %v", err)
		}
	})
}

// FuzzClaim: a claim from outside decodes or fails with ErrMalformed, and
// what decodes re-encodes to the same bytes.
func FuzzClaim(f *testing.F) {
	_, claim := seedEvidence(f)
	f.Add(claim)
	f.Add(claim[:40])
	f.Add([]byte("beluga/inference-dispute/claim/v1\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c inferdispute.Claim
		if err := c.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, inferdispute.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		out, err := c.MarshalBinary()
		if err != nil || string(out) != string(b) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
