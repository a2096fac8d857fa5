#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// The token embedding's gradient (SPEC.md §20.13.3): dtok[v][i] = Σ over
// the rows r with token_r = v of dx[r][i]. Workgroup (x, v) sums columns
// x·256 … x·256 + 255 of byte v: it reads the tokens 256 at a time, lists
// the rows of byte v in shared memory (in any order: the sums are of
// integers, so the order does not matter), then adds those rows.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Xb { int64_t dx[]; };
layout(std430, binding = 1) readonly buffer Tb { int64_t tokens[]; };
layout(std430, binding = 2) writeonly buffer Ob { int64_t dtok[]; };
layout(push_constant) uniform PC { uint rows; uint dim; } pc;

shared uint list[256];
shared uint count;

void main() {
    uint lid = gl_LocalInvocationID.x;
    int64_t v = int64_t(gl_WorkGroupID.y);
    uint i = gl_WorkGroupID.x * 256u + lid;
    int64_t acc = 0;
    for (uint r0 = 0u; r0 < pc.rows; r0 += 256u) {
        if (lid == 0u) count = 0u;
        barrier();
        uint r = r0 + lid;
        if (r < pc.rows && tokens[r] == v) list[atomicAdd(count, 1u)] = r;
        barrier();
        uint n = count;
        if (i < pc.dim) {
            for (uint j = 0u; j < n; j++) acc += dx[list[j] * pc.dim + i];
        }
        barrier(); // list and count are reused
    }
    if (i < pc.dim) dtok[uint(v) * pc.dim + i] = acc;
}
