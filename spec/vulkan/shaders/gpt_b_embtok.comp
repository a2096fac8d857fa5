#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// The token embedding's gradient (SPEC.md §20.13.3): dtok[v][i] = Σ over
// the rows r with token_r = v of dx[r][i]. Workgroup (x, v) sums columns
// x·256 … x·256 + 255 of byte v, reading the tokens 256 at a time into
// shared memory. Integer sums: the order does not matter.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Xb { int64_t dx[]; };
layout(std430, binding = 1) readonly buffer Tb { int64_t tokens[]; };
layout(std430, binding = 2) writeonly buffer Ob { int64_t dtok[]; };
layout(push_constant) uniform PC { uint rows; uint dim; } pc;

shared int tok[256];

void main() {
    uint lid = gl_LocalInvocationID.x;
    int v = int(gl_WorkGroupID.y);
    uint i = gl_WorkGroupID.x * 256u + lid;
    int64_t acc = 0;
    for (uint r0 = 0u; r0 < pc.rows; r0 += 256u) {
        tok[lid] = r0 + lid < pc.rows ? int(tokens[r0 + lid]) : -1;
        barrier();
        if (i < pc.dim) {
            uint n = min(256u, pc.rows - r0);
            for (uint j = 0u; j < n; j++) {
                if (tok[j] == v) acc += dx[(r0 + j) * pc.dim + i];
            }
        }
        barrier();
    }
    if (i < pc.dim) dtok[uint(v) * pc.dim + i] = acc;
}
