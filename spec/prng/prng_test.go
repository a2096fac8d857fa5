package prng

import "testing"

// SplitMix64 seeded with 1234567 (Vigna's reference implementation) yields
// these first outputs; At(i) must reproduce them.
func TestSplitMix64Reference(t *testing.T) {
	want := []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821}
	s := New(1234567)
	for i, w := range want {
		if got := s.At(uint64(i)); got != w {
			t.Errorf("At(%d) = %d, want %d", i, got, w)
		}
	}
}

func TestPermutationIsPermutation(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 10, 1000} {
		perm := make([]uint32, n)
		Derive(42, "batch", 3, 0).Permutation(perm)
		seen := make([]bool, n)
		for _, p := range perm {
			if int(p) >= n || seen[p] {
				t.Fatalf("n=%d: not a permutation: %v", n, perm)
			}
			seen[p] = true
		}
	}
}

func TestDeriveSeparatesPurposes(t *testing.T) {
	keys := map[uint64]string{}
	for _, c := range []struct {
		purpose string
		a, b    uint64
	}{{"init", 0, 0}, {"init", 1, 0}, {"init", 0, 1}, {"batch", 0, 0}, {"batc", 0, 0}} {
		k := Derive(7, c.purpose, c.a, c.b).key
		if prev, dup := keys[k]; dup {
			t.Fatalf("key collision between %v and %s", c, prev)
		}
		keys[k] = c.purpose
	}
}

func TestBelow(t *testing.T) {
	if Below(^uint64(0), 10) != 9 || Below(0, 10) != 0 || Below(1<<63, 10) != 5 {
		t.Fatal("Below is not floor(r*n/2^64)")
	}
}
