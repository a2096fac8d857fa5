#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require
// C = A·B on int32 with int32 sums (exact: SPEC.md §10 bounds every sum,
// hence every partial sum), in T×T tiles of 256 invocations (T = TILE,
// 64 or 128), each summing a (T/16)×(T/16) block — rows 64h + 4·ty + i,
// columns 64h' + 4·tx + j — from 128-bit reads of the shared tiles. A(m,k) = a[m·aRow + k·aCol] and B(k,n) =
// b[k·bRow + n·bCol], so transposed operands need no copy. Workgroup z
// sums the K range [z·kChunk, (z+1)·kChunk) (split-K).
//
// MODE_FWD: the forward layer (SPEC.md §8.3): C[m][n] =
//   Clamp(RoundShift(sum + RoundShift(bias[n], biasShift), shift), lo, hi)
// MODE_DX:  the input gradient (§8.5): C[m][n] = sum, zeroed where the
//   relu mask (the layer's input, > 0 where on) is off; the peak |C| goes
//   to peaks[peak] by atomicMax.
// MODE_DW:  the weight gradient (§8.5): C[m][n] += sum (atomicAdd when
//   the K range is split).
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer Ab { int a[]; };
layout(std430, binding = 1) readonly buffer Bb { int b[]; };
layout(std430, binding = 2) buffer Cb { int c[]; };
#if defined(MODE_FWD)
layout(std430, binding = 3) readonly buffer Xb { int bias[]; };
#elif defined(MODE_DX)
layout(std430, binding = 3) readonly buffer Xb { int mask[]; };
layout(std430, binding = 4) buffer Pb { int peaks[]; };
#endif
layout(push_constant) uniform PC {
    uint M; uint N; uint K; uint aRow; uint aCol; uint bRow; uint bCol; uint kChunk;
    int p0; int p1; int p2; int p3;
} pc;
// MODE_FWD: p0 shift, p1 lo, p2 hi, p3 biasShift.
// MODE_DX:  p0 relu (0/1), p1 peak index.
// MODE_DW:  p0 split (0/1: atomicAdd).

#if defined(DOT)
// The integer dot-product path (SPV_KHR_integer_dot_product, through
// GL_EXT_spirv_intrinsics: this glslc has no GL_EXT_integer_dot_product),
// taken only when every operand is in [-2^15, 2^15) (mlp.go checks the
// spec's bounds). Each operand splits as x = hi·2^8 + lo with
// hi = x >> 8 (arithmetic) in [-128, 127] and lo = x & 255 in [0, 255]:
// the identity holds for every int32 x, and hi fits a signed byte for
// x in [-2^15, 2^15). Then for four k at a time
//   Σ a·b = 2^16·Σ ah·bh + 2^8·(Σ ah·bl + Σ bh·al) + Σ al·bl,
// the four sums being packed 4×8-bit dot products (signed, mixed, mixed,
// unsigned: |each| ≤ 4·2^14 = 2^16, exact in int32). The shifts and adds
// wrap modulo 2^32 like the int32 path's multiply-adds, so acc stays
// congruent to the exact sum modulo 2^32; SPEC.md §10 bounds that sum
// (and every partial sum) by 2^31 − 1, so acc equals it bit for bit.
#extension GL_EXT_spirv_intrinsics : require
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4(uint a, uint b, spirv_literal int packed4x8);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4452)
int sudot4(uint signedA, uint unsignedB, spirv_literal int packed4x8);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4451)
uint udot4(uint a, uint b, spirv_literal int packed4x8);

// split4 packs the high bytes (x >> 8, signed) and low bytes (x & 255) of
// four operands.
void split4(ivec4 x, out uint hi, out uint lo) {
    uvec4 h = uvec4(x >> 8) & 255u, l = uvec4(x) & 255u;
    hi = h.x | (h.y << 8) | (h.z << 16) | (h.w << 24);
    lo = l.x | (l.y << 8) | (l.z << 16) | (l.w << 24);
}
#endif

