#version 450
// The batch gathered on the device from the resident training set: the
// first layer's int32 activations from the samples' feature bytes (packed
// four to a word, sample after sample) and their labels, in the order of
// the sampler's indices (SPEC.md §8.2).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer D { uint data[]; };
layout(std430, binding = 1) readonly buffer L { uint labels[]; };
layout(std430, binding = 2) readonly buffer I { uint idx[]; };
layout(std430, binding = 3) writeonly buffer A { int a[]; };
layout(std430, binding = 4) writeonly buffer Y { uint y[]; };
layout(push_constant) uniform PC { uint n; uint features; } pc;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        uint b = i / pc.features;
        uint f = i - b * pc.features;
        uint s = idx[b];
        uint src = s * pc.features + f;
        a[i] = int((data[src >> 2] >> ((src & 3u) * 8u)) & 0xffu);
        if (f == 0u) y[b] = labels[s];
    }
}
