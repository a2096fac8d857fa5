package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// IDX element type codes. Only TypeUint8 is supported.
const TypeUint8 = 0x08

// Defaults for Limits fields left at zero.
const (
	DefaultMaxDims     = 8
	DefaultMaxElements = 1 << 30
)

// Limits bound what ReadIDX accepts; they are checked against the header
// before anything is allocated. A zero field takes its default.
type Limits struct {
	// MaxDims bounds the dimension count (default DefaultMaxDims; the
	// format itself allows 255).
	MaxDims int
	// MaxElements bounds the product of the dimensions, which for uint8
	// data is the payload size in bytes (default DefaultMaxElements).
	MaxElements int
}

func (l Limits) withDefaults() Limits {
	if l.MaxDims <= 0 {
		l.MaxDims = DefaultMaxDims
	}
	if l.MaxElements <= 0 {
		l.MaxElements = DefaultMaxElements
	}
	return l
}

// IDX is a decoded IDX file of uint8 elements.
type IDX struct {
	// Dims are the dimension sizes, outermost first (for images: count,
	// rows, columns).
	Dims []int
	// Data holds the product of Dims elements, last dimension fastest.
	Data []uint8
}

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = [2]byte{0x1f, 0x8b}

// readChunk is the first allocation for IDX data; the buffer then doubles
// as data arrives, so a header that lies about the size costs little.
const readChunk = 64 << 10

// ReadIDX decodes one IDX file from r: the magic 0x00 0x00, the element type
// (which must be TypeUint8), the dimension count n, n big-endian uint32
// sizes, then the elements. It reads r to the end and rejects trailing bytes.
//
// If r starts with the gzip magic 0x1f 0x8b it is decompressed first; the
// gzip stream must be a single member, and bytes after it are trailing data.
//
// Errors wrap ErrBadMagic, ErrUnsupportedType, ErrBadDims, ErrTooLarge,
// ErrTruncated (with io.ErrUnexpectedEOF), ErrTrailingData or ErrCorruptGzip
// (with the gzip package's error; a cut-short gzip stream also wraps
// io.ErrUnexpectedEOF). Errors from r itself are wrapped unchanged.
func ReadIDX(r io.Reader, lim Limits) (IDX, error) {
	lim = lim.withDefaults()
	br := bufio.NewReader(r)
	var src io.Reader = br
	var gz *gzip.Reader
	if m, _ := br.Peek(2); len(m) == 2 && [2]byte(m) == gzipMagic {
		var err error
		if gz, err = gzip.NewReader(br); err != nil {
			return IDX{}, fmt.Errorf("%w: %w", ErrCorruptGzip, err)
		}
		gz.Multistream(false)
		src = gzipErrors{gz}
	}

	var hdr [4]byte
	if err := readFull(src, hdr[:], "header"); err != nil {
		return IDX{}, err
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return IDX{}, fmt.Errorf("%w: % x", ErrBadMagic, hdr[:2])
	}
	if hdr[2] != TypeUint8 {
		return IDX{}, fmt.Errorf("%w: 0x%02x, want 0x%02x", ErrUnsupportedType, hdr[2], TypeUint8)
	}
	ndims := int(hdr[3])
	if ndims == 0 || ndims > lim.MaxDims {
		return IDX{}, fmt.Errorf("%w: %d, want 1..%d", ErrBadDims, ndims, lim.MaxDims)
	}
	var raw [4 * 255]byte
	if err := readFull(src, raw[:4*ndims], "dimensions"); err != nil {
		return IDX{}, err
	}
	dims := make([]int, ndims)
	for i := range dims {
		d := binary.BigEndian.Uint32(raw[4*i:])
		if uint64(d) > math.MaxInt { // only where int has 32 bits
			return IDX{}, fmt.Errorf("%w: dimension %d does not fit in int", ErrTooLarge, d)
		}
		dims[i] = int(d)
	}
	total, err := product(dims, lim.MaxElements)
	if err != nil {
		return IDX{}, err
	}

	data := make([]uint8, 0, min(total, readChunk))
	for len(data) < total {
		want := min(total-len(data), max(len(data), readChunk))
		data = slices.Grow(data, want)
		n, err := io.ReadFull(src, data[len(data):len(data)+want])
		data = data[:len(data)+n]
		if err != nil {
			return IDX{}, truncated(err, fmt.Sprintf("data: got %d of %d bytes", len(data), total))
		}
	}

	// The IDX must end here, and so must the gzip member around it.
	var one [1]byte
	if n, err := io.ReadFull(src, one[:]); n != 0 {
		return IDX{}, fmt.Errorf("%w: after %d data bytes", ErrTrailingData, total)
	} else if err != io.EOF {
		return IDX{}, fmt.Errorf("read IDX end: %w", err)
	}
	if gz != nil {
		if _, err := br.ReadByte(); err == nil {
			return IDX{}, fmt.Errorf("%w: after gzip member", ErrTrailingData)
		} else if err != io.EOF {
			return IDX{}, fmt.Errorf("read after gzip member: %w", err)
		}
	}
	return IDX{Dims: dims, Data: data}, nil
}

// product returns the product of dims, or ErrTooLarge if it exceeds limit.
// Any zero dimension makes the product zero.
func product(dims []int, limit int) (int, error) {
	if slices.Contains(dims, 0) {
		return 0, nil
	}
	total := 1
	for _, d := range dims {
		if total > limit/d {
			return 0, fmt.Errorf("%w: dimensions %v exceed %d elements", ErrTooLarge, dims, limit)
		}
		total *= d
	}
	return total, nil
}

