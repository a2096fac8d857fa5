package challenge

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/prng"
)

// Domain is the domain-separation prefix of the challenge seed.
const Domain = "beluga/challenge/v1"

// MaxBeaconBytes bounds the coordinator's beacon. 32 bytes from a CSPRNG
// is the recommended beacon; longer ones let a beacon carry, say, a
// drand round and its signature.
const MaxBeaconBytes = 256

// MaxCount bounds the number of segments one challenge samples, so that
// Sample's memory is bounded whatever the trace length.
const MaxCount = 1 << 20

// CheckBeacon reports whether beacon is a valid beacon: 1 to
// MaxBeaconBytes bytes. Parties reject any other beacon before computing
// a seed from it.
func CheckBeacon(beacon []byte) error {
	if len(beacon) == 0 || len(beacon) > MaxBeaconBytes {
		return fmt.Errorf("%w: got %d bytes", ErrBeacon, len(beacon))
	}
	return nil
}

// Seed returns the challenge seed
//
//	SHA-256("beluga/challenge/v1" || 0x00 || job || traceRoot || le32(len(beacon)) || beacon).
//
// The length prefix keeps the encoding injective. Seed is total so that it
// can be called on checked input without an error path; a beacon must pass
// CheckBeacon first (the normative seed is only defined for 1 to
// MaxBeaconBytes bytes).
func Seed(job spec.JobID, traceRoot merkle.Digest, beacon []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(Domain))
	h.Write([]byte{0})
	h.Write(job[:])
	h.Write(traceRoot[:])
	h.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(beacon))))
	h.Write(beacon)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Stream returns the SplitMix64 stream a seed drives: its key is the first
// eight bytes of seed, little-endian.
func Stream(seed [32]byte) prng.Stream {
	return prng.New(binary.LittleEndian.Uint64(seed[:8]))
}

// Sample returns count distinct segment indices in [0, segments), sorted
// ascending, drawn by Floyd's algorithm from the stream S = Stream(seed):
//
//	chosen = {}
//	for i = 0 … count−1:
//	    j = segments − count + i
//	    t = Below(S.At(i), j + 1)     // uniform in [0, j]
//	    if t ∈ chosen: add j to chosen
//	    else:          add t to chosen
//
// After iteration i, chosen is a uniformly random (i+1)-subset of [0, j],
// so the result is a uniformly random count-subset of [0, segments). Time
// and memory are O(count), whatever segments is. Sample fails with
// ErrCount when segments < 0, count < 0, count > segments or
// count > MaxCount; count = 0 gives an empty, non-nil slice.
func Sample(seed [32]byte, segments, count int) ([]int, error) {
	switch {
	case segments < 0:
		return nil, fmt.Errorf("%w: %d segments", ErrCount, segments)
	case count < 0 || count > MaxCount:
		return nil, fmt.Errorf("%w: %d samples (at most %d)", ErrCount, count, MaxCount)
	case count > segments:
		return nil, fmt.Errorf("%w: %d samples of %d segments", ErrCount, count, segments)
	}
	s := Stream(seed)
	chosen := make(map[int]struct{}, count)
	out := make([]int, 0, count)
	for i := range count {
		j := segments - count + i
		t := int(prng.Below(s.At(uint64(i)), uint64(j)+1))
		if _, dup := chosen[t]; dup {
			t = j // j > every index chosen so far: never a duplicate
		}
		chosen[t] = struct{}{}
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}
