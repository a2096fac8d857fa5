#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Softmax cross-entropy (SPEC.md §8.4), one invocation per sample: the
// logit gradient at exponent -grad_bits and the sample's loss in Q16
// (ref.LossGrad).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Lb { int logits[]; };
layout(std430, binding = 1) readonly buffer Yb { uint labels[]; };
layout(std430, binding = 2) writeonly buffer Gb { int g[]; };
layout(std430, binding = 3) writeonly buffer Ob { int64_t loss[]; };
layout(push_constant) uniform PC { uint batch; uint classes; int logitFrac; int gradBits; } pc;

void main() {
    uint b = gl_GlobalInvocationID.x;
    if (b >= pc.batch) return;
    uint row = b * pc.classes;
    uint y = labels[b];
    int64_t m = int64_t(logits[row]);
    for (uint c = 1u; c < pc.classes; c++) { int64_t v = int64_t(logits[row + c]); m = v > m ? v : m; }
    int64_t sum = 0;
    for (uint c = 0u; c < pc.classes; c++) {
        sum += exp2NegQ15(roundShift((m - int64_t(logits[row + c])) * LOG2E_Q16, pc.logitFrac));
    }
    int64_t gmax = (int64_t(1) << pc.gradBits) - 1;
    for (uint c = 0u; c < pc.classes; c++) {
        int64_t e = exp2NegQ15(roundShift((m - int64_t(logits[row + c])) * LOG2E_Q16, pc.logitFrac));
        int64_t prob = ((e << 15) + sum / 2) / sum;
        if (c == y) prob -= 32768L;
        g[row + c] = int(clamp64(roundShift(prob, 15 - pc.gradBits), -gmax, gmax));
    }
    int64_t l = roundShift(LN2_Q16 * (log2Q16(sum) - (15L << 16)), 16);
    int k = 16 - pc.logitFrac;
    int64_t d = m - int64_t(logits[row + y]);
    l += k >= 0 ? d << k : roundShift(d, -k);
    loss[b] = l;
}
