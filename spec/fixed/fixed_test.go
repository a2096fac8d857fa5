package fixed

import (
	"math"
	"testing"
)

func TestRoundShift(t *testing.T) {
	for _, c := range []struct {
		x    int64
		s    uint
		want int64
	}{
		{5, 0, 5}, {5, 1, 3}, {4, 1, 2}, {-5, 1, -2}, {-6, 1, -3}, {-7, 1, -3},
		{7, 2, 2}, {6, 2, 2}, {5, 2, 1}, {-6, 2, -1}, {-2, 2, 0}, {-3, 2, -1},
		{1 << 40, 40, 1}, {-(1 << 40), 40, -1},
	} {
		if got := RoundShift(c.x, c.s); got != c.want {
			t.Errorf("RoundShift(%d, %d) = %d, want %d", c.x, c.s, got, c.want)
		}
	}
}

func TestScale(t *testing.T) {
	for _, c := range []struct {
		x    int64
		k    int
		want int32
	}{
		{3, 2, 12}, {-3, 2, -12}, {1 << 30, 1, math.MaxInt32}, {-(1 << 30), 1, -(1 << 31)},
		{-(1 << 30), 2, math.MinInt32}, {1, 40, math.MaxInt32}, {-1, 63, math.MinInt32}, {0, 60, 0},
		{12, -2, 3}, {13, -2, 3}, {14, -2, 4}, {-14, -2, -3}, {1 << 61, -62, 1}, {1 << 60, -62, 0}, {5, -100, 0},
	} {
		if got := Scale(c.x, c.k); got != c.want {
			t.Errorf("Scale(%d, %d) = %d, want %d", c.x, c.k, got, c.want)
		}
	}
}

func TestExp2NegQ15(t *testing.T) {
	if Exp2NegQ15(0) != 32768 || Exp2NegQ15(1<<16) != 16384 || Exp2NegQ15(100<<16) != 0 {
		t.Fatal("exact points wrong")
	}
	prev := int64(1 << 20)
	for u := int64(0); u < 20<<16; u += 97 {
		got := Exp2NegQ15(u)
		want := 32768 * math.Exp2(-float64(u)/65536)
		if math.Abs(float64(got)-want) > 0.75 {
			t.Fatalf("Exp2NegQ15(%d) = %d, want %.2f", u, got, want)
		}
		if got > prev {
			t.Fatalf("Exp2NegQ15 not monotone at %d", u)
		}
		prev = got
	}
}

func TestLog2Q16(t *testing.T) {
	for x := uint64(1); x < 1<<40; x = x*3/2 + 1 {
		got := Log2Q16(x)
		want := 65536 * math.Log2(float64(x))
		if math.Abs(float64(got)-want) > 2.5 {
			t.Fatalf("Log2Q16(%d) = %d, want %.2f", x, got, want)
		}
	}
}

func TestIsqrt(t *testing.T) {
	for _, x := range []uint64{0, 1, 2, 3, 4, 15, 16, 17, 1<<52 - 1, 1 << 52, 6 << 52, math.MaxUint64} {
		r := Isqrt(x)
		if r*r > x || (r+1 <= math.MaxUint32 && (r+1)*(r+1) <= x) {
			t.Errorf("Isqrt(%d) = %d", x, r)
		}
	}
}

func FuzzIsqrt(f *testing.F) {
	f.Add(uint64(10))
	f.Fuzz(func(t *testing.T, x uint64) {
		r := Isqrt(x)
		if r > math.MaxUint32 || r*r > x || (r < math.MaxUint32 && (r+1)*(r+1) <= x) {
			t.Fatalf("Isqrt(%d) = %d", x, r)
		}
	})
}
