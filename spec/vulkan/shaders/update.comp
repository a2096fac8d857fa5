#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// SGD with momentum on one weight tensor (SPEC.md §8.6), then its forward
// weights (§8.3); the gradient sums are zeroed for the next step.
//   u = Scale(dw·lr, k - lr_shift), v = Sat32(RoundShift(μ·v, μshift) + u),
//   w = Clamp(w - v, ±M), wq = Clamp(RoundShift(w, qshift), ±W)
// where the gradient's exponent k comes from the peaks of later layers.
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Wb { int w[]; };
layout(std430, binding = 1) buffer Vb { int v[]; };
layout(std430, binding = 2) writeonly buffer Qb { int wq[]; };
layout(std430, binding = 3) buffer Gb { int dw[]; };
layout(std430, binding = 4) readonly buffer Pb { int peaks[]; };
layout(std430, binding = 5) readonly buffer Sb { int64_t lr; };
layout(push_constant) uniform PC {
    uint n; int base; int from; int to; int gradBits; int lrShift;
    int muNum; int muShift; int masterMax; int qshift; int wmax;
} pc;

void main() {
    GRAD_EXP(peaks, pc.base, pc.from, pc.to, pc.gradBits)
    int k = e - pc.lrShift;
    int64_t rate = lr;
    int64_t mmax = int64_t(pc.masterMax);
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        int u = scale(int64_t(dw[i]) * rate, k);
        int vi = sat32(roundShift(int64_t(pc.muNum) * int64_t(v[i]), pc.muShift) + int64_t(u));
        int64_t wi = clamp64(int64_t(w[i]) - int64_t(vi), -mmax, mmax);
        v[i] = vi;
        w[i] = int(wi);
        wq[i] = int(clamp64(roundShift(wi, pc.qshift), -pc.wmax, pc.wmax));
        dw[i] = 0;
    }
}
