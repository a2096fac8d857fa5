package dispute

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Opening is the largest answer a party can owe in a dispute over a job:
// the encoded size, in bytes, of the largest tensor opening (MarshalTensor
// of any value in the tensor's range) and of the batch opening.
type Opening struct {
	// Tensor names the step graph's tensor with the largest worst-case
	// opening, TensorBytes its size.
	Tensor      string
	TensorBytes int64
	// BatchBytes bounds a step's batch opening (an MLP's samples with
	// their proofs, a GPT's windows with their chunks and proofs).
	BatchBytes int64
}

// Largest returns the larger of the two sizes.
func (o Opening) Largest() int64 { return max(o.TensorBytes, o.BatchBytes) }

// MaxOpening computes the largest openings a dispute over s can ask for,
// from the step graph's shapes and value ranges alone (no tensor is
// allocated). A transport that carries at most n bytes per answer can
// settle every dispute over s only if o.Largest() ≤ n: a job beyond that
// would make an honest party unable to answer and so lose.
func MaxOpening(s *spec.Spec) (Opening, error) {
	l, err := graphOf(s)
	if err != nil {
		return Opening{}, err
	}
	var o Opening
	for _, info := range l.tensors {
		n := tensorOpeningBytes(info.Shape, max(varintLen(info.Min), varintLen(info.Max)))
		if n > o.TensorBytes {
			o.Tensor, o.TensorBytes = info.Name, n
		}
	}
	o.BatchBytes = batchOpeningBytes(s)
	return o, nil
}

// CheckFits refuses a job whose openings (MaxOpening) can exceed limit
// bytes, in words a client can act on.
func CheckFits(s *spec.Spec, limit int64) error {
	o, err := MaxOpening(s)
	if err != nil {
		return err
	}
	if o.TensorBytes > limit {
		return fmt.Errorf("a dispute over this job could not be settled: opening the step's tensor %s can take %d MiB, more than the %d MiB a dispute answer carries; use a smaller model or batch",
			o.Tensor, mib(o.TensorBytes), limit>>20)
	}
	if o.BatchBytes > limit {
		return fmt.Errorf("a dispute over this job could not be settled: opening a step's batch with its proofs can take %d MiB, more than the %d MiB a dispute answer carries; use a smaller batch",
			mib(o.BatchBytes), limit>>20)
	}
	return nil
}

// mib is n bytes in MiB, rounded up.
func mib(n int64) int64 { return n>>20 + min(1, n&(1<<20-1)) }

// varintLen is the length of binary.PutVarint(v); over a range it is
// largest at one of the ends.
func varintLen(v int64) int64 {
	var b [binary.MaxVarintLen64]byte
	return int64(binary.PutVarint(b[:], v))
}

func uvarintLen(v uint64) int64 {
	var b [binary.MaxVarintLen64]byte
	return int64(binary.PutUvarint(b[:], v))
}

// tensorOpeningBytes is MarshalTensor's size for shape with values of at
// most per bytes each, saturating at math.MaxInt64.
func tensorOpeningBytes(shape []int, per int64) int64 {
	n := int64(len(tensorTag)) + uvarintLen(uint64(len(shape)))
	elems := uint64(1)
	for _, d := range shape {
		n += uvarintLen(uint64(d))
		hi, lo := bits.Mul64(elems, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return math.MaxInt64
		}
		elems = lo
	}
	return satAdd(n, satMul(int64(elems), per))
}

// batchOpeningBytes bounds the encoding of a step's batch opening (wire.go:
// batch and windows).
func batchOpeningBytes(s *spec.Spec) int64 {
	proof := func(leaves int64) int64 {
		depth := int64(bits.Len64(uint64(max(leaves-1, 0))))
		return 2*uvarintLen(uint64(leaves)) + uvarintLen(uint64(depth)) + depth*int64(len(merkle.Digest{}))
	}
	if s.IsGPT() {
		c, err := s.GPT()
		if err != nil || s.Data.Text == nil {
			return 0
		}
		text := int64(s.Data.Text.Bytes)
		chunk := uvarintLen(dataset.TextChunkBytes) + dataset.TextChunkBytes + proof(int64(dataset.TextChunks(int(text))))
		window := uvarintLen(uint64(text)) + uvarintLen(uint64(c.Context+1)) + int64(c.Context+1) + 1 + MaxWindowChunks*chunk
		return satAdd(int64(len(windowsTag))+uvarintLen(uint64(c.Batch)), satMul(int64(c.Batch), window))
	}
	tr := s.Data.Train
	sample := uvarintLen(uint64(tr.Count)) + 1 + uvarintLen(uint64(tr.Features)) + int64(tr.Features) + proof(int64(tr.Count))
	return satAdd(int64(len(batchTag))+uvarintLen(uint64(s.BatchSize)), satMul(int64(s.BatchSize), sample))
}

func satMul(a, b int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
