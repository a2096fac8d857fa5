// Package safetensors reads and writes safetensors files
// (https://github.com/huggingface/safetensors), the format checkpoints of
// standard models come in:
//
//	le64(N) ‖ header: N bytes of JSON ‖ data
//
// The header is one JSON object mapping each tensor's name to {"dtype",
// "shape", "data_offsets": [begin, end]} (byte offsets into data,
// little-endian elements, row-major), and optionally "__metadata__" to a
// string-to-string object.
//
// # Guarantees
//
// Parse reads outside bytes and refuses, with an error wrapping
// ErrMalformed that says what is wrong, anything but a well-formed file:
// a header longer than MaxHeaderBytes or than the file, JSON that is not
// one object (trailing spaces allowed), a duplicate name, an unknown key
// or dtype, a shape whose element count overflows or does not match its
// byte range, and data that the tensors do not cover exactly (every byte
// of data belongs to exactly one tensor: no holes, no overlaps). It
// allocates at most the header's size beyond the tensors' metadata, and
// the tensors' bytes alias the input.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/beluga-compute/beluga/spec/strictjson"
)

// ErrMalformed: the bytes are not a well-formed safetensors file.
var ErrMalformed = errors.New("not a well-formed safetensors file")

// ErrDType: a tensor's element type cannot be read as asked.
var ErrDType = errors.New("safetensors: unsupported element type")

// Limits on what Parse accepts.
const (
	// MaxHeaderBytes bounds the JSON header (the library's own limit is
	// 100 MB; a GPT-2 header is a few KiB).
	MaxHeaderBytes = 16 << 20
	// MaxTensors bounds the number of tensors.
	MaxTensors = 1 << 16
	// MaxDims bounds a tensor's dimensions.
	MaxDims = 8
)

// sizes are the element types of the format, by name, and their bytes.
var sizes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// Tensor is one named tensor: its element type (a safetensors dtype name
// such as "F32"), shape and little-endian row-major bytes.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// Elems is the number of elements: the product of the shape (1 for a
// scalar, shape []).
func (t *Tensor) Elems() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is a parsed safetensors file: its tensors in the order of their
// data (empty tensors at one offset by name) and its metadata.
type File struct {
	Tensors  []Tensor
	Metadata map[string]string
}

// Get returns the tensor called name, or nil.
func (f *File) Get(name string) *Tensor {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i]
		}
	}
	return nil
}

// entry is a tensor's header entry, read by strictjson's rules (every key
// required, once, and no other).
type entry struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// Parse reads a safetensors file held in b. The tensors' Data alias b.
func Parse(b []byte) (*File, error) {
	bad := func(format string, a ...any) (*File, error) {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
	}
	if len(b) < 8 {
		return bad("%d bytes, shorter than the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderBytes {
		return bad("header of %d bytes, more than %d", n, MaxHeaderBytes)
	}
	if n > uint64(len(b)-8) {
		return bad("header of %d bytes in a file of %d", n, len(b))
	}
	header := b[8 : 8+n]
	if len(header) == 0 || header[0] != '{' {
		return bad("the header does not start with '{'")
	}
	data := b[8+n:]
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad("the header is not a JSON object")
	}
	f := &File{}
	var offs [][2]int64
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("header: %v", err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return bad("the name %q appears twice", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad("header, at %q: %v", name, err)
		}
		if name == "__metadata__" {
			if err := strictjson.Decode(raw, &f.Metadata); err != nil || f.Metadata == nil {
				return bad("__metadata__ is not an object of strings")
			}
			continue
		}
		if len(f.Tensors) == MaxTensors {
			return bad("more than %d tensors", MaxTensors)
		}
		t, o, err := tensor(name, raw, data)
		if err != nil {
			return nil, err
		}
		f.Tensors, offs = append(f.Tensors, t), append(offs, o)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return bad("the header object does not end")
	}
	if rest := strings.TrimRight(string(header[dec.InputOffset():]), " "); rest != "" {
		return bad("%d bytes after the header object (only spaces may pad it)", len(rest))
	}
	// Every byte of data belongs to exactly one tensor, in offset order.
	idx := make([]int, len(f.Tensors))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, c int) bool {
		oa, oc := offs[idx[a]], offs[idx[c]]
		if oa != oc {
			return oa[0] < oc[0] || oa[0] == oc[0] && oa[1] < oc[1]
		}
		return f.Tensors[idx[a]].Name < f.Tensors[idx[c]].Name // empty tensors at one offset
	})
	var at int64
	sorted := make([]Tensor, len(f.Tensors))
	for k, i := range idx {
		o := offs[i]
		if o[0] != at {
			if o[0] < at {
				return bad("tensor %q (bytes %d to %d) overlaps the one before it", f.Tensors[i].Name, o[0], o[1])
			}
			return bad("bytes %d to %d of the data belong to no tensor", at, o[0])
		}
		at = o[1]
		sorted[k] = f.Tensors[i]
	}
	if at != int64(len(data)) {
		return bad("the tensors cover %d bytes of data, the file has %d", at, len(data))
	}
	f.Tensors = sorted
	return f, nil
}

