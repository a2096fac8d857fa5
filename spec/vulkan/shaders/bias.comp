#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The bias gradient Σ_b g[b][o] (an exact int32 sum, SPEC.md §10) and SGD
// with momentum on the bias (§8.6): one workgroup per output.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Gb { int g[]; };
layout(std430, binding = 1) buffer Bb { int bias[]; };
layout(std430, binding = 2) buffer Vb { int v[]; };
layout(std430, binding = 3) readonly buffer Pb { int peaks[]; };
layout(std430, binding = 4) readonly buffer Sb { int64_t lr; };
layout(push_constant) uniform PC {
    uint batch; uint outs; int base; int from; int to; int gradBits; int lrShift;
    int muNum; int muShift; int masterMax;
} pc;

shared int partial[256];

void main() {
    GRAD_EXP(peaks, pc.base, pc.from, pc.to, pc.gradBits)
    int k = e - pc.lrShift;
    uint t = gl_LocalInvocationID.x;
    for (uint o = gl_WorkGroupID.x; o < pc.outs; o += gl_NumWorkGroups.x) {
        int s = 0;
        for (uint b = t; b < pc.batch; b += 256u) s += g[b * pc.outs + o];
        partial[t] = s;
        barrier();
        for (uint h = 128u; h > 0u; h >>= 1) {
            if (t < h) partial[t] += partial[t + h];
            barrier();
        }
        if (t == 0u) {
            int u = scale(int64_t(partial[0]) * lr, k);
            int vi = sat32(roundShift(int64_t(pc.muNum) * int64_t(v[o]), pc.muShift) + int64_t(u));
            int64_t mmax = int64_t(pc.masterMax);
            v[o] = vi;
            bias[o] = int(clamp64(int64_t(bias[o]) - int64_t(vi), -mmax, mmax));
        }
        barrier();
    }
}
