#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_common.glsl"
// C = A·Wᵀ (gptref's matmulT) of A [rows, k] and W [out, k], both
// quantised operands (|v| < 2^12: 16 products fit int32), summed in
// int64 (exact: SPEC.md §20.16 bounds every sum), in 16×16 output tiles
// through shared memory. Workgroup (x, y) computes column tile x of row
// tiles y, y + gl_NumWorkGroups.y, …
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer A { int64_t a[]; };
layout(std430, binding = 1) readonly buffer W { int64_t w[]; };
layout(std430, binding = 2) writeonly buffer C { int64_t c[]; };
layout(push_constant) uniform PC { int rows; int k; int outs; } pc;

shared int ta[16][17];
shared int tw[16][17];

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint rows = uint(pc.rows), k = uint(pc.k), outs = uint(pc.outs);
    uint col = gl_WorkGroupID.x * 16u + tx;
    uint rowTiles = (rows + 15u) / 16u;
    for (uint rt = gl_WorkGroupID.y; rt < rowTiles; rt += gl_NumWorkGroups.y) {
        uint row = rt * 16u + ty;
        int64_t acc = 0;
        for (uint k0 = 0u; k0 < k; k0 += 16u) {
            // ta[ty][tx] = A[row][k0 + tx]; tw[ty][tx] = W[col tile + ty][k0 + tx].
            uint ka = k0 + tx;
            ta[ty][tx] = (row < rows && ka < k) ? int(a[row * k + ka]) : 0;
            uint wr = gl_WorkGroupID.x * 16u + ty;
            tw[ty][tx] = (wr < outs && ka < k) ? int(w[wr * k + ka]) : 0;
            barrier();
            int part = 0; // 16 products of b-bit operands: < 2^28
            for (uint i = 0u; i < 16u; i++) part += ta[ty][i] * tw[tx][i];
            acc += int64_t(part);
            barrier();
        }
        if (row < rows && col < outs) c[row * outs + col] = acc;
    }
}
