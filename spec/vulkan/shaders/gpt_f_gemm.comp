#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_common.glsl"
#extension GL_EXT_control_flow_attributes : require
#if defined(DOT)
#include "dot.glsl"
#endif
// C = A·Wᵀ (gptref's matmulT) of A [rows, k] and W [outs, k], both
// quantised operands (|v| < 2^12: 16 products fit int32), summed in int64
// (exact: SPEC.md §20.16 bounds every sum) — order-free, so the tiling
// changes no bit. Workgroup (x, y) computes the 64×64 output tile (row
// tile y, y + gl_NumWorkGroups.y, …; column tile x) through shared
// memory, each invocation the 4×4 outputs at rows ty + 16i and columns
// tx + 16j, over k in chunks of 16.
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer A { int64_t a[]; };
layout(std430, binding = 1) readonly buffer W { int64_t w[]; };
layout(std430, binding = 2) writeonly buffer C { int64_t c[]; };
layout(push_constant) uniform PC { int rows; int k; int outs; } pc;

// Each tile row holds 16 values of k as four ivec4 (128-bit reads), the
// fifth pads the row against shared-memory bank conflicts.
shared ivec4 ta[64][5];
shared ivec4 tw[64][5];

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint li = ty * 16u + tx;
    uint rr = li / 4u, kq = li % 4u; // what this invocation loads
    uint rows = uint(pc.rows), k = uint(pc.k), outs = uint(pc.outs);
    uint c0 = gl_WorkGroupID.x * 64u;
    uint rowTiles = (rows + 63u) / 64u;
    for (uint rt = gl_WorkGroupID.y; rt < rowTiles; rt += gl_NumWorkGroups.y) {
        uint r0 = rt * 64u;
        uint ar = r0 + rr, wr = c0 + rr;
        int64_t acc[4][4];
        [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] = 0;
        for (uint k0 = 0u; k0 < k; k0 += 16u) {
            ivec4 va = ivec4(0), vw = ivec4(0);
            [[unroll]] for (uint e = 0u; e < 4u; e++) {
                uint ka = k0 + 4u * kq + e;
                if (ka < k) {
                    if (ar < rows) va[e] = int(a[ar * k + ka]);
                    if (wr < outs) vw[e] = int(w[wr * k + ka]);
                }
            }
            ta[rr][kq] = va;
            tw[rr][kq] = vw;
            barrier();
            int part[4][4]; // 16 products of b-bit operands: < 2^28
            [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) part[i][j] = 0;
#if defined(DOT)
            [[unroll]] for (uint q = 0u; q < 4u; q++) {
                uvec2 av[4], wv[4];
                [[unroll]] for (uint i = 0u; i < 4u; i++) {
                    av[i] = split4(ta[ty + 16u * i][q]);
                    wv[i] = split4(tw[tx + 16u * i][q]);
                }
                [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) {
                    part[i][j] += dotSplit(av[i], wv[j]);
                }
            }
#else
            [[unroll]] for (uint q = 0u; q < 4u; q++) {
                ivec4 av[4], wv[4];
                [[unroll]] for (uint i = 0u; i < 4u; i++) {
                    av[i] = ta[ty + 16u * i][q];
                    wv[i] = tw[tx + 16u * i][q];
                }
                [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) {
                    ivec4 p = av[i] * wv[j];
                    part[i][j] += p.x + p.y + p.z + p.w;
                }
            }
#endif
            [[unroll]] for (int i = 0; i < 4; i++) [[unroll]] for (int j = 0; j < 4; j++) acc[i][j] += int64_t(part[i][j]);
            barrier();
        }
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint row = r0 + ty + 16u * i;
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                uint col = c0 + tx + 16u * j;
                if (row < rows && col < outs) c[row * outs + col] = acc[i][j];
            }
        }
    }
}
