package engine

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

// FuzzApply checks the vector update against the scalar one on arbitrary
// rows and constants, extremes included (saturating gradients, momenta and
// weights).
func FuzzApply(f *testing.F) {
	f.Add([]byte{1, 2, 3}, int64(838860), uint8(20), int64(29491), uint8(15), uint8(16), uint8(11))
	f.Add([]byte{0xff, 0x7f, 0, 0x80, 0xff, 0xff, 0xff, 0x7f}, int64(math.MaxInt32), uint8(1), int64(1<<30-1), uint8(30), uint8(1), uint8(15))
	f.Fuzz(func(t *testing.T, data []byte, lr int64, rshift uint8, mu int64, muShift uint8, qshift uint8, wbits uint8) {
		if !haveSIMD {
			t.Skip("no AVX-512")
		}
		lr = min(max(lr, 0), math.MaxInt32)
		rs := uint(rshift%62) + 1
		ms := uint(muShift % 31)
		mu = min(max(mu, 0), int64(1)<<ms-1)
		qs := uint(qshift%30) + 1
		wmax := int64(1)<<(wbits%15+1) - 1
		mmax := min(wmax<<qs, 1<<30)
		c := updateConsts{lr: lr, muNum: mu, muShift: ms, muHalf: int64(1) << ms >> 1, mmax: mmax,
			k: -int(rs), rshift: rs, rhalf: int64(1) << rs >> 1, qshift: qs, qhalf: int64(1) << qs >> 1, wmax: wmax}
		n := len(data) / 12
		w, v, g := make([]int32, n), make([]int32, n), make([]int32, n)
		for i := range n {
			w[i] = int32(int64(int32(binary.LittleEndian.Uint32(data[12*i:]))) % (mmax + 1))
			v[i] = int32(binary.LittleEndian.Uint32(data[12*i+4:]))
			g[i] = int32(binary.LittleEndian.Uint32(data[12*i+8:]))
		}
		w2, v2, wq, wq2 := slices.Clone(w), slices.Clone(v), make([]int16, n), make([]int16, n)
		c.apply(w, v, g, wq, false)
		c.apply(w2, v2, g, wq2, true)
		if !slices.Equal(w, w2) || !slices.Equal(v, v2) || !slices.Equal(wq, wq2) {
			t.Fatalf("vector update differs:\nw %v\n  %v\nv %v\n  %v\nwq %v\n   %v", w, w2, v, v2, wq, wq2)
		}
	})
}
