#version 450
#extension GL_GOOGLE_include_directive : require
#define GPT_WG 64
#include "gpt_common.glsl"
// NormRow of SPEC.md §20.9/§20.11 on a block of columns: row r of the
// block, x[xOff + r·xStride + i] for i < width, to b bits from exponent
// e_r = e1[e1Off + r] (if e1Use) + e2[0] (if e2Use) + eConst; q [rows,
// width] and qe[r]. One workgroup per row.
layout(local_size_x = GPT_WG) in;
layout(std430, binding = 0) readonly buffer X { int64_t x[]; };
layout(std430, binding = 1) readonly buffer E1 { int64_t e1[]; };
layout(std430, binding = 2) readonly buffer E2 { int64_t e2[]; };
layout(std430, binding = 3) writeonly buffer Q { int64_t q[]; };
layout(std430, binding = 4) writeonly buffer QE { int64_t qe[]; };
layout(push_constant) uniform PC {
    int rows; int width; int xStride; int xOff; int bits;
    int e1Use; int e1Off; int e2Use; int eConst;
} pc;

void main() {
    uint li = gl_LocalInvocationID.x, w = uint(pc.width);
    for (uint r = gl_WorkGroupID.x; r < uint(pc.rows); r += gl_NumWorkGroups.x) {
        uint base = uint(pc.xOff) + r * uint(pc.xStride);
        uint64_t m = 0UL;
        for (uint i = li; i < w; i += GPT_WG) {
            uint64_t a = gUabs(x[base + i]);
            m = a > m ? a : m;
        }
        m = wgMaxU(m);
        int64_t s = m == 0UL ? 0 : normShiftU(m, pc.bits);
        for (uint i = li; i < w; i += GPT_WG) q[r * w + i] = m == 0UL ? 0 : normValue(x[base + i], s, pc.bits);
        if (li == 0u) {
            int64_t e = int64_t(pc.eConst);
            if (pc.e1Use != 0) e += e1[uint(pc.e1Off) + r];
            if (pc.e2Use != 0) e += e2[0];
            qe[r] = e + s;
        }
    }
}
