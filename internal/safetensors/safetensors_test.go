package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func sample(t testing.TB) []byte {
	t.Helper()
	b, err := Encode([]Tensor{
		F32("wte.weight", []int{2, 3}, []float32{1, -2, 0.5, 3, 4, -0.25}),
		{Name: "h", DType: "F16", Shape: []int{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc0}},  // 1, −2
		{Name: "g", DType: "BF16", Shape: []int{2}, Data: []byte{0x80, 0x3f, 0x40, 0xc0}}, // 1, −3
		{Name: "s", DType: "F32", Shape: []int{}, Data: []byte{0, 0, 0x80, 0x3f}},         // scalar 1
	}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// raw builds a file from a header string and data.
func raw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// TestRoundTrip: Encode's files parse back to the same tensors, whose
// values read exactly in every floating-point type.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	f, err := Parse(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" || len(f.Tensors) != 4 {
		t.Fatalf("file %+v", f)
	}
	for name, want := range map[string][]float64{
		"wte.weight": {1, -2, 0.5, 3, 4, -0.25}, "h": {1, -2}, "g": {1, -3}, "s": {1},
	} {
		got, err := f.Get(name).Float64s()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v %v, want %v", name, got, err, want)
		}
	}
	if f.Get("nope") != nil {
		t.Error("Get of an absent name")
	}
}

func TestHalf(t *testing.T) {
	t.Parallel()
	for h, want := range map[uint16]float64{0x0001: math.Ldexp(1, -24), 0x7bff: 65504, 0xfc00: math.Inf(-1), 0x3555: 0.333251953125, 0x8000: 0} {
		if got := halfToFloat(h); got != want {
			t.Errorf("half %#04x = %g, want %g", h, got, want)
		}
	}
	if !math.IsNaN(halfToFloat(0x7e00)) {
		t.Error("half NaN")
	}
}

// malformed are files Parse refuses, each with a word its error must hold.
var malformed = []struct {
	name string
	file []byte
	want string
}{
	{"short", []byte{1, 2, 3}, "shorter"},
	{"header past the end", raw(`{}`, nil)[:9], "header of 2 bytes"},
	{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<40), "more than"},
	{"not an object", raw(`[1,2]   `, nil), "start with '{'"},
	{"bad json", raw(`{"a":`, nil), "header"},
	{"trailing", raw(`{} x`, nil), "after the header"},
	{"duplicate", raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "twice"},
	{"unknown dtype", raw(`{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "unknown dtype"},
	{"missing key", raw(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), "data_offsets"},
	{"extra key", raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)), "no field"},
	{"three offsets", raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, make([]byte, 4)), "[begin, end]"},
	{"size mismatch", raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), "needs 8"},
	{"negative dim", raw(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "dimension"},
	{"overflowing shape", raw(`{"a":{"dtype":"F64","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,8]}}`, make([]byte, 8)), "too many"},
	{"past the data", raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), "outside"},
	{"hole", raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "belong to no tensor"},
	{"overlap", raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "overlaps"},
	{"uncovered tail", raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 8)), "cover 4 bytes"},
	{"bad metadata", raw(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
	{"float shape", raw(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), "tensor \"a\""},
}

// TestMalformed: every malformed file is refused with ErrMalformed and an
// error that says what is wrong.
func TestMalformed(t *testing.T) {
	t.Parallel()
	for _, c := range malformed {
		_, err := Parse(c.file)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrMalformed saying %q", c.name, err, c.want)
		}
	}
}

// TestFloat64sRefusesIntegers: only floating-point tensors read as floats.
func TestFloat64sRefusesIntegers(t *testing.T) {
	t.Parallel()
	tn := Tensor{Name: "i", DType: "I32", Shape: []int{1}, Data: make([]byte, 4)}
	if _, err := tn.Float64s(); !errors.Is(err, ErrDType) {
		t.Fatalf("I32 as floats: %v", err)
	}
}

// FuzzParse: Parse never panics; a file it accepts has tensors that tile
// its data, and re-encoding them gives a file that parses to the same
// tensors.
func FuzzParse(f *testing.F) {
	f.Add(sample(f))
	for _, c := range malformed {
		f.Add(c.file)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		var total int
		for _, tn := range file.Tensors {
			total += len(tn.Data)
			_, _ = tn.Float64s()
		}
		n := binary.LittleEndian.Uint64(b)
		if total != len(b)-8-int(n) {
			t.Fatalf("tensors hold %d bytes of %d", total, len(b)-8-int(n))
		}
		again, err := Encode(file.Tensors, file.Metadata)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := Parse(again)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		for i := range back.Tensors {
			a, c := file.Tensors[i], back.Tensors[i]
			if a.Name != c.Name || a.DType != c.DType || !reflect.DeepEqual(a.Shape, c.Shape) || !bytes.Equal(a.Data, c.Data) {
				t.Fatalf("tensor %d changed through Encode", i)
			}
		}
	})
}
