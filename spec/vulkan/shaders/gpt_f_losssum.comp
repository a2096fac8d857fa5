#version 450
#extension GL_GOOGLE_include_directive : require
#define GPT_WG 256
#include "gpt_common.glsl"
// The step's loss: the sum of the rows' losses (one workgroup).
layout(local_size_x = GPT_WG) in;
layout(std430, binding = 0) readonly buffer L { int64_t partial[]; };
layout(std430, binding = 1) writeonly buffer S { int64_t total[]; };
layout(push_constant) uniform PC { int n; } pc;

void main() {
    int64_t s = 0;
    for (uint r = gl_LocalInvocationID.x; r < uint(pc.n); r += GPT_WG) s += partial[r];
    s = wgSum(s);
    if (gl_LocalInvocationID.x == 0u) total[0] = s;
}
