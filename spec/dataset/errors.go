package dataset

import "errors"

// Errors returned by this package; test them with errors.Is.
var (
	// ErrBadMagic: the input does not start with the IDX magic 0x00 0x00.
	ErrBadMagic = errors.New("dataset: bad IDX magic")
	// ErrUnsupportedType: the IDX element type is not 0x08 (uint8).
	ErrUnsupportedType = errors.New("dataset: unsupported IDX element type")
	// ErrBadDims: the IDX header has zero dimensions or more than allowed.
	ErrBadDims = errors.New("dataset: bad IDX dimension count")
	// ErrTooLarge: the IDX header announces more elements than allowed.
	ErrTooLarge = errors.New("dataset: IDX data too large")
	// ErrTruncated: the input ended early. Errors that wrap it also wrap
	// io.ErrUnexpectedEOF.
	ErrTruncated = errors.New("dataset: truncated IDX data")
	// ErrTrailingData: bytes follow the IDX data (or the gzip member).
	ErrTrailingData = errors.New("dataset: trailing data after IDX")
	// ErrCorruptGzip: the gzip stream is malformed or fails its checksum.
	ErrCorruptGzip = errors.New("dataset: corrupt gzip stream")
	// ErrBadShape: IDX files do not have the shape a dataset needs.
	ErrBadShape = errors.New("dataset: bad dataset shape")
	// ErrCountMismatch: image and label files hold different sample counts.
	ErrCountMismatch = errors.New("dataset: image and label counts differ")
	// ErrBadLabel: a label is not below the class count.
	ErrBadLabel = errors.New("dataset: label out of range")
	// ErrBadArgument: an argument is outside its documented range.
	ErrBadArgument = errors.New("dataset: invalid argument")
	// ErrBadSample: a sample does not match a commitment.
	ErrBadSample = errors.New("dataset: sample does not match commitment")
)
