//go:build !purego

#include "textflag.h"

// func widenAVX512(dst *int16, src *uint8, n int)
// dst[i] = src[i] for i < n; n is a positive multiple of 32.
TEXT ·widenAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
widen:
	VPMOVZXBW (SI), Z0
	VMOVDQU16 Z0, (DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $32, CX
	JNZ widen
	VZEROUPPER
	RET

// func maskPeakAVX512(dx *int32, act *int16, n int, acc *[16]uint32)
// For i < n (a positive multiple of 16): dx[i] = 0 where act[i] ≤ 0; the
// absolute values of the dx[i] left are ORed into acc, lane i%16 (|-2^31|
// is 2^31 as a uint32).
TEXT ·maskPeakAVX512(SB), NOSPLIT, $0-32
	MOVQ dx+0(FP), DI
	MOVQ act+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ acc+24(FP), AX
	VPXORD Z31, Z31, Z31
	VMOVDQU32 (AX), Z4
mask:
	VPMOVSXWD (SI), Z1
	VPCMPGTD Z31, Z1, K1
	VMOVDQU32.Z (DI), K1, Z2
	VMOVDQU32 Z2, (DI)
	VPABSD Z2, Z3
	VPORD Z3, Z4, Z4
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JNZ mask
	VMOVDQU32 Z4, (AX)
	VZEROUPPER
	RET

// func peakAVX512(dx *int32, n int, acc *[16]uint32)
// ORs |dx[i]| into acc, lane i%16, for i < n (a positive multiple of 16).
TEXT ·peakAVX512(SB), NOSPLIT, $0-24
	MOVQ dx+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ acc+16(FP), AX
	VMOVDQU32 (AX), Z4
peak:
	VPABSD (DI), Z3
	VPORD Z3, Z4, Z4
	ADDQ $64, DI
	SUBQ $16, CX
	JNZ peak
	VMOVDQU32 Z4, (AX)
	VZEROUPPER
	RET

// func requantAVX512(dst *int16, src, bias *int32, n int, c *requantConsts)
// dst[i] = clamp((src[i] + bias[i] + half) >> shift, lo, hi) in 64-bit
// lanes, for i < n (a positive multiple of 8); bias may repeat a zero
// vector when zeroBias is set (then it is not advanced).
TEXT ·requantAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ bias+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ c+32(FP), AX
	VPBROADCASTQ 0(AX), Z16 // half
	VMOVQ 8(AX), X17        // shift
	VPBROADCASTQ 16(AX), Z18 // lo
	VPBROADCASTQ 24(AX), Z19 // hi
	MOVQ 32(AX), R8          // bias stride in bytes: 32, or 0 for a zero bias
requant:
	VPMOVSXDQ (SI), Z0
	VPMOVSXDQ (DX), Z1
	VPADDQ Z1, Z0, Z0
	VPADDQ Z16, Z0, Z0
	VPSRAQ X17, Z0, Z0
	VPMAXSQ Z18, Z0, Z0
	VPMINSQ Z19, Z0, Z0
	VPMOVQW Z0, (DI)
	ADDQ $32, SI
	ADDQ R8, DX
	ADDQ $16, DI
	SUBQ $8, CX
	JNZ requant
	VZEROUPPER
	RET
