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

const int64_t EXP2[5] = int64_t[5](1073741824L, -744184767L, 257194104L, -57282819L, 7404729L);
const int64_t LOG2[7] = int64_t[7](0L, 1548909925L, -770982697L, 490869795L, -297793325L, 130430585L, -27694320L);
const int64_t LOG2E_Q16 = 94548L;
const int64_t LN2_Q16 = 45426L;

// exp2NegQ15 is fixed.Exp2NegQ15 for u ≥ 0.
int64_t exp2NegQ15(int64_t u) {
    int64_t k = u >> 16;
    int64_t f = u & 0xffffL;
    int64_t p = EXP2[4];
    for (int j = 3; j >= 0; j--) p = EXP2[j] + roundShift(p * f, 16);
    if (15 + k > 62) return 0;
    return roundShift(p, int(15 + k));
}

// log2Q16 is fixed.Log2Q16 for x ≥ 1.
int64_t log2Q16(int64_t x) {
    int n = bitLen64(x) - 1;
    int64_t m = n > 16 ? x >> (n - 16) : x << (16 - n);
    int64_t t = m - 65536L;
    int64_t q = LOG2[6];
    for (int j = 5; j >= 0; j--) q = LOG2[j] + roundShift(q * t, 16);
    return (int64_t(n) << 16) + roundShift(q, 14);
}

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
