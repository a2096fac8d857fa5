// Package wirecodec holds the primitives of the protocol core's canonical
// binary messages (protocol/core/dispute's and protocol/core/inferdispute's):
// an Encoder and a Decoder whose first failure sticks.
//
// A message is a tag, then fields: raw bytes, unsigned and signed varints,
// 32-byte digests, 0/1 flags, and counted lists. Decoding is canonical:
// varints must be minimal, flags 0 or 1, and nothing may trail. Every
// count is bounded by a limit and by the bytes that remain before anything
// is allocated, so a message of n bytes allocates O(n) at most.
//
// The packages that use it keep their own tags, limits and error
// sentinels; the bytes they write are theirs, this package only spells
// the primitives once.
package wirecodec

import (
	"encoding/binary"
	"fmt"

	"github.com/beluga-compute/beluga/spec/merkle"
)

// Encoder appends to a message; the first failure sticks and Done
// returns it.
type Encoder struct {
	b      []byte
	err    error
	prefix string
	max    int
}

// NewEncoder starts a message with tag. Failures read errPrefix (say
// "dispute: encode: ") then their own words; Done fails a message of more
// than maxBytes bytes.
func NewEncoder(tag, errPrefix string, maxBytes int) Encoder {
	return Encoder{b: []byte(tag), prefix: errPrefix, max: maxBytes}
}

// Fail records a failure unless one is recorded already.
func (e *Encoder) Fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(e.prefix+format, args...)
	}
}

// Done returns the message, or the first failure.
func (e *Encoder) Done() ([]byte, error) {
	if e.err == nil && len(e.b) > e.max {
		e.Fail("%d bytes, more than %d", len(e.b), e.max)
	}
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// Raw appends b as it is.
func (e *Encoder) Raw(b []byte) { e.b = append(e.b, b...) }

// Byte appends one byte.
func (e *Encoder) Byte(v byte) { e.b = append(e.b, v) }

// Uvarint appends v as an unsigned varint.
func (e *Encoder) Uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

// Varint appends v as a signed (zig-zag) varint.
func (e *Encoder) Varint(v int64) { e.b = binary.AppendVarint(e.b, v) }

// Bytes appends b's length as a uvarint, then b.
func (e *Encoder) Bytes(b []byte) {
	e.Uvarint(uint64(len(b)))
	e.b = append(e.b, b...)
}

// Digest appends d's 32 bytes.
func (e *Encoder) Digest(d merkle.Digest) { e.b = append(e.b, d[:]...) }

// Flag appends 1 for true, 0 for false.
func (e *Encoder) Flag(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// Digests appends a uvarint count, then the digests; it fails when there
// are more than max.
func (e *Encoder) Digests(h []merkle.Digest, max int) {
	if len(h) > max {
		e.Fail("%d hashes, more than %d", len(h), max)
	}
	e.Uvarint(uint64(len(h)))
	for _, d := range h {
		e.Digest(d)
	}
}

// Decoder reads a message; the first failure sticks and later reads
// return zero values.
type Decoder struct {
	b         []byte
	err       error
	malformed error
}

// NewDecoder checks data's size (at most maxBytes) and tag, and returns a
// Decoder of what follows the tag. Its errors, and every failure of the
// Decoder, wrap malformed.
func NewDecoder(data []byte, tag string, maxBytes int, malformed error) (Decoder, error) {
	if len(data) > maxBytes {
		return Decoder{}, fmt.Errorf("%w: %d bytes, more than %d", malformed, len(data), maxBytes)
	}
	if len(data) < len(tag) || string(data[:len(tag)]) != tag {
		return Decoder{}, fmt.Errorf("%w: not a %q message", malformed, tag[:len(tag)-1])
	}
	return Decoder{b: data[len(tag):], malformed: malformed}, nil
}

// HasTag reports whether data starts with tag.
func HasTag(data []byte, tag string) bool {
	return len(data) >= len(tag) && string(data[:len(tag)]) == tag
}

// Fail records a failure unless one is recorded already, and drops what
// is left to read.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{d.malformed}, args...)...)
	}
	d.b = nil
}

// Err returns the first failure, if any.
func (d *Decoder) Err() error { return d.err }

// Left returns how many bytes are left to read.
func (d *Decoder) Left() int { return len(d.b) }

// Done fails on trailing bytes and returns the first failure.
func (d *Decoder) Done() error {
	if d.err == nil && len(d.b) > 0 {
		d.Fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// Raw reads n bytes (zeros once failed). The slice aliases the message.
func (d *Decoder) Raw(n int) []byte {
	if len(d.b) < n {
		d.Fail("truncated")
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// Uvarint reads a minimal unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if !d.varint(n, len(binary.AppendUvarint(nil, v))) {
		return 0
	}
	return v
}

// Varint reads a minimal signed varint.
func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.b)
	if !d.varint(n, len(binary.AppendVarint(nil, v))) {
		return 0
	}
	return v
}

// varint consumes a varint read in n bytes (n ≤ 0: none could be read)
// whose minimal encoding takes minimal bytes; it reports whether it was
// sound.
func (d *Decoder) varint(n, minimal int) bool {
	if n <= 0 {
		d.Fail("bad varint")
		return false
	}
	if n != minimal {
		d.Fail("non-minimal varint")
		return false
	}
	d.b = d.b[n:]
	return true
}

// Count reads a count of at most max items of at least minBytes each.
func (d *Decoder) Count(max, minBytes int) int {
	v := d.Uvarint()
	if v > uint64(max) || v*uint64(minBytes) > uint64(len(d.b)) {
		d.Fail("count %d (limit %d, %d bytes left)", v, max, len(d.b))
		return 0
	}
	return int(v)
}

// Bytes reads a length-prefixed byte string of at most max bytes. The
// slice aliases the message.
func (d *Decoder) Bytes(max int) []byte { return d.Raw(d.Count(max, 1)) }

// Byte reads one byte.
func (d *Decoder) Byte() byte { return d.Raw(1)[0] }

// Digest reads 32 bytes.
func (d *Decoder) Digest() merkle.Digest { return merkle.Digest(d.Raw(len(merkle.Digest{}))) }

// Flag reads a byte that must be 0 or 1.
func (d *Decoder) Flag() bool {
	b := d.Byte()
	if b > 1 {
		d.Fail("flag %d", b)
	}
	return b == 1
}

// Digests reads a count of at most max, then the digests (nil for none).
func (d *Decoder) Digests(max int) []merkle.Digest {
	n := d.Count(max, len(merkle.Digest{}))
	if n == 0 {
		return nil
	}
	h := make([]merkle.Digest, n)
	for i := range h {
		h[i] = d.Digest()
	}
	return h
}
