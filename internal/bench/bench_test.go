package bench

import "testing"

// TestMACs pins the work count the GMAC/s column divides by: forward and
// weight gradients of all three layers, input gradients of the last two.
func TestMACs(t *testing.T) {
	s, err := MLPSpec(64)
	if err != nil {
		t.Fatal(err)
	}
	fwd := int64(784*256+256*128+128*10) * 64
	inGrad := int64(256*128+128*10) * 64
	if got, want := MACs(s), 2*fwd+inGrad; got != want {
		t.Fatalf("MACs = %d, want %d", got, want)
	}
}
