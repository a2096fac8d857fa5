#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// The scalar exponent arithmetic of the backward operators (SPEC.md
// §20.9, §20.13), one invocation, on the scratch slots (gpt_bwd.glsl):
//   mode 0, linear.bwd: e_g = Norm's exponent of (g, S_IN0) with max S_MAX0;
//           OUT0 = e_g + E (E in S_E0), OUT1 = e_g + e_W (S_IN0 + 1)
//   mode 1, qkv.bwd: NormParts' exponent of the blocks (S_IN0 + k, max
//           S_MAX0 + k, k < 3) into S_EG; OUT0 = S_EG + E, OUT1 = S_EG + e_W (S_IN0 + 3)
//   mode 2, rmsnorm.bwd: OUT0 = Norm's exponent (to 24 bits) − s_min + 16 − 24 (s_min in S_E0)
//   mode 3, add: S_EG = OUT0 = the exponent E of Add of (S_IN0, max S_MAX0)
//           and (S_IN0 + 1, max S_MAX0 + 1)
//   mode 4, attn.bwd: S_EG = e_o (Norm of dO), OUT2 = −b + e_o
//   mode 5, attn.bwd: e_s = Norm's exponent of (e_o + EV − 2b, max S_MAX0 + 1);
//           OUT0 = e_s + EK, OUT1 = e_s + EQ
layout(local_size_x = 1) in;
layout(std430, binding = 0) buffer Sb { int64_t S[]; };
layout(push_constant) uniform PC { uint mode; uint bits; } pc;

void main() {
    int64_t b = int64_t(pc.bits);
    switch (pc.mode) {
    case 0u: {
        int64_t eg = normExp(S[S_IN0], S[S_MAX0], b);
        S[S_OUT0] = eg + S[S_E0];
        S[S_OUT0 + 1u] = eg + S[S_IN0 + 1u];
        break;
    }
    case 1u: {
        bool any = false;
        int64_t top = 0;
        for (uint k = 0u; k < 3u; k++) {
            int64_t m = S[S_MAX0 + k];
            if (m == 0) continue;
            int64_t t = S[S_IN0 + k] + int64_t(bitLen(m));
            if (!any || t > top) top = t;
            any = true;
        }
        int64_t e = any ? top - b : S[S_IN0];
        S[S_EG] = e;
        S[S_OUT0] = e + S[S_E0];
        S[S_OUT0 + 1u] = e + S[S_IN0 + 3u];
        break;
    }
    case 2u:
        S[S_OUT0] = normExp(S[S_IN0], S[S_MAX0], 24) - S[S_E0] + 16 - 24;
        break;
    case 3u: {
        int64_t mx = S[S_MAX0], mv = S[S_MAX0 + 1u];
        int64_t ex = S[S_IN0], ey = S[S_IN0 + 1u];
        int64_t e = ex;
        if (mx != 0 || mv != 0) {
            int64_t tx = ex + int64_t(bitLen(mx)), tv = ey + int64_t(bitLen(mv));
            int64_t top = mx == 0 ? tv : (mv == 0 ? tx : (tx > tv ? tx : tv));
            e = top - 24;
        }
        S[S_EG] = e;
        S[S_OUT0] = e;
        break;
    }
    case 4u: {
        int64_t eo = normExp(S[S_IN0], S[S_MAX0], b);
        S[S_EG] = eo;
        S[S_OUT0 + 2u] = eo - b;
        break;
    }
    case 5u: {
        int64_t es = normExp(S[S_EG] + S[S_E0 + 2u] - 2 * b, S[S_MAX0 + 1u], b);
        S[S_OUT0] = es + S[S_E0 + 1u];
        S[S_OUT0 + 1u] = es + S[S_E0];
        break;
    }
    }
}
