//go:build amd64 && !purego

#include "textflag.h"

// func siluAVX(u32 *int32, sig *uint16, hs *int64, up *int64, n int, c *siluConsts)
//
// For 8 elements at a time, in 64-bit lanes: the SiLU forward of
// forward.go's MLP for a row whose input shift s = c.shift is 1…62:
//   u   = clamp32((up + 2^(s−1)) >> s)
//   a   = |u|, z = min((a·log2e + 2^15) >> 16, 2^32), k = z >> 16
//   e   = (exp2Poly[z & 0xFFFF] + 2^(14+min(k,47))) >> (15 + min(k,47)), 0 when k > 47
//   s   = sigmoidRecip[e]; σ = s, or 2^15 − s when u < 0
//   hs  = (u·σ + 2^14) >> 15
// storing u, σ and hs. n is a positive multiple of 8.
TEXT ·siluAVX(SB), NOSPLIT, $0-48
	MOVQ u32+0(FP), DI
	MOVQ sig+8(FP), R9
	MOVQ hs+16(FP), R10
	MOVQ up+24(FP), SI
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX

	VPBROADCASTQ 0(AX), Z16  // 2^(s−1)
	VMOVQ 8(AX), X17         // s
	MOVQ 16(AX), R11         // &exp2Poly[0]
	MOVQ 24(AX), R12         // &sigmoidRecip[0]
	VPBROADCASTQ 32(AX), Z18 // 2^31 − 1
	VPBROADCASTQ 40(AX), Z19 // −2^31
	VPBROADCASTQ 48(AX), Z20 // log2e (94548)
	VPBROADCASTQ 56(AX), Z21 // 2^15
	VPBROADCASTQ 64(AX), Z22 // 2^32
	VPBROADCASTQ 72(AX), Z23 // 0xFFFF
	VPBROADCASTQ 80(AX), Z24 // 47
	VPBROADCASTQ 88(AX), Z25 // 14
	VPBROADCASTQ 96(AX), Z26 // 1
	VPBROADCASTQ 104(AX), Z27 // 2^14
	VPXORQ Z31, Z31, Z31

loop:
	// u
	VMOVDQU64 (SI), Z0
	VPADDQ Z16, Z0, Z0
	VPSRAQ X17, Z0, Z0
	VPMINSQ Z18, Z0, Z0
	VPMAXSQ Z19, Z0, Z0
	// z, k, the table index
	VPABSQ Z0, Z1
	VPMULLQ Z20, Z1, Z1
	VPADDQ Z21, Z1, Z1
	VPSRAQ $16, Z1, Z1
	VPMINSQ Z22, Z1, Z1
	VPSRAQ $16, Z1, Z2   // k
	VPANDQ Z23, Z1, Z3   // z & 0xFFFF
	// p = exp2Poly[z & 0xFFFF]
	KXNORB K1, K1, K1
	VPXORD Y4, Y4, Y4
	VPGATHERQD (R11)(Z3*4), K1, Y4
	VPMOVSXDQ Y4, Z4
	// e = (p + 2^(14+kk)) >> (15+kk), kk = min(k, 47); 0 when k > 47
	VPMINSQ Z24, Z2, Z5  // kk
	VPADDQ Z25, Z5, Z6   // 14 + kk
	VPSLLVQ Z6, Z26, Z7  // 2^(14+kk)
	VPADDQ Z7, Z4, Z4
	VPADDQ Z26, Z6, Z6   // 15 + kk
	VPSRAVQ Z6, Z4, Z4
	VPCMPQ $2, Z24, Z2, K2 // k <= 47
	VMOVDQA64.Z Z4, K2, Z4
	// s = sigmoidRecip[e]
	KXNORB K3, K3, K3
	VPXORD Y5, Y5, Y5
	VPGATHERQD (R12)(Z4*4), K3, Y5
	VPMOVSXDQ Y5, Z5
	// σ = u < 0 ? 2^15 − s : s
	VPCMPQ $1, Z31, Z0, K4 // u < 0
	VPSUBQ Z5, Z21, K4, Z5
	// hs = (u·σ + 2^14) >> 15
	VPMULLQ Z5, Z0, Z6
	VPADDQ Z27, Z6, Z6
	VPSRAQ $15, Z6, Z6
	VMOVDQU64 Z6, (R10)
	VPMOVQD Z0, (DI)
	VPMOVQW Z5, (R9)

	ADDQ $64, SI
	ADDQ $64, R10
	ADDQ $32, DI
	ADDQ $16, R9
	SUBQ $8, CX
	JNZ  loop
	VZEROUPPER
	RET
