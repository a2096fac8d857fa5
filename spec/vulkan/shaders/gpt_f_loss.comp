#version 450
#extension GL_GOOGLE_include_directive : require
#define GPT_WG 256
#include "gpt_common.glsl"
// loss (SPEC.md §20.12), one workgroup per row, one invocation per byte
// of the vocabulary (256): the softmax gradient g (exponent −15) and the
// row's loss in Q16 nats (to partial[r]; gpt_f_losssum adds the rows).
layout(local_size_x = GPT_WG) in;
layout(std430, binding = 0) readonly buffer Z { int64_t z[]; };
layout(std430, binding = 1) readonly buffer EZ { int64_t ez[]; };
layout(std430, binding = 2) readonly buffer T { int64_t targets[]; };
layout(std430, binding = 3) writeonly buffer G { int64_t g[]; };
layout(std430, binding = 4) writeonly buffer GE { int64_t ge[]; };
layout(std430, binding = 5) writeonly buffer L { int64_t partial[]; };
layout(push_constant) uniform PC { int n; } pc;

void main() {
    uint c = gl_LocalInvocationID.x;
    if (gl_GlobalInvocationID.x == 0u) ge[0] = -PROB_BITS;
    for (uint r = gl_WorkGroupID.x; r < uint(pc.n); r += gl_NumWorkGroups.x) {
        int64_t v = z[r * 256u + c];
        int64_t top = wgMaxI(v);
        int64_t eps = exp2NegQ15(capExp(gShiftRound((top - v) * LOG2E_Q16, ez[r])));
        int64_t sum = wgSum(eps);
        uint y = uint(targets[r]);
        int64_t p = ((eps << PROB_BITS) + sum / 2) / sum;
        if (c == y) p -= 1L << PROB_BITS;
        g[r * 256u + c] = p;
        if (c == 0u) {
            partial[r] = gRoundShift(LN2_Q16 * (log2Q16(sum) - (PROB_BITS << 16)), 16) +
                gShiftRound(top - z[r * 256u + y], ez[r] + 16);
        }
    }
}
