//go:build amd64 && !purego

#include "textflag.h"

// func maxAbs64AVX(x *int64, n int) uint64
// n is a positive multiple of 8.
TEXT ·maxAbs64AVX(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	CMPQ CX, $16
	JLT  tail8
loop16:
	VPABSQ (SI), Z2
	VPABSQ 64(SI), Z3
	VPMAXUQ Z2, Z0, Z0
	VPMAXUQ Z3, Z1, Z1
	ADDQ $128, SI
	SUBQ $16, CX
	CMPQ CX, $16
	JGE  loop16
tail8:
	CMPQ CX, $8
	JLT  reduce
	VPABSQ (SI), Z2
	VPMAXUQ Z2, Z0, Z0
reduce:
	VPMAXUQ Z1, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPMAXUQ Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXUQ X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPMAXUQ X1, X0, X0
	VMOVQ X0, AX
	MOVQ AX, ret+16(FP)
	VZEROUPPER
	RET

// func quantize16AVX(dst *int16, x *int64, n int, s uint64, lim int64)
// dst[i] = int16(clamp((x[i] + 2^(s-1)) >> s, -lim, lim)) for 1 ≤ s ≤ 62;
// n is a positive multiple of 8.
TEXT ·quantize16AVX(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ s+24(FP), DX
	MOVQ lim+32(FP), AX
	VPBROADCASTQ AX, Z5          // lim
	NEGQ AX
	VPBROADCASTQ AX, Z6          // -lim
	MOVQ DX, X7                  // shift count
	LEAQ -1(DX), BX
	MOVQ $1, AX
	SHLXQ BX, AX, AX             // 2^(s-1)
	VPBROADCASTQ AX, Z4          // half
loop:
	VPADDQ (SI), Z4, Z0
	VPSRAQ X7, Z0, Z0
	VPMINSQ Z5, Z0, Z0
	VPMAXSQ Z6, Z0, Z0
	VPMOVQW Z0, X1
	VMOVDQU X1, (DI)
	ADDQ $64, SI
	ADDQ $16, DI
	SUBQ $8, CX
	JNZ  loop
	VZEROUPPER
	RET

// func widen32AVX(c *int64, b *int32, n int, add bool)
// c[i] = int64(b[i]) (add: c[i] += int64(b[i])); n is a positive multiple of 8.
TEXT ·widen32AVX(SB), NOSPLIT, $0-25
	MOVQ c+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ n+16(FP), CX
	MOVBLZX add+24(FP), AX
	TESTQ AX, AX
	JNZ  addloop
setloop:
	VPMOVSXDQ (SI), Z0
	VMOVDQU64 Z0, (DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $8, CX
	JNZ  setloop
	VZEROUPPER
	RET
addloop:
	VPMOVSXDQ (SI), Z0
	VPADDQ (DI), Z0, Z0
	VMOVDQU64 Z0, (DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $8, CX
	JNZ  addloop
	VZEROUPPER
	RET
