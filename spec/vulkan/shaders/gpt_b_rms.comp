#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// RMSNorm backward (SPEC.md §20.13), a workgroup per row: q = Norm(d, ·,
// 24) (max |d| in S[S_MAX0]), c = Σ q·y, c̄ = RoundDiv(c, D·2^16),
// t = q − RoundShift(y·c̄, 16), dx = RoundDiv(t·2^(24 − s_r + s_min), ρ_r)
// (s_min in S[S_E0]); rows with ρ = 0 give 0. 64 invocations per row,
// whose partial sums of c meet in two eight-way steps (2 barriers).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Db { int64_t d[]; };
layout(std430, binding = 1) readonly buffer Yb { int64_t y[]; };
layout(std430, binding = 2) readonly buffer Rb { int64_t rho[]; };
layout(std430, binding = 3) readonly buffer Hb { int64_t sh[]; };
layout(std430, binding = 4) readonly buffer Sb { int64_t S[]; };
layout(std430, binding = 5) writeonly buffer Xb { int64_t dx[]; };
layout(push_constant) uniform PC { uint rows; uint dim; } pc;

shared int64_t red[64];
shared int64_t red8[8];

void main() {
    uint lid = gl_LocalInvocationID.x;
    int64_t m = S[S_MAX0];
    int64_t smin = S[S_E0];
    for (uint r = gl_WorkGroupID.x; r < pc.rows; r += gl_NumWorkGroups.x) {
        uint base = r * pc.dim;
        int64_t p = rho[r];
        if (p == 0) { // uniform in the workgroup
            for (uint i = lid; i < pc.dim; i += 64u) dx[base + i] = 0;
            continue;
        }
        int64_t c = 0;
        for (uint i = lid; i < pc.dim; i += 64u) c += normQ(d[base + i], m, 24) * y[base + i];
        red[lid] = c;
        barrier();
        if (lid < 8u) {
            int64_t t = 0;
            for (uint q = 0u; q < 8u; q++) t += red[8u * lid + q];
            red8[lid] = t;
        }
        barrier();
        c = 0;
        for (uint q = 0u; q < 8u; q++) c += red8[q];
        int64_t cbar = roundDiv(c, int64_t(pc.dim) << 16);
        barrier(); // red and red8 are reused by the next row
        int k = int(24L - sh[r] + smin);
        for (uint i = lid; i < pc.dim; i += 64u) {
            int64_t t = normQ(d[base + i], m, 24) - roundShiftE(y[base + i] * cbar, 16);
            dx[base + i] = roundDiv(t << k, p);
        }
    }
}
