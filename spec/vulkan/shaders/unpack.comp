#version 450
// The batch's feature bytes (packed four to a word, row-major) as int32
// activations of the first layer (SPEC.md §8.3: input v/256).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { uint x[]; };
layout(std430, binding = 1) writeonly buffer A { int a[]; };
layout(push_constant) uniform PC { uint n; } pc;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        a[i] = int((x[i >> 2] >> ((i & 3u) * 8u)) & 0xffu);
    }
}
