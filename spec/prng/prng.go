// Package prng is the job's only source of randomness: keyed SplitMix64
// streams with random access, derived from the job seed by SHA-256.
//
// Every random choice a job makes (weight init, batch order, synthetic data)
// reads a Stream whose key is derived from the seed and a purpose label, so a
// verifier can regenerate any single value without replaying the others.
// SPEC.md §"Randomness" is the normative description; this code follows it.
package prng

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// golden is SplitMix64's increment, ⌊2^64/φ⌋ rounded to odd.
const golden = 0x9E3779B97F4A7C15

// Stream is a SplitMix64 sequence: its i-th output (0-based) is
// Mix(key + (i+1)·golden) mod 2^64. The zero value is a valid stream with key 0.
type Stream struct {
	key uint64
}

// New returns the stream with the given key.
func New(key uint64) Stream { return Stream{key: key} }

// Derive returns the stream for one purpose of a job: its key is the first
// eight bytes, little-endian, of
// SHA-256("beluga/prng/v1" || 0x00 || purpose || 0x00 || le64(seed) || le64(a) || le64(b)).
func Derive(seed uint64, purpose string, a, b uint64) Stream {
	h := sha256.New()
	h.Write([]byte("beluga/prng/v1"))
	h.Write([]byte{0})
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	var buf [24]byte
	binary.LittleEndian.PutUint64(buf[0:], seed)
	binary.LittleEndian.PutUint64(buf[8:], a)
	binary.LittleEndian.PutUint64(buf[16:], b)
	h.Write(buf[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return Stream{key: binary.LittleEndian.Uint64(sum[:8])}
}

// At returns the i-th output of the stream.
func (s Stream) At(i uint64) uint64 {
	return Mix(s.key + (i+1)*golden)
}

// Mix is SplitMix64's output function (a bijection on uint64).
func Mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Below maps a 64-bit random value r to [0, n) as ⌊r·n / 2^64⌋ (Lemire's
// multiply-shift, without rejection: the bias is below n/2^64).
func Below(r, n uint64) uint64 {
	hi, _ := bits.Mul64(r, n)
	return hi
}

// Permutation fills perm with a permutation of 0..len(perm)-1 by the
// Fisher–Yates shuffle: starting from the identity, for i = n-1 down to 1,
// swap perm[i] with perm[Below(s.At(n-1-i), i+1)].
func (s Stream) Permutation(perm []uint32) {
	n := len(perm)
	for i := range perm {
		perm[i] = uint32(i)
	}
	for i := n - 1; i >= 1; i-- {
		j := Below(s.At(uint64(n-1-i)), uint64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
}
