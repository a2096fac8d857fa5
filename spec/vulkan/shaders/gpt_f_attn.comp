#version 450
#extension GL_GOOGLE_include_directive : require
#define GPT_WG 64
#include "gpt_common.glsl"
// attn (SPEC.md §20.11.3), one workgroup per (window b, head h, row i):
// scores S_j = RoundShift(Q_i·K_j, eKmax − eK_j) for j ≤ i, the causal
// integer softmax P (Q(b), zero for j > i) and the head's columns of
// O_i = Σ_j RoundShift(P_j, eVmax − eV_j)·V_j. O and its row exponents
// go to scratch for gpt_f_normrow. Scratch: O [n·d], eO [n], then the
// copied exponents eQ, eK, eV [n each].
layout(local_size_x = GPT_WG) in;
layout(std430, binding = 0) readonly buffer Qb { int64_t q[]; };
layout(std430, binding = 1) readonly buffer Kb { int64_t k[]; };
layout(std430, binding = 2) readonly buffer Vb { int64_t v[]; };
layout(std430, binding = 3) buffer Pb { int64_t p[]; };
layout(std430, binding = 4) buffer Sb { int64_t scr[]; };
layout(push_constant) uniform PC { int batch; int heads; int t; int d; int dh; int bits; int kappa; } pc;

const int64_t I64MIN = -9223372036854775807L - 1L;

void main() {
    uint li = gl_LocalInvocationID.x;
    uint t = uint(pc.t), d = uint(pc.d), dh = uint(pc.dh), H = uint(pc.heads);
    uint n = uint(pc.batch) * t;
    uint oE = n * d, oQ = oE + n, oK = oQ + n, oV = oK + n;
    uint rowsAll = uint(pc.batch) * H * t;
    for (uint w = gl_WorkGroupID.x; w < rowsAll; w += gl_NumWorkGroups.x) {
        uint i = w % t, h = (w / t) % H, b = w / (t * H);
        uint ri = b * t + i, cols = h * dh;
        uint prow = ((b * H + h) * t + i) * t;
        int64_t ekm = I64MIN, evm = I64MIN;
        for (uint j = li; j <= i; j += GPT_WG) {
            ekm = max(ekm, scr[oK + b * t + j]);
            evm = max(evm, scr[oV + b * t + j]);
        }
        ekm = wgMaxI(ekm);
        evm = wgMaxI(evm);
        int64_t ei = scr[oQ + ri] + ekm;
        int64_t top = I64MIN;
        for (uint j = li; j <= i; j += GPT_WG) {
            uint rj = b * t + j;
            int64_t acc = 0;
            // b-bit operands: each product fits int32.
            for (uint c = cols; c < cols + dh; c++) acc += int64_t(int(q[ri * d + c]) * int(k[rj * d + c]));
            int64_t s = gRoundShift(acc, ekm - scr[oK + rj]);
            p[prow + j] = s;
            top = max(top, s);
        }
        top = wgMaxI(top);
        int64_t sum = 0;
        for (uint j = li; j <= i; j += GPT_WG) {
            int64_t e = exp2NegQ15(capExp(gShiftRound((top - p[prow + j]) * int64_t(pc.kappa), ei)));
            p[prow + j] = e;
            sum += e;
        }
        sum = wgSum(sum);
        for (uint j = li; j < t; j += GPT_WG) {
            p[prow + j] = j <= i ? ((p[prow + j] << pc.bits) + sum / 2) / sum : 0;
        }
        memoryBarrierBuffer();
        barrier();
        if (dh <= GPT_WG) {
            // G groups of dh lanes, group g summing rows j ≡ g (mod G);
            // then lane c adds the groups' partial sums of column c.
            uint G = GPT_WG / dh, g = li / dh, c = li % dh;
            int64_t o = 0;
            if (g < G) {
                for (uint j = g; j <= i; j += G) {
                    // P' ≤ 2^b and |V| < 2^b: the product fits int32.
                    o += int64_t(int(gRoundShift(p[prow + j], evm - scr[oV + b * t + j])) * int(v[(b * t + j) * d + cols + c]));
                }
            }
            gptRed[li] = uint64_t(o);
            barrier();
            if (li < dh) {
                uint64_t sum = 0UL;
                for (uint k = 0u; k < G; k++) sum += gptRed[k * dh + li];
                scr[ri * d + cols + li] = int64_t(sum);
            }
            barrier();
        } else {
            for (uint c = li; c < dh; c += GPT_WG) {
                int64_t o = 0;
                for (uint j = 0u; j <= i; j++) {
                    o += int64_t(int(gRoundShift(p[prow + j], evm - scr[oV + b * t + j])) * int(v[(b * t + j) * d + cols + c]));
                }
                scr[ri * d + cols + c] = o;
            }
        }
        if (h == 0u && li == 0u) scr[oE + ri] = -int64_t(pc.bits) + evm;
    }
}
