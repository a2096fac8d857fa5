#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_common.glsl"
// What follows a forward product c [n, cols] (in place), row r at exponent
// ea[r] + ew[0]:
//   mode 0 (up, §20.11.3):       c = Sat32(ShiftRound(c, ea[r] + ew + 16))
//   mode 1 (residual, §20.11.3): c = Sat32(x + Clamp(ShiftRound(c, ea[r] + ew + 16), ±2^33))
//   mode 2 (head, §20.11.4):     c[r] = ea[r] + ew for r < n (c is the exponents)
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer C { int64_t c[]; };
layout(std430, binding = 1) readonly buffer EA { int64_t ea[]; };
layout(std430, binding = 2) readonly buffer EW { int64_t ew[]; };
layout(std430, binding = 3) readonly buffer X { int64_t x[]; };
layout(push_constant) uniform PC { int n; int cols; int mode; } pc;

void main() {
    uint cols = uint(pc.cols);
    uint total = pc.mode == 2 ? uint(pc.n) : uint(pc.n) * cols;
    for (uint e = gl_GlobalInvocationID.x; e < total; e += gl_NumWorkGroups.x * 256u) {
        if (pc.mode == 2) {
            c[e] = ea[e] + ew[0];
            continue;
        }
        uint r = e / cols;
        int64_t v = gShiftRound(c[e], ea[r] + ew[0] + ACT_FRAC);
        if (pc.mode == 1) v = x[e] + gClamp(v, -(1L << 33), 1L << 33);
        c[e] = gSat32(v);
    }
}
