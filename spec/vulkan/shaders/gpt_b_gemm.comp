#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
#extension GL_EXT_control_flow_attributes : require
#if defined(DOT)
#include "dot.glsl"
#endif
// The products of a product's backward (SPEC.md §20.13): C = A·B with
// C [M, N] row-major, B [K, N] row-major at B[bOff ..], and A [M, K]
// row-major (aTrans 0, dx = gq·Wq) or stored transposed as [K, M]
// (aTrans 1, dW = gqᵀ·x') at A[aOff ..]. Operands are quantised
// (|a| < 2^12, |b| ≤ 2^12: a product is below 2^24, 16 of them below 2^28,
// so a chunk of 16 sums in int32) and every sum is exact in int64, so the
// tiling does not change a bit. A workgroup computes a 64×64 tile, an
// invocation the 4×4 outputs at rows ty + 16i and columns tx + 16j; the
// shared tiles hold, per row of A and per column of B, the chunk's 16
// values of k as four ivec4 (128-bit reads; the fifth pads against bank
// conflicts).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Ab { int64_t A[]; };
layout(std430, binding = 1) readonly buffer Bb { int64_t B[]; };
layout(std430, binding = 2) writeonly buffer Cb { int64_t C[]; };
layout(push_constant) uniform PC { uint M; uint N; uint K; uint aOff; uint bOff; uint aTrans; } pc;

shared ivec4 ta[64][5]; // [m][k / 4][k % 4]
shared ivec4 tb[64][5]; // [n][k / 4][k % 4]

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint tx = lid % 16u, ty = lid / 16u;
    uint tilesM = (pc.M + 63u) / 64u, tilesN = (pc.N + 63u) / 64u;
    // What this invocation loads: along k (row, quad) where k is
    // contiguous in memory, else along the rows (k, four rows).
    uint lr = lid / 4u, lq = lid % 4u;
    uint lk = lid / 16u, lm = (lid % 16u) * 4u;
    for (uint tm = gl_WorkGroupID.y; tm < tilesM; tm += gl_NumWorkGroups.y) {
        for (uint tn = gl_WorkGroupID.x; tn < tilesN; tn += gl_NumWorkGroups.x) {
            uint m0 = tm * 64u, n0 = tn * 64u;
            int64_t acc[4][4];
            [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] = 0;
            for (uint k0 = 0u; k0 < pc.K; k0 += 16u) {
                if (pc.aTrans == 0u) {
                    ivec4 v = ivec4(0);
                    uint m = m0 + lr;
                    [[unroll]] for (uint e = 0u; e < 4u; e++) {
                        uint k = k0 + 4u * lq + e;
                        if (m < pc.M && k < pc.K) v[e] = int(A[pc.aOff + m * pc.K + k]);
                    }
                    ta[lr][lq] = v;
                } else {
                    uint k = k0 + lk;
                    [[unroll]] for (uint e = 0u; e < 4u; e++) {
                        uint m = m0 + lm + e;
                        ta[lm + e][lk / 4u][lk % 4u] = (m < pc.M && k < pc.K) ? int(A[pc.aOff + k * pc.M + m]) : 0;
                    }
                }
                {
                    uint k = k0 + lk;
                    [[unroll]] for (uint e = 0u; e < 4u; e++) {
                        uint n = n0 + lm + e;
                        tb[lm + e][lk / 4u][lk % 4u] = (n < pc.N && k < pc.K) ? int(B[pc.bOff + k * pc.N + n]) : 0;
                    }
                }
                barrier();
                int part[4][4]; // 16 products: below 2^28
                [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) part[i][j] = 0;
#if defined(DOT)
                [[unroll]] for (uint q = 0u; q < 4u; q++) {
                    uvec2 av[4], bv[4];
                    [[unroll]] for (uint i = 0u; i < 4u; i++) {
                        av[i] = split4(ta[ty + 16u * i][q]);
                        bv[i] = split4(tb[tx + 16u * i][q]);
                    }
                    [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) {
                        part[i][j] += dotSplit(av[i], bv[j]);
                    }
                }
#else
                [[unroll]] for (uint q = 0u; q < 4u; q++) {
                    ivec4 av[4], bv[4];
                    [[unroll]] for (uint i = 0u; i < 4u; i++) {
                        av[i] = ta[ty + 16u * i][q];
                        bv[i] = tb[tx + 16u * i][q];
                    }
                    [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) {
                        ivec4 p = av[i] * bv[j];
                        part[i][j] += p.x + p.y + p.z + p.w;
                    }
                }
#endif
                [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] += int64_t(part[i][j]);
                barrier();
            }
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                uint m = m0 + ty + 16u * i;
                if (m >= pc.M) continue;
                [[unroll]] for (uint j = 0u; j < 4u; j++) {
                    uint n = n0 + tx + 16u * j;
                    if (n < pc.N) C[m * pc.N + n] = acc[i][j];
                }
            }
        }
    }
}
