#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// The products of a product's backward (SPEC.md §20.13): C = A·B with
// C [M, N] row-major, B [K, N] row-major at B[bOff ..], and A [M, K]
// row-major (aTrans 0) or stored transposed as [K, M] (aTrans 1, the dW
// product gqᵀ·x') at A[aOff ..]. Operands are quantised (|a|, |b| ≤ 2^12,
// so a·b fits int32) and every sum is exact in int64, so the tiling does
// not change a bit. A workgroup computes a 64×64 tile, 4×4 per invocation.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Ab { int64_t A[]; };
layout(std430, binding = 1) readonly buffer Bb { int64_t B[]; };
layout(std430, binding = 2) writeonly buffer Cb { int64_t C[]; };
layout(push_constant) uniform PC { uint M; uint N; uint K; uint aOff; uint bOff; uint aTrans; } pc;

shared int As[16][64]; // [k][m]
shared int Bs[16][64]; // [k][n]

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint tx = lid % 16u, ty = lid / 16u;
    uint tilesM = (pc.M + 63u) / 64u, tilesN = (pc.N + 63u) / 64u;
    for (uint tm = gl_WorkGroupID.y; tm < tilesM; tm += gl_NumWorkGroups.y) {
        for (uint tn = gl_WorkGroupID.x; tn < tilesN; tn += gl_NumWorkGroups.x) {
            uint m0 = tm * 64u, n0 = tn * 64u;
            int64_t acc[4][4];
            for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = 0;
            for (uint k0 = 0u; k0 < pc.K; k0 += 16u) {
                for (uint l = lid; l < 1024u; l += 256u) {
                    uint kk, mm;
                    if (pc.aTrans != 0u) { kk = l / 64u; mm = l % 64u; } else { kk = l % 16u; mm = l / 16u; }
                    uint m = m0 + mm, k = k0 + kk;
                    int v = 0;
                    if (m < pc.M && k < pc.K) v = int(A[pc.aOff + (pc.aTrans != 0u ? k * pc.M + m : m * pc.K + k)]);
                    As[kk][mm] = v;
                    uint nn = l % 64u;
                    kk = l / 64u;
                    uint n = n0 + nn;
                    k = k0 + kk;
                    Bs[kk][nn] = (n < pc.N && k < pc.K) ? int(B[pc.bOff + k * pc.N + n]) : 0;
                }
                barrier();
                for (uint kk = 0u; kk < 16u; kk++) {
                    int av[4], bv[4];
                    for (int a = 0; a < 4; a++) av[a] = As[kk][ty + 16u * uint(a)];
                    for (int b = 0; b < 4; b++) bv[b] = Bs[kk][tx + 16u * uint(b)];
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) acc[a][b] += int64_t(av[a] * bv[b]);
                }
                barrier();
            }
            for (int a = 0; a < 4; a++) {
                uint m = m0 + ty + 16u * uint(a);
                if (m >= pc.M) continue;
                for (int b = 0; b < 4; b++) {
                    uint n = n0 + tx + 16u * uint(b);
                    if (n < pc.N) C[m * pc.N + n] = acc[a][b];
                }
            }
        }
    }
}
