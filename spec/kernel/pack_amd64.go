//go:build amd64 && !purego

package kernel

//go:noescape
func interleave(dst *int16, even, odd *int16, n int)

//go:noescape
func transposePairs(dst *int16, ldd uintptr, src *int16, offsets *[16]int32, k2 int, mask uint16)

// interleaveRows sets dst[2j], dst[2j+1] = even[j], odd[j], with AVX-512
// for whole 32-element runs.
func interleaveRows(dst, even, odd []int16) {
	if v := len(even) &^ 31; hasVNNI && v > 0 {
		_, _ = dst[2*v-1], odd[v-1] // the assembly touches exactly these
		interleave(&dst[0], &even[0], &odd[0], v)
		dst, even, odd = dst[2*v:], even[v:], odd[v:]
	}
	interleaveGo(dst, even, odd)
}

// maxGatherStride bounds the source stride so that the gather offsets
// (up to 15 rows of stride lds int16s, in bytes) fit in int32.
const maxGatherStride = 1 << 26

// transposeBlock is transposeBlockGo with the whole pairs moved by masked
// 16-lane gathers: one per pair-row, which also zeroes the padding lanes.
func transposeBlock(d []int16, np int, s []int16, lds, rows, k int) {
	if !hasVNNI || k < 2 || lds > maxGatherStride {
		transposeBlockGo(d, np, s, lds, rows, k)
		return
	}
	k2 := k / 2
	// The gathers read pairs [0, k2) of rows [0, rows) and write
	// ColumnAlign pairs of pair-rows [0, k2): check both ends.
	_, _ = s[(rows-1)*lds+2*k2-1], d[(k2-1)*np*2+ColumnAlign*2-1]
	var offsets [16]int32
	for i := range rows {
		offsets[i] = int32(i * lds * 2)
	}
	transposePairs(&d[0], uintptr(np)*4, &s[0], &offsets, k2, uint16(1)<<rows-1)
	if k%2 == 1 {
		o := k2 * np * 2
		for i := range rows {
			d[o+2*i], d[o+2*i+1] = s[i*lds+k-1], 0
		}
		clear(d[o+rows*2 : o+ColumnAlign*2])
	}
}

// transposePacked is transposeGo with 16 pair-rows moved per gather: the
// pairs of pair-rows j0..j0+15 in column n are one dword each, 4·np bytes
// apart, and become 16 adjacent dwords of destination row n.
func transposePacked(dst []int16, ldd int, data []int16, np, k2, n0, n1 int) {
	if !hasVNNI || 16*np*4 > maxGatherStride {
		transposeGo(dst, ldd, data, np, k2, n0, n1)
		return
	}
	var offsets [16]int32
	for i := range offsets {
		offsets[i] = int32(i * np * 4)
	}
	cols := n1 - n0
	for j0 := 0; j0 < k2; j0 += 16 {
		rows := min(16, k2-j0)
		// The gathers read pairs [n0, n1) of pair-rows j0..j0+rows-1 and
		// store 32 int16s at column 2·j0 of rows [0, cols): check both ends.
		_, _ = data[(j0+rows-1)*np*2+n1*2-1], dst[(cols-1)*ldd+2*j0+31]
		transposePairs(&dst[2*j0], uintptr(ldd)*2, &data[j0*np*2+n0*2], &offsets, cols, uint16(1)<<rows-1)
	}
}
