//go:build !purego

#include "textflag.h"

// func applyAVX512(w, v, grad *int32, wq *int16, n int, c *vecConsts)
//
// For 8 elements at a time, in 64-bit lanes (every intermediate fits:
// |g·lr| < 2^62, |μn·v| < 2^61):
//   u  = clamp32((g·lr + rhalf) >> rshift)
//   vi = clamp32(((μn·v + μhalf) >> μshift) + u)
//   w  = clamp(w - vi, ±mmax)
//   wq = clamp((w + qhalf) >> qshift, ±wmax)
// n must be a multiple of 8.
TEXT ·applyAVX512(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), DI
	MOVQ v+8(FP), SI
	MOVQ grad+16(FP), DX
	MOVQ wq+24(FP), R8
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX

	VPBROADCASTQ 0(AX), Z16  // lr
	VPBROADCASTQ 8(AX), Z17  // rhalf
	VMOVQ 16(AX), X18        // rshift
	VPBROADCASTQ 24(AX), Z19 // μn
	VPBROADCASTQ 32(AX), Z20 // μhalf
	VMOVQ 40(AX), X21        // μshift
	VPBROADCASTQ 48(AX), Z22 // mmax
	VPBROADCASTQ 56(AX), Z23 // -mmax
	VPBROADCASTQ 64(AX), Z24 // qhalf
	VMOVQ 72(AX), X25        // qshift
	VPBROADCASTQ 80(AX), Z26 // wmax
	VPBROADCASTQ 88(AX), Z27 // -wmax
	VPBROADCASTQ 96(AX), Z28 // 2^31-1
	VPBROADCASTQ 104(AX), Z29 // -2^31

loop:
	TESTQ CX, CX
	JZ done

	VPMOVSXDQ (DX), Z0
	VPMULDQ Z16, Z0, Z0
	VPADDQ Z17, Z0, Z0
	VPSRAQ X18, Z0, Z0
	VPMAXSQ Z29, Z0, Z0
	VPMINSQ Z28, Z0, Z0

	VPMOVSXDQ (SI), Z1
	VPMULDQ Z19, Z1, Z1
	VPADDQ Z20, Z1, Z1
	VPSRAQ X21, Z1, Z1
	VPADDQ Z0, Z1, Z1
	VPMAXSQ Z29, Z1, Z1
	VPMINSQ Z28, Z1, Z1
	VPMOVQD Z1, (SI)

	VPMOVSXDQ (DI), Z2
	VPSUBQ Z1, Z2, Z2
	VPMAXSQ Z23, Z2, Z2
	VPMINSQ Z22, Z2, Z2
	VPMOVQD Z2, (DI)

	VPADDQ Z24, Z2, Z2
	VPSRAQ X25, Z2, Z2
	VPMAXSQ Z27, Z2, Z2
	VPMINSQ Z26, Z2, Z2
	VPMOVQW Z2, (R8)

	ADDQ $32, DX
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $16, R8
	SUBQ $8, CX
	JMP loop

done:
	VZEROUPPER
	RET
