//go:build amd64 && !purego

#include "textflag.h"

// func interleave(dst *int16, even, odd *int16, n int)
// dst[2j], dst[2j+1] = even[j], odd[j] for j < n; n is a positive multiple
// of 32. Each int16 is zero-extended into a dword, odd ones shifted to the
// high half, and the two ORed: 16 pairs per 64-byte store.
TEXT ·interleave(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ even+8(FP), SI
	MOVQ odd+16(FP), DX
	MOVQ n+24(FP), CX
loop:
	VPMOVZXWD (SI), Z0
	VPMOVZXWD 32(SI), Z1
	VPMOVZXWD (DX), Z2
	VPMOVZXWD 32(DX), Z3
	VPSLLD $16, Z2, Z2
	VPSLLD $16, Z3, Z3
	VPORD Z2, Z0, Z0
	VPORD Z3, Z1, Z1
	VMOVDQU32 Z0, (DI)
	VMOVDQU32 Z1, 64(DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $128, DI
	SUBQ $32, CX
	JNZ loop
	VZEROUPPER
	RET

// func transposePairs(dst *int16, ldd uintptr, src *int16, offsets *[16]int32, k2 int, mask uint16)
// For j < k2, lane i: the dword at dst + j*ldd + 4i becomes the dword at
// src + offsets[i] + 4j (the pair src[n][2j], src[n][2j+1] of source row
// n = i) for lanes set in mask, and zero for the others. Masked-off lanes
// are neither read nor written past a zero: the store is a full vector.
TEXT ·transposePairs(SB), NOSPLIT, $0-42
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ offsets+24(FP), AX
	MOVQ k2+32(FP), CX
	KMOVW mask+40(FP), K2
	VMOVDQU32 (AX), Z8
	SUBQ $2, CX
	JLT tail
loop2:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	KMOVW K2, K1
	KMOVW K2, K3
	VPGATHERDD (SI)(Z8*1), K1, Z0
	VPGATHERDD 4(SI)(Z8*1), K3, Z1
	VMOVDQU32 Z0, (DI)
	VMOVDQU32 Z1, (DI)(DX*1)
	ADDQ $8, SI
	LEAQ (DI)(DX*2), DI
	SUBQ $2, CX
	JGE loop2
tail:
	ADDQ $2, CX
	JZ done
	VPXORD Z0, Z0, Z0
	KMOVW K2, K1
	VPGATHERDD (SI)(Z8*1), K1, Z0
	VMOVDQU32 Z0, (DI)
done:
	VZEROUPPER
	RET