#ifndef TILE
#define TILE 64
#endif
const uint G = TILE / 64;        // 4-wide row (column) groups per invocation
const uint TM = TILE, TN = TILE;
const uint TK = 1024 / TILE;     // 16 or 8: 1024 elements of each operand per K step
const uint R = 4 * G;            // rows (columns) per invocation
shared ivec4 As[TK][TM / 4u];
shared ivec4 Bs[TK][TN / 4u];

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint m0 = gl_WorkGroupID.y * TM, n0 = gl_WorkGroupID.x * TN;
    uint kBeg = gl_WorkGroupID.z * pc.kChunk;
    uint kEnd = min(pc.K, kBeg + pc.kChunk);
    int acc[R][R];
    [[unroll]] for (uint i = 0u; i < R; i++) [[unroll]] for (uint j = 0u; j < R; j++) acc[i][j] = 0;
    bool aK = pc.aCol == 1u; // A's k is contiguous: let neighbours load along k
    bool bN = pc.bCol == 1u;
    for (uint k0 = kBeg; k0 < kEnd; k0 += TK) {
        [[unroll]] for (uint r = 0u; r < 4u; r++) {
            uint e = tid + 256u * r;
            uint mm = aK ? e / TK : e % TM;
            uint kk = aK ? e % TK : e / TM;
            uint gm = m0 + mm, gk = k0 + kk;
            As[kk][mm >> 2][mm & 3u] = (gm < pc.M && gk < kEnd) ? a[gm * pc.aRow + gk * pc.aCol] : 0;
            uint nn = bN ? e % TN : e / TK;
            uint kb = bN ? e / TN : e % TK;
            uint gn = n0 + nn, gkb = k0 + kb;
            Bs[kb][nn >> 2][nn & 3u] = (gn < pc.N && gkb < kEnd) ? b[gkb * pc.bRow + gn * pc.bCol] : 0;
        }
        barrier();
#if defined(DOT)
        [[unroll]] for (uint kk = 0u; kk < TK; kk += 4u) {
            uint ah[R], al[R], bh[R], bl[R];
            [[unroll]] for (uint h = 0u; h < G; h++) {
                ivec4 a0 = As[kk][ty + 16u * h], a1 = As[kk + 1u][ty + 16u * h];
                ivec4 a2 = As[kk + 2u][ty + 16u * h], a3 = As[kk + 3u][ty + 16u * h];
                ivec4 b0 = Bs[kk][tx + 16u * h], b1 = Bs[kk + 1u][tx + 16u * h];
                ivec4 b2 = Bs[kk + 2u][tx + 16u * h], b3 = Bs[kk + 3u][tx + 16u * h];
                [[unroll]] for (uint q = 0u; q < 4u; q++) {
                    split4(ivec4(a0[q], a1[q], a2[q], a3[q]), ah[4u * h + q], al[4u * h + q]);
                    split4(ivec4(b0[q], b1[q], b2[q], b3[q]), bh[4u * h + q], bl[4u * h + q]);
                }
            }
            [[unroll]] for (uint i = 0u; i < R; i++)
                [[unroll]] for (uint j = 0u; j < R; j++)
                    acc[i][j] += (sdot4(ah[i], bh[j], 0) << 16) + ((sudot4(ah[i], bl[j], 0) + sudot4(bh[j], al[i], 0)) << 8) +
                                 int(udot4(al[i], bl[j], 0));
        }
#else
        [[unroll]] for (uint kk = 0u; kk < TK; kk++) {
            ivec4 av[G], bv[G];
            [[unroll]] for (uint h = 0u; h < G; h++) {
                av[h] = As[kk][ty + 16u * h];
                bv[h] = Bs[kk][tx + 16u * h];
            }
            [[unroll]] for (uint i = 0u; i < R; i++)
                [[unroll]] for (uint j = 0u; j < R; j++) acc[i][j] += av[i >> 2][i & 3u] * bv[j >> 2][j & 3u];
        }
#endif
        barrier();
    }
#if defined(MODE_DX)
    int peak = 0;
#endif
    [[unroll]] for (uint i = 0u; i < R; i++) {
        uint gm = m0 + 64u * (i >> 2) + 4u * ty + (i & 3u);
        if (gm >= pc.M) continue;
        [[unroll]] for (uint j = 0u; j < R; j++) {
            uint gn = n0 + 64u * (j >> 2) + 4u * tx + (j & 3u);
            if (gn >= pc.N) continue;
            uint idx = gm * pc.N + gn;
#if defined(MODE_FWD)
            int64_t z = int64_t(acc[i][j]) + roundShift(int64_t(bias[gn]), pc.p3);
            c[idx] = int(clamp64(roundShift(z, pc.p0), int64_t(pc.p1), int64_t(pc.p2)));
#elif defined(MODE_DX)
            int v = acc[i][j];
            if (pc.p0 != 0 && mask[idx] <= 0) v = 0;
            c[idx] = v;
            peak = max(peak, abs(v));
#else
            if (pc.p0 != 0) atomicAdd(c[idx], acc[i][j]);
            else c[idx] = acc[i][j];
#endif
        }
    }
#if defined(MODE_DX)
    if (peak > 0) atomicMax(peaks[pc.p1], peak);
#endif
}
