#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_common.glsl"
// embed (SPEC.md §20.11.1): x[r][i] = Sat32(RoundShift(tok_emb[token_r][i]
// + pos_emb[r mod T][i], 8)), one invocation per element.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Tok { int64_t tok[]; };
layout(std430, binding = 1) readonly buffer Pos { int64_t pos[]; };
layout(std430, binding = 2) readonly buffer Ids { int64_t tokens[]; };
layout(std430, binding = 3) writeonly buffer X { int64_t x[]; };
layout(push_constant) uniform PC { int n; int d; int t; } pc;

void main() {
    uint total = uint(pc.n) * uint(pc.d);
    for (uint e = gl_GlobalInvocationID.x; e < total; e += gl_NumWorkGroups.x * 256u) {
        uint r = e / uint(pc.d), i = e % uint(pc.d);
        uint v = uint(tokens[r]), j = r % uint(pc.t);
        x[e] = gSat32(gRoundShift(tok[v * uint(pc.d) + i] + pos[j * uint(pc.d) + i], MASTER_FRAC - ACT_FRAC));
    }
}
