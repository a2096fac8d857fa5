package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// checkpointMagic opens every checkpoint file.
const checkpointMagic = "BELUGACK"

// ErrCorrupt: checkpoint bytes that do not decode, do not match the spec's
// shapes, or fail their checksum.
var ErrCorrupt = errors.New("spec: corrupt checkpoint")

// MarshalCheckpoint encodes st as a checkpoint of job (SPEC.md §"Checkpoint
// files"): magic "BELUGACK", le32 version, job ID, le64 step, le32 tensor
// count, then per tensor le16 name length, name, le8 rank, le32 dims, the
// int32 little-endian data; finally SHA-256 of everything before it.
func MarshalCheckpoint(job JobID, st *State) []byte {
	size := len(checkpointMagic) + 4 + len(job) + 8 + 4 + sha256.Size
	for _, t := range st.Tensors {
		size += 2 + len(t.Name) + 1 + 4*len(t.Shape) + 4*len(t.Data)
	}
	b := make([]byte, 0, size)
	b = append(b, checkpointMagic...)
	b = binary.LittleEndian.AppendUint32(b, Version)
	b = append(b, job[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(st.Step))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st.Tensors)))
	for _, t := range st.Tensors {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(t.Name)))
		b = append(b, t.Name...)
		b = append(b, byte(len(t.Shape)))
		for _, d := range t.Shape {
			b = binary.LittleEndian.AppendUint32(b, uint32(d))
		}
		for _, v := range t.Data {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// UnmarshalCheckpoint decodes a checkpoint of the job s with ID job. It
// accepts only the exact tensor names and shapes that s implies, so it
// allocates nothing the spec did not already bound, and it checks the
// checksum before decoding anything.
func (s *Spec) UnmarshalCheckpoint(job JobID, data []byte) (*State, error) {
	want := s.NewState()
	size := len(checkpointMagic) + 4 + len(job) + 8 + 4 + sha256.Size
	for _, t := range want.Tensors {
		size += 2 + len(t.Name) + 1 + 4*len(t.Shape) + 4*len(t.Data)
	}
	if len(data) != size {
		return nil, fmt.Errorf("%w: %d bytes, the spec's state needs %d", ErrCorrupt, len(data), size)
	}
	body, sum := data[:size-sha256.Size], data[size-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r := reader{b: body}
	if string(r.next(len(checkpointMagic))) != checkpointMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if v := r.u32(); v != Version {
		return nil, fmt.Errorf("%w: version %d", ErrCorrupt, v)
	}
	if !bytes.Equal(r.next(len(job)), job[:]) {
		return nil, fmt.Errorf("%w: checkpoint belongs to another job", ErrCorrupt)
	}
	step := r.u64()
	if step > uint64(s.Steps) {
		return nil, fmt.Errorf("%w: step %d beyond the job's %d steps", ErrCorrupt, step, s.Steps)
	}
	want.Step = int64(step)
	if n := r.u32(); int(n) != len(want.Tensors) {
		return nil, fmt.Errorf("%w: %d tensors, want %d", ErrCorrupt, n, len(want.Tensors))
	}
	for _, t := range want.Tensors {
		if name := string(r.next(int(r.u16()))); name != t.Name {
			return nil, fmt.Errorf("%w: tensor %q where %q belongs", ErrCorrupt, name, t.Name)
		}
		if rank := int(r.next(1)[0]); rank != len(t.Shape) {
			return nil, fmt.Errorf("%w: tensor %s has rank %d, want %d", ErrCorrupt, t.Name, rank, len(t.Shape))
		}
		for _, d := range t.Shape {
			if got := r.u32(); int64(got) != int64(d) {
				return nil, fmt.Errorf("%w: tensor %s has a dimension %d, want %d", ErrCorrupt, t.Name, got, d)
			}
		}
		for i := range t.Data {
			t.Data[i] = int32(r.u32())
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, fmt.Errorf("%w: layout does not match the spec", ErrCorrupt)
	}
	return want, nil
}

// reader consumes little-endian fields; past the end it records an error
// and yields zeros, so callers check r.err once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = ErrCorrupt
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u16() uint16 { return binary.LittleEndian.Uint16(r.next(2)) }
func (r *reader) u32() uint32 { return binary.LittleEndian.Uint32(r.next(4)) }
func (r *reader) u64() uint64 { return binary.LittleEndian.Uint64(r.next(8)) }