// tensor checks one header entry against data and returns the tensor and
// its byte range.
func tensor(name string, raw json.RawMessage, data []byte) (Tensor, [2]int64, error) {
	bad := func(format string, a ...any) (Tensor, [2]int64, error) {
		return Tensor{}, [2]int64{}, fmt.Errorf("%w: tensor %q: %s", ErrMalformed, name, fmt.Sprintf(format, a...))
	}
	dataLen := int64(len(data))
	var e entry
	if err := strictjson.Decode(raw, &e); err != nil {
		return bad("%v (an entry is {\"dtype\", \"shape\", \"data_offsets\"})", err)
	}
	size, ok := sizes[e.DType]
	if !ok {
		return bad("unknown dtype %q", e.DType)
	}
	if len(e.Shape) > MaxDims {
		return bad("%d dimensions, more than %d", len(e.Shape), MaxDims)
	}
	elems := int64(1)
	shape := make([]int, len(e.Shape))
	for i, d := range e.Shape {
		if d < 0 || d > math.MaxInt32 {
			return bad("shape %v has a dimension outside [0, 2^31)", e.Shape)
		}
		if d != 0 && elems > math.MaxInt64/int64(size)/d {
			return bad("shape %v holds too many elements", e.Shape)
		}
		elems *= d
		shape[i] = int(d)
	}
	if len(e.Offsets) != 2 {
		return bad("data_offsets %v is not [begin, end]", e.Offsets)
	}
	o := [2]int64{e.Offsets[0], e.Offsets[1]}
	if o[0] < 0 || o[1] < o[0] || o[1] > dataLen {
		return bad("data_offsets [%d, %d] outside the %d bytes of data", o[0], o[1], dataLen)
	}
	if o[1]-o[0] != elems*int64(size) {
		return bad("data_offsets [%d, %d] hold %d bytes, the shape %v of %s needs %d", o[0], o[1], o[1]-o[0], e.Shape, e.DType, elems*int64(size))
	}
	return Tensor{Name: name, DType: e.DType, Shape: shape, Data: data[o[0]:o[1]:o[1]]}, o, nil
}

// Float64s returns the tensor's elements as float64 (exactly: every F16,
// BF16 and F32 value is a float64), for dtypes F16, BF16, F32 and F64.
func (t *Tensor) Float64s() ([]float64, error) {
	size, ok := sizes[t.DType]
	if !ok || !slices.Contains([]string{"F16", "BF16", "F32", "F64"}, t.DType) {
		return nil, fmt.Errorf("%w: tensor %q is %s; the floating-point types are F16, BF16, F32 and F64", ErrDType, t.Name, t.DType)
	}
	out := make([]float64, len(t.Data)/size)
	for i := range out {
		p := t.Data[i*size:]
		switch t.DType {
		case "F16":
			out[i] = halfToFloat(binary.LittleEndian.Uint16(p))
		case "BF16":
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(p)) << 16))
		case "F32":
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(p)))
		case "F64":
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(p))
		}
	}
	return out, nil
}

// halfToFloat converts an IEEE 754 binary16 value.
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, frac := int(h>>10)&0x1f, float64(h&0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1024+frac, exp-25)
}

// Encode writes tensors (in this order) and metadata (nil: none) as a
// safetensors file, the header padded with spaces to a multiple of 8.
func Encode(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	header := map[string]any{}
	if metadata != nil {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range tensors {
		size, ok := sizes[t.DType]
		if !ok {
			return nil, fmt.Errorf("%w: tensor %q has dtype %q", ErrDType, t.Name, t.DType)
		}
		if _, dup := header[t.Name]; dup || t.Name == "__metadata__" {
			return nil, fmt.Errorf("safetensors: tensor name %q used twice or reserved", t.Name)
		}
		if len(t.Data) != t.Elems()*size {
			return nil, fmt.Errorf("safetensors: tensor %q holds %d bytes, its shape %v of %s needs %d", t.Name, len(t.Data), t.Shape, t.DType, t.Elems()*size)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = map[string]any{"dtype": t.DType, "shape": shape, "data_offsets": [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(h)+int(off)), uint64(len(h)))
	out = append(out, h...)
	for _, t := range tensors {
		out = append(out, t.Data...)
	}
	return out, nil
}

// F32 returns a float32 tensor of the given shape holding values.
func F32(name string, shape []int, values []float32) Tensor {
	b := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, DType: "F32", Shape: shape, Data: b}
}