// readFull fills p from r, reporting a short read as ErrTruncated.
func readFull(r io.Reader, p []byte, what string) error {
	if _, err := io.ReadFull(r, p); err != nil {
		return truncated(err, what)
	}
	return nil
}

// truncated turns the end-of-input errors of io.ReadFull into ErrTruncated
// and passes any other error through with context.
func truncated(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: %s: %w", ErrTruncated, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("read IDX %s: %w", what, err)
}

// gzipErrors marks every error of a gzip.Reader but io.EOF as ErrCorruptGzip,
// so that a cut-short or damaged stream is told apart from a short IDX.
type gzipErrors struct{ z *gzip.Reader }

func (g gzipErrors) Read(p []byte) (int, error) {
	n, err := g.z.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", ErrCorruptGzip, err)
	}
	return n, err
}

// ReadIDXFile reads the IDX file at path with ReadIDX.
func ReadIDXFile(path string, lim Limits) (IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return IDX{}, err
	}
	defer f.Close()
	idx, err := ReadIDX(f, lim)
	if err != nil {
		return IDX{}, fmt.Errorf("%s: %w", path, err)
	}
	return idx, nil
}

// LoadIDXPair builds a dataset from an image file (dimensions N × d1 × … ×
// dk, k ≥ 1, giving d1·…·dk features per sample, row-major) and a label file
// (dimension N), each read with the default Limits. Both counts must agree
// (ErrCountMismatch) and every label must be below classes (ErrBadLabel).
// The dataset's Name is the image file's base name.
func LoadIDXPair(imagesPath, labelsPath string, classes int) (*Dataset, error) {
	if classes < MinClasses || classes > MaxClasses {
		return nil, fmt.Errorf("%w: %d classes, want %d..%d", ErrBadArgument, classes, MinClasses, MaxClasses)
	}
	images, err := ReadIDXFile(imagesPath, Limits{})
	if err != nil {
		return nil, err
	}
	if len(images.Dims) < 2 {
		return nil, fmt.Errorf("%w: %s: images have dimensions %v, want N × features", ErrBadShape, imagesPath, images.Dims)
	}
	// With N = 0 the header check did not bound the other dimensions.
	features, err := product(images.Dims[1:], DefaultMaxElements)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imagesPath, err)
	}
	labels, err := ReadIDXFile(labelsPath, Limits{})
	if err != nil {
		return nil, err
	}
	if len(labels.Dims) != 1 {
		return nil, fmt.Errorf("%w: %s: labels have dimensions %v, want N", ErrBadShape, labelsPath, labels.Dims)
	}
	if images.Dims[0] != labels.Dims[0] {
		return nil, fmt.Errorf("%w: %d images, %d labels", ErrCountMismatch, images.Dims[0], labels.Dims[0])
	}
	ds, err := New(filepath.Base(imagesPath), features, classes, images.Data, labels.Data)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", imagesPath, labelsPath, err)
	}
	return ds, nil
}

// DefaultFashionMNISTDir is where Debian's dataset-fashion-mnist package
// installs the gzip-compressed IDX files.
const DefaultFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// Fashion-MNIST's fixed shape.
const (
	FashionMNISTRows    = 28
	FashionMNISTCols    = 28
	FashionMNISTClasses = 10
	FashionMNISTTrain   = 60000
	FashionMNISTTest    = 10000
)

// LoadFashionMNIST loads Fashion-MNIST from dir, which must hold
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
// and t10k-labels-idx1-ubyte, each either raw or with a .gz suffix (the raw
// file wins if both exist). Samples have 784 features, the pixels row-major;
// labels are 0..9. It checks the canonical shape: 60000 training and 10000
// test images of 28 × 28. A missing file gives an error wrapping
// fs.ErrNotExist.
func LoadFashionMNIST(dir string) (train, test *Dataset, err error) {
	load := func(prefix string, count int) (*Dataset, error) {
		images, err := findIDX(dir, prefix+"-images-idx3-ubyte")
		if err != nil {
			return nil, err
		}
		labels, err := findIDX(dir, prefix+"-labels-idx1-ubyte")
		if err != nil {
			return nil, err
		}
		ds, err := LoadIDXPair(images, labels, FashionMNISTClasses)
		if err != nil {
			return nil, err
		}
		if ds.Len() != count || ds.Features() != FashionMNISTRows*FashionMNISTCols {
			return nil, fmt.Errorf("%w: %s: %d samples of %d features, want %d of %d",
				ErrBadShape, images, ds.Len(), ds.Features(), count, FashionMNISTRows*FashionMNISTCols)
		}
		ds.Name = "fashion-mnist/" + prefix
		return ds, nil
	}
	if train, err = load("train", FashionMNISTTrain); err != nil {
		return nil, nil, fmt.Errorf("load Fashion-MNIST: %w", err)
	}
	if test, err = load("t10k", FashionMNISTTest); err != nil {
		return nil, nil, fmt.Errorf("load Fashion-MNIST: %w", err)
	}
	return train, test, nil
}

// findIDX returns dir/name if it exists, else dir/name.gz.
func findIDX(dir, name string) (string, error) {
	for _, p := range []string{filepath.Join(dir, name), filepath.Join(dir, name+".gz")} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s(.gz) in %s: %w", name, dir, fs.ErrNotExist)
}
