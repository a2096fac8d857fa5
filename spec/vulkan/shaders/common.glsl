// Integer primitives of SPEC.md §"Integer primitives" (spec/fixed) in
// GLSL, on int64 exactly as the Go code computes them.
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require

const int64_t I32MIN = -2147483648L;
const int64_t I32MAX = 2147483647L;

// roundShift is fixed.RoundShift: x / 2^s rounded to nearest, ties up.
int64_t roundShift(int64_t x, int s) {
    return s == 0 ? x : (x + (int64_t(1) << (s - 1))) >> s;
}

int64_t clamp64(int64_t x, int64_t lo, int64_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

int sat32(int64_t x) { return int(clamp64(x, I32MIN, I32MAX)); }

// bitLen64 is fixed.BitLen: the bits of |x| (0 for 0).
int bitLen64(int64_t x) {
    uint64_t u = x < 0 ? uint64_t(-x) : uint64_t(x);
    uint hi = uint(u >> 32);
    uint lo = uint(u & 0xffffffffUL);
    return hi != 0u ? 33 + findMSB(hi) : findMSB(lo) + 1;
}

// scale is fixed.Scale: x·2^k saturated to int32.
int scale(int64_t x, int k) {
    if (k >= 0) {
        if (x == 0) return 0;
        if (k >= 32 || bitLen64(x) + k > 62) return x > 0 ? 2147483647 : int(0x80000000u);
        return sat32(x << k);
    }
    return sat32(roundShift(x, min(-k, 62)));
}

// The polynomials of fixed.Exp2NegQ15 and fixed.Log2Q16 (coefficients in
// Q30), shared by the MLP's loss and the GPT's operators.
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

// shiftExp is the exponent of a gradient: base plus, for every layer in
// [from, to), the renormalising shift max(0, BitLen(peak) - gradBits)
// (SPEC.md §8.5) of that layer's input gradient.
#define GRAD_EXP(peaks, base, from, to, gradBits) \
    int e = base; \
    for (int k = from; k < to; k++) e += max(0, bitLen64(int64_t(peaks[k])) - gradBits);
