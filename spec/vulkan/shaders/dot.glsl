// The integer dot-product path of the GPT products (gpt_f_gemm,
// gpt_b_gemm compiled with -DDOT: devices with shaderIntegerDotProduct).
// SPV_KHR_integer_dot_product through GL_EXT_spirv_intrinsics (this glslc
// has no GL_EXT_integer_dot_product). Each operand x, |x| ≤ 2^12 here
// (SPEC.md §20), splits as x = hi·2^8 + lo, hi = x >> 8 (arithmetic) in
// [-16, 16] and lo = x & 255 in [0, 255] — the identity holds for every
// int32 x, and hi fits a signed byte for x in [-2^15, 2^15). For four k
//   Σ a·b = 2^16·Σ ah·bh + 2^8·(Σ ah·bl + Σ bh·al) + Σ al·bl,
// the sums being packed 4×8-bit dot products (signed, mixed, mixed,
// unsigned); the shifts and adds wrap modulo 2^32, and the exact sum
// (|Σ| < 4·2^24) fits int32, so dotSplit returns it bit for bit: the
// int32 path's value.
#extension GL_EXT_spirv_intrinsics : require
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4(uint a, uint b, spirv_literal int packed4x8);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4452)
int sudot4(uint signedA, uint unsignedB, spirv_literal int packed4x8);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4451)
uint udot4(uint a, uint b, spirv_literal int packed4x8);

// split4 packs the high bytes (x >> 8, signed) and low bytes (x & 255)
// of four operands: (hi, lo).
uvec2 split4(ivec4 x) {
    uvec4 h = uvec4(x >> 8) & 255u, l = uvec4(x) & 255u;
    return uvec2(h.x | (h.y << 8) | (h.z << 16) | (h.w << 24), l.x | (l.y << 8) | (l.z << 16) | (l.w << 24));
}

// dotSplit is Σ a·b over four k from the split operands.
int dotSplit(uvec2 a, uvec2 b) {
    return (sdot4(a.x, b.x, 0) << 16) + ((sudot4(a.x, b.y, 0) + sudot4(b.x, a.y, 0)) << 8) + int(udot4(a.y, b.y, 0));
}
