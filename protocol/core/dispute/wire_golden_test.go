package dispute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestMLPEncodingsArePinned: an MLP's evidence and batch openings encode
// exactly as before the GPT's were added (the SHA-256 of each seed game's
// evidence and of a batch opening on the tiny vector), so evidence
// recorded by an older referee still decodes and checks.
func TestMLPEncodingsArePinned(t *testing.T) {
	t.Parallel()
	_, seeds := seedEvidence(t)
	want := []string{
		"27cc3b2d49b094feab4e7bacaea188e50dd6d0c9b72cee84d0065ec5b64d44a8", // operator
		"e5764da960b5c7baedda378055c949626c4e2dde82ad74f5655dc94d53dea40e", // batch
		"ec14fe99db5b45a8c842325b926168763e7fa2402f2336155d97a07cf91b447b", // inconsistent claim
	}
	for i, b := range seeds {
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != want[i] {
			t.Errorf("evidence %d encodes to %x, pinned %s", i, h, want[i])
		}
	}
	s, ds := tinyJob(t)
	o, err := replayer(t, s, ds, s.Init(), nil).OpenBatch(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := o.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != "bd9c77b4fedd038f73aa99262aabfbd6dfacb8c330f05e4dde41e941f0806da6" {
		t.Errorf("batch opening encodes to %x", h)
	}
}
