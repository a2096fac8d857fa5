package api

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/beluga-compute/beluga/spec"
)

// The weights file (GET /v1/jobs/{id}/weights, `beluga job download`) is a
// safetensors file (https://github.com/huggingface/safetensors), so that
// the safetensors library, or twenty lines of NumPy
// (scripts/load_weights.py), reads it:
//
//	le64(N) ‖ header: N bytes of JSON, padded with spaces to a multiple of 8 ‖ data
//
// The header maps each tensor's name to {"dtype": "I32" or "I64", "shape":
// [...], "data_offsets": [begin, end]} (byte offsets into data, little-endian
// int32 or int64), and "__metadata__" to string values:
//
//	format        "beluga-weights/v1"
//	job_id        the job's ID (64 hex digits)
//	step          the state's step count (the job's steps)
//	state_digest  the committed final digest (64 hex digits)
//	master_frac   fractional bits of the weights: a value v means v / 2^master_frac
//
// The tensors are the whole training state, in the canonical order of
// SPEC.md §"State digest" (an MLP, for each linear layer: layers.<i>.weight
// [out, in], layers.<i>.bias [out], layers.<i>.weight.momentum,
// layers.<i>.bias.momentum; a GPT, for each parameter P: P, P.m (I32) and
// P.v (I64), SPEC.md §20.10), their data laid out in that order: the
// momenta are there because the committed digest covers them, so the
// file can be checked against it (protocol/core/commit) without trusting
// whoever served it.

// WeightsFormat is the format member of a weights file's metadata.
const WeightsFormat = "beluga-weights/v1"

// MaxWeightsHeaderBytes bounds a weights file's header.
const MaxWeightsHeaderBytes = 1 << 20

// Weights is a decoded weights file.
type Weights struct {
	Job         spec.JobID
	StateDigest [32]byte
	MasterFrac  int
	State       *spec.State
}

type weightsTensor struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// EncodeWeights writes w as a weights file.
func EncodeWeights(w *Weights) ([]byte, error) {
	header := map[string]any{"__metadata__": map[string]string{
		"format":       WeightsFormat,
		"job_id":       w.Job.String(),
		"step":         strconv.FormatInt(w.State.Step, 10),
		"state_digest": hex.EncodeToString(w.StateDigest[:]),
		"master_frac":  strconv.Itoa(w.MasterFrac),
	}}
	var off int64
	for _, t := range w.State.Tensors {
		dtype := "I32"
		switch d, _ := t.DType.Known(); d {
		case spec.DTypeInt32:
		case spec.DTypeInt64:
			dtype = "I64"
		default:
			return nil, fmt.Errorf("weights: tensor %q has element type %v", t.Name, t.DType)
		}
		// An int64 tensor's Data holds each value as its low and high
		// halves, so its bytes are the little-endian int64s either way.
		n := t.ByteLen()
		header[t.Name] = weightsTensor{DType: dtype, Shape: t.Shape, Offsets: [2]int64{off, off + n}}
		off += n
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 0, 8+len(h)+int(off))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, t := range w.State.Tensors {
		for _, v := range t.Data {
			out = binary.LittleEndian.AppendUint32(out, uint32(v))
		}
	}
	return out, nil
}

// ErrWeightsFile: the bytes are not a well-formed weights file.
var ErrWeightsFile = errors.New("not a Beluga weights file")

// DecodeWeights reads a weights file: the header must be well-formed,
// every tensor I32 with a shape that fits its bytes, the tensors' data
// contiguous and in header-offset order, covering the data exactly. It
// checks the form only: whether the state is the committed one is the
// caller's check (commit.Hasher.StateDigest against the digest it trusts).
func DecodeWeights(b []byte) (*Weights, error) {
	bad := func(format string, a ...any) (*Weights, error) {
		return nil, fmt.Errorf("%w: %s", ErrWeightsFile, fmt.Sprintf(format, a...))
	}
	if len(b) < 8 {
		return bad("%d bytes", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxWeightsHeaderBytes || n > uint64(len(b)-8) {
		return bad("header of %d bytes in a file of %d", n, len(b))
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b[8 : 8+n]))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return bad("header: %v", err)
	}
	var meta map[string]string
	if err := json.Unmarshal(raw["__metadata__"], &meta); err != nil || meta == nil {
		return bad("no metadata")
	}
	delete(raw, "__metadata__")
	if meta["format"] != WeightsFormat {
		return bad("format %q, want %q", meta["format"], WeightsFormat)
	}
	w := &Weights{}
	var err error
	if w.Job, err = spec.ParseJobID(meta["job_id"]); err != nil {
		return bad("job_id: %v", err)
	}
	if d, err := hex.DecodeString(meta["state_digest"]); err != nil || len(d) != 32 {
		return bad("state_digest is not 64 hex digits")
	} else {
		copy(w.StateDigest[:], d)
	}
	if w.MasterFrac, err = strconv.Atoi(meta["master_frac"]); err != nil || w.MasterFrac < 0 || w.MasterFrac > 31 {
		return bad("master_frac %q", meta["master_frac"])
	}
	step, err := strconv.ParseInt(meta["step"], 10, 64)
	if err != nil || step < 0 {
		return bad("step %q", meta["step"])
	}
	data := b[8+n:]
	type named struct {
		name string
		t    weightsTensor
	}
	ts := make([]named, 0, len(raw))
	for name, v := range raw {
		var t weightsTensor
		if err := json.Unmarshal(v, &t); err != nil {
			return bad("tensor %q: %v", name, err)
		}
		size := int64(4)
		switch t.DType {
		case "I32":
		case "I64":
			size = 8
		default:
			return bad("tensor %q has dtype %q; only I32 and I64", name, t.DType)
		}
		if len(t.Shape) == 0 || len(t.Shape) > 8 {
			return bad("tensor %q has %d dimensions", name, len(t.Shape))
		}
		elems := int64(1)
		for _, d := range t.Shape {
			if d <= 0 || elems > math.MaxInt32/int64(d) {
				return bad("tensor %q has shape %v", name, t.Shape)
			}
			elems *= int64(d)
		}
		if t.Offsets[0] < 0 || t.Offsets[1]-t.Offsets[0] != size*elems {
			return bad("tensor %q: offsets %v do not hold shape %v", name, t.Offsets, t.Shape)
		}
		ts = append(ts, named{name, t})
	}
	if len(ts) == 0 {
		return bad("no tensors")
	}
	slices.SortFunc(ts, func(a, b named) int { return int(min(max(a.t.Offsets[0]-b.t.Offsets[0], -1), 1)) })
	var off int64
	w.State = &spec.State{Step: step, Tensors: make([]spec.Tensor, 0, len(ts))}
	for _, t := range ts {
		if t.t.Offsets[0] != off {
			return bad("tensor %q starts at byte %d, want %d (data must be contiguous)", t.name, t.t.Offsets[0], off)
		}
		end := t.t.Offsets[1]
		if end > int64(len(data)) {
			return bad("tensor %q ends at byte %d of %d", t.name, end, len(data))
		}
		vals := make([]int32, (end-off)/4)
		for i := range vals {
			vals[i] = int32(binary.LittleEndian.Uint32(data[off+4*int64(i):]))
		}
		dtype := spec.DTypeInt32
		if t.t.DType == "I64" {
			dtype = spec.DTypeInt64
		}
		w.State.Tensors = append(w.State.Tensors, spec.Tensor{Name: t.name, Shape: slices.Clone(t.t.Shape), DType: dtype, Data: vals})
		off = end
	}
	if off != int64(len(data)) {
		return bad("%d bytes after the last tensor", int64(len(data))-off)
	}
	return w, nil
}
