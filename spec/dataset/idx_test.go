package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// encodeIDX writes an IDX file with the given header fields and payload.
func encodeIDX(typ byte, dims []uint32, data []byte) []byte {
	b := []byte{0, 0, typ, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func cat(bs ...[]byte) []byte { return slices.Concat(bs...) }

// flip returns b with byte i (from the end if negative) inverted.
func flip(b []byte, i int) []byte {
	b = slices.Clone(b)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0xff
	return b
}

var (
	labels3  = encodeIDX(TypeUint8, []uint32{3}, []byte{1, 2, 3})
	images   = encodeIDX(TypeUint8, []uint32{2, 2, 3}, seq(12))
	imagesGz = gz(images)
)

type idxCase struct {
	name    string
	in      []byte
	lim     Limits
	dims    []int  // want, on success
	data    []byte // want, on success
	wantErr []error
}

var idxCases = []idxCase{
	{name: "labels", in: labels3, dims: []int{3}, data: []byte{1, 2, 3}},
	{name: "images", in: images, dims: []int{2, 2, 3}, data: seq(12)},
	{name: "labels gz", in: gz(labels3), dims: []int{3}, data: []byte{1, 2, 3}},
	{name: "images gz", in: imagesGz, dims: []int{2, 2, 3}, data: seq(12)},
	{name: "zero size", in: encodeIDX(TypeUint8, []uint32{0, 28, 28}, nil), dims: []int{0, 28, 28}, data: []byte{}},
	{name: "zero size huge", in: encodeIDX(TypeUint8, []uint32{1 << 30, 0, 1 << 30}, nil), dims: []int{1 << 30, 0, 1 << 30}, data: []byte{}},
	{name: "at limit", in: encodeIDX(TypeUint8, []uint32{4, 4}, seq(16)), lim: Limits{MaxElements: 16, MaxDims: 2}, dims: []int{4, 4}, data: seq(16)},
	{name: "max dims", in: encodeIDX(TypeUint8, []uint32{1, 1, 1, 1, 1, 1, 1, 2}, seq(2)), dims: []int{1, 1, 1, 1, 1, 1, 1, 2}, data: seq(2)},
	{name: "large multi-chunk", in: encodeIDX(TypeUint8, []uint32{3, 40000}, seq(120000)), dims: []int{3, 40000}, data: seq(120000)},
	{name: "large multi-chunk gz", in: gz(encodeIDX(TypeUint8, []uint32{3, 40000}, seq(120000))), dims: []int{3, 40000}, data: seq(120000)},

	{name: "empty", in: nil, wantErr: []error{ErrTruncated, io.ErrUnexpectedEOF}},
	{name: "one byte", in: []byte{0}, wantErr: []error{ErrTruncated, io.ErrUnexpectedEOF}},
	{name: "short header", in: []byte{0, 0, 8}, wantErr: []error{ErrTruncated, io.ErrUnexpectedEOF}},
	{name: "bad magic 0", in: flip(labels3, 0), wantErr: []error{ErrBadMagic}},
	{name: "bad magic 1", in: flip(labels3, 1), wantErr: []error{ErrBadMagic}},
	{name: "text", in: []byte("hello, world\n"), wantErr: []error{ErrBadMagic}},
	{name: "int8 type", in: encodeIDX(0x09, []uint32{3}, []byte{1, 2, 3}), wantErr: []error{ErrUnsupportedType}},
	{name: "int32 type", in: encodeIDX(0x0C, []uint32{1}, []byte{1, 2, 3, 4}), wantErr: []error{ErrUnsupportedType}},
	{name: "4-byte reals", in: encodeIDX(0x0D, []uint32{1}, []byte{1, 2, 3, 4}), wantErr: []error{ErrUnsupportedType}},
	{name: "zero dims", in: encodeIDX(TypeUint8, nil, nil), wantErr: []error{ErrBadDims}},
	{name: "too many dims", in: encodeIDX(TypeUint8, make([]uint32, 9), nil), wantErr: []error{ErrBadDims}},
	{name: "too many dims custom", in: images, lim: Limits{MaxDims: 2}, wantErr: []error{ErrBadDims}},
	{name: "255 dims", in: []byte{0, 0, 8, 255}, lim: Limits{MaxDims: 1000}, wantErr: []error{ErrTruncated}},
	{name: "too large", in: encodeIDX(TypeUint8, []uint32{1 << 16, 1 << 15}, nil), wantErr: []error{ErrTooLarge}},
	{name: "too large custom", in: encodeIDX(TypeUint8, []uint32{4, 4}, seq(16)), lim: Limits{MaxElements: 15}, wantErr: []error{ErrTooLarge}},
	{name: "overflow", in: encodeIDX(TypeUint8, []uint32{1<<32 - 1, 1<<32 - 1, 1<<32 - 1, 1<<32 - 1}, nil), wantErr: []error{ErrTooLarge}},
	{name: "short dims", in: images[:4+8], wantErr: []error{ErrTruncated, io.ErrUnexpectedEOF}},
	{name: "no data", in: images[:4+12], wantErr: []error{ErrTruncated, io.ErrUnexpectedEOF}},
	{name: "short data", in: images[:len(images)-1], wantErr: []error{ErrTruncated, io.ErrUnexpectedEOF}},
	{name: "lying header", in: encodeIDX(TypeUint8, []uint32{1 << 15, 1 << 15}, seq(100)), wantErr: []error{ErrTruncated, io.ErrUnexpectedEOF}},
	{name: "trailing byte", in: cat(images, []byte{0}), wantErr: []error{ErrTrailingData}},
	{name: "trailing file", in: cat(labels3, labels3), wantErr: []error{ErrTrailingData}},

	{name: "gz short data", in: gz(images[:len(images)-1]), wantErr: []error{ErrTruncated, io.ErrUnexpectedEOF}},
	{name: "gz bad magic", in: gz(flip(images, 1)), wantErr: []error{ErrBadMagic}},
	{name: "gz too large", in: gz(encodeIDX(TypeUint8, []uint32{1 << 31}, nil)), wantErr: []error{ErrTooLarge}},
	{name: "gz trailing inside", in: gz(cat(images, []byte{0})), wantErr: []error{ErrTrailingData}},
	{name: "gz trailing outside", in: cat(imagesGz, []byte{0}), wantErr: []error{ErrTrailingData}},
	{name: "gz second member", in: cat(imagesGz, gz(nil)), wantErr: []error{ErrTrailingData}},
	{name: "gz magic only", in: imagesGz[:2], wantErr: []error{ErrCorruptGzip, io.ErrUnexpectedEOF}},
	{name: "gz bad header", in: flip(imagesGz, 2), wantErr: []error{ErrCorruptGzip, gzip.ErrHeader}},
	{name: "gz cut", in: imagesGz[:len(imagesGz)/2], wantErr: []error{ErrCorruptGzip, io.ErrUnexpectedEOF}},
	{name: "gz no trailer", in: imagesGz[:len(imagesGz)-8], wantErr: []error{ErrCorruptGzip, io.ErrUnexpectedEOF}},
	{name: "gz bad crc", in: flip(imagesGz, -8), wantErr: []error{ErrCorruptGzip, gzip.ErrChecksum}},
	{name: "gz bad size", in: flip(imagesGz, -1), wantErr: []error{ErrCorruptGzip, gzip.ErrChecksum}},
	{name: "gz bad deflate", in: flip(imagesGz, 10), wantErr: []error{ErrCorruptGzip}},
}

func TestReadIDX(t *testing.T) {
	for _, c := range idxCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadIDX(bytes.NewReader(c.in), c.lim)
			if c.wantErr != nil {
				if err == nil {
					t.Fatalf("got dims %v, want error %v", got.Dims, c.wantErr)
				}
				for _, w := range c.wantErr {
					if !errors.Is(err, w) {
						t.Errorf("error %q does not wrap %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Dims, c.dims) || !bytes.Equal(got.Data, c.data) || got.Data == nil {
				t.Fatalf("got dims %v, %d bytes; want %v, %d bytes", got.Dims, len(got.Data), c.dims, len(c.data))
			}
		})
	}
}

// A byte-at-a-time reader must give the same results (no reliance on Read
// filling buffers).
func TestReadIDXOneByteReads(t *testing.T) {
	for _, c := range idxCases {
		got, err := ReadIDX(iotestOneByte{bytes.NewReader(c.in)}, c.lim)
		if (err != nil) != (c.wantErr != nil) || (err == nil && !bytes.Equal(got.Data, c.data)) {
			t.Errorf("%s: got err %v", c.name, err)
		}
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

var errDisk = errors.New("disk on fire")

type failingReader struct {
	data []byte
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errDisk
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadIDXReaderError(t *testing.T) {
	for _, in := range [][]byte{nil, images[:2], images[:10], images[:len(images)-1], images, imagesGz[:30]} {
		_, err := ReadIDX(&failingReader{data: in}, Limits{})
		if !errors.Is(err, errDisk) {
			t.Errorf("%d bytes then failure: got %v, want the reader's error", len(in), err)
		}
	}
}

// A header announcing 2^30 bytes over a short body must not allocate them.
func TestReadIDXLyingHeaderAllocatesLittle(t *testing.T) {
	in := encodeIDX(TypeUint8, []uint32{1 << 15, 1 << 15}, seq(1000))
	for _, in := range [][]byte{in, gz(in)} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ReadIDX(bytes.NewReader(in), Limits{})
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("got %v, want ErrTruncated", err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
			t.Fatalf("allocated %d bytes for a %d-byte input", d, len(in))
		}
	}
}

const maxFuzzSeed = 16 << 10

func FuzzReadIDX(f *testing.F) {
	for _, c := range idxCases {
		// Large seeds make the fuzzer's minimizer crawl; each has a small
		// gzip twin in the table that reaches the same code.
		if len(c.in) <= maxFuzzSeed {
			f.Add(c.in)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxElements = 1 << 17 // above the largest seed, and cheap per run
		idx, err := ReadIDX(bytes.NewReader(in), Limits{MaxElements: maxElements})
		if err != nil {
			return
		}
		total := 1
		for _, d := range idx.Dims {
			total *= d
		}
		if len(idx.Dims) == 0 || len(idx.Dims) > DefaultMaxDims || total != len(idx.Data) || total > maxElements {
			t.Fatalf("accepted dims %v with %d bytes", idx.Dims, len(idx.Data))
		}
		if len(in) >= 2 && [2]byte(in[:2]) == gzipMagic {
			return
		}
		dims := make([]uint32, len(idx.Dims))
		for i, d := range idx.Dims {
			dims[i] = uint32(d)
		}
		if enc := encodeIDX(TypeUint8, dims, idx.Data); !bytes.Equal(enc, in) {
			t.Fatalf("accepted input does not round-trip:\n in %x\nout %x", in, enc)
		}
	})
}

func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadIDXPair(t *testing.T) {
	img := encodeIDX(TypeUint8, []uint32{3, 2, 2}, seq(12))
	dir := writeFiles(t, map[string][]byte{
		"img":        img,
		"img.gz":     gz(img),
		"img1d":      encodeIDX(TypeUint8, []uint32{3}, seq(3)),
		"imgzero":    encodeIDX(TypeUint8, []uint32{3, 0}, nil),
		"imghuge":    encodeIDX(TypeUint8, []uint32{0, 1<<32 - 1, 1<<32 - 1}, nil),
		"lab":        encodeIDX(TypeUint8, []uint32{3}, []byte{0, 4, 2}),
		"lab.gz":     gz(encodeIDX(TypeUint8, []uint32{3}, []byte{0, 4, 2})),
		"lab2":       encodeIDX(TypeUint8, []uint32{2}, []byte{0, 1}),
		"lab2d":      encodeIDX(TypeUint8, []uint32{3, 1}, []byte{0, 1, 2}),
		"labbig":     encodeIDX(TypeUint8, []uint32{3}, []byte{0, 5, 2}),
		"badmagic":   flip(img, 0),
		"truncated":  img[:len(img)-1],
		"labtrailer": cat(encodeIDX(TypeUint8, []uint32{3}, []byte{0, 4, 2}), []byte{1}),
	})
	p := func(name string) string { return filepath.Join(dir, name) }

	for _, pair := range [][2]string{{"img", "lab"}, {"img.gz", "lab.gz"}, {"img", "lab.gz"}} {
		ds, err := LoadIDXPair(p(pair[0]), p(pair[1]), 5)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != 3 || ds.Features() != 4 || ds.Classes() != 5 || ds.Name != pair[0] {
			t.Fatalf("%v: got %d×%d, %d classes, name %q", pair, ds.Len(), ds.Features(), ds.Classes(), ds.Name)
		}
		x, y := ds.Sample(1)
		if !bytes.Equal(x, seq(12)[4:8]) || y != 4 {
			t.Fatalf("sample 1 = %v, %d", x, y)
		}
	}

	for _, c := range []struct {
		img, lab string
		classes  int
		want     error
	}{
		{"img", "lab", 4, ErrBadLabel},
		{"img", "labbig", 5, ErrBadLabel},
		{"img", "lab2", 5, ErrCountMismatch},
		{"img1d", "lab", 5, ErrBadShape},
		{"imgzero", "lab", 5, ErrBadShape},
		{"imghuge", "lab", 5, ErrTooLarge},
		{"img", "lab2d", 5, ErrBadShape},
		{"img", "lab", 1, ErrBadArgument},
		{"img", "lab", 257, ErrBadArgument},
		{"badmagic", "lab", 5, ErrBadMagic},
		{"truncated", "lab", 5, io.ErrUnexpectedEOF},
		{"img", "labtrailer", 5, ErrTrailingData},
		{"missing", "lab", 5, fs.ErrNotExist},
		{"img", "missing", 5, fs.ErrNotExist},
	} {
		if _, err := LoadIDXPair(p(c.img), p(c.lab), c.classes); !errors.Is(err, c.want) {
			t.Errorf("LoadIDXPair(%s, %s, %d) = %v, want %v", c.img, c.lab, c.classes, err, c.want)
		}
	}
}

func TestLoadFashionMNISTErrors(t *testing.T) {
	if _, _, err := LoadFashionMNIST(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty dir: got %v, want fs.ErrNotExist", err)
	}
	// Well-formed files of the wrong size are not Fashion-MNIST.
	img := encodeIDX(TypeUint8, []uint32{2, 28, 28}, seq(2*28*28))
	lab := encodeIDX(TypeUint8, []uint32{2}, []byte{9, 0})
	dir := writeFiles(t, map[string][]byte{
		"train-images-idx3-ubyte":    img,
		"train-labels-idx1-ubyte.gz": gz(lab),
		"t10k-images-idx3-ubyte.gz":  gz(img),
		"t10k-labels-idx1-ubyte":     lab,
	})
	if _, _, err := LoadFashionMNIST(dir); !errors.Is(err, ErrBadShape) {
		t.Errorf("tiny files: got %v, want ErrBadShape", err)
	}
}
