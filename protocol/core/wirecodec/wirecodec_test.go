package wirecodec

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec/merkle"
)

var errBad = errors.New("test: malformed")

const tag = "beluga/test/v1\x00"

// TestRoundTrip: every primitive reads back what it wrote, in order, and
// the message is the tag then the fields byte for byte.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	e := NewEncoder(tag, "test: encode: ", 1<<10)
	e.Raw([]byte{7, 8})
	e.Byte(9)
	e.Uvarint(300)
	e.Varint(-2)
	e.Bytes([]byte("ab"))
	e.Flag(true)
	e.Flag(false)
	e.Digests([]merkle.Digest{{1}, {2}}, 2)
	b, err := e.Done()
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte(tag), 7, 8, 9, 0xac, 0x02, 0x03, 2, 'a', 'b', 1, 0, 2)
	if !bytes.HasPrefix(b, want) || len(b) != len(want)+64 {
		t.Fatalf("encoded %x, want %x and two digests", b, want)
	}
	d, err := NewDecoder(b, tag, 1<<10, errBad)
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Raw(2); r[0] != 7 || r[1] != 8 || d.Byte() != 9 || d.Uvarint() != 300 || d.Varint() != -2 ||
		string(d.Bytes(2)) != "ab" || !d.Flag() || d.Flag() {
		t.Fatal("fields read back differently")
	}
	if h := d.Digests(2); len(h) != 2 || h[0] != (merkle.Digest{1}) || h[1] != (merkle.Digest{2}) {
		t.Fatalf("digests %v", h)
	}
	if err := d.Done(); err != nil {
		t.Fatal(err)
	}
}

// TestDecoderRejects: non-canonical or out-of-bounds input fails with the
// caller's sentinel, and the first failure sticks.
func TestDecoderRejects(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		body []byte
		read func(d *Decoder)
		want string
	}{
		{"non-minimal uvarint", []byte{0x80, 0x00}, func(d *Decoder) { d.Uvarint() }, "non-minimal varint"},
		{"non-minimal varint", []byte{0x80, 0x00}, func(d *Decoder) { d.Varint() }, "non-minimal varint"},
		{"truncated varint", []byte{0x80}, func(d *Decoder) { d.Uvarint() }, "bad varint"},
		{"flag", []byte{2}, func(d *Decoder) { d.Flag() }, "flag 2"},
		{"count over limit", []byte{3, 0, 0, 0}, func(d *Decoder) { d.Count(2, 1) }, "count 3"},
		{"count over bytes", []byte{2, 0}, func(d *Decoder) { d.Digests(9) }, "count 2"},
		{"truncated", []byte{1}, func(d *Decoder) { d.Raw(2) }, "truncated"},
		{"trailing", []byte{1, 2}, func(d *Decoder) { d.Byte() }, "1 trailing bytes"},
		{"sticky", []byte{2, 0}, func(d *Decoder) { d.Flag(); d.Raw(5) }, "flag 2"},
	} {
		d, err := NewDecoder(append([]byte(tag), c.body...), tag, 1<<10, errBad)
		if err != nil {
			t.Fatal(err)
		}
		c.read(&d)
		err = d.Done()
		if !errors.Is(err, errBad) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q wrapping the sentinel", c.name, err, c.want)
		}
	}
	if _, err := NewDecoder([]byte("beluga/other/v1\x00"), tag, 1<<10, errBad); !errors.Is(err, errBad) {
		t.Errorf("wrong tag: %v", err)
	}
	if _, err := NewDecoder(make([]byte, 33), tag, 32, errBad); !errors.Is(err, errBad) {
		t.Errorf("oversized: %v", err)
	}
}

// TestEncoderFails: the first failure sticks, carries the caller's
// prefix, and so does an oversized message.
func TestEncoderFails(t *testing.T) {
	t.Parallel()
	e := NewEncoder(tag, "test: encode: ", 1<<10)
	e.Digests(make([]merkle.Digest, 3), 2)
	e.Fail("later")
	if _, err := e.Done(); err == nil || err.Error() != "test: encode: 3 hashes, more than 2" {
		t.Errorf("got %v", err)
	}
	e = NewEncoder(tag, "test: encode: ", len(tag)+1)
	e.Raw([]byte{1, 2})
	if _, err := e.Done(); err == nil || !strings.HasPrefix(err.Error(), "test: encode: ") {
		t.Errorf("oversized: %v", err)
	}
}

// FuzzDecoder: decoding arbitrary bytes never panics, and what decodes
// re-encodes to the same bytes (the encoding is canonical).
func FuzzDecoder(f *testing.F) {
	e := NewEncoder(tag, "test: encode: ", 1<<12)
	e.Uvarint(1 << 20)
	e.Varint(-1 << 40)
	e.Bytes([]byte("name"))
	e.Flag(true)
	e.Digests([]merkle.Digest{{3}}, 4)
	b, err := e.Done()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := NewDecoder(data, tag, 1<<12, errBad)
		if err != nil {
			return
		}
		u, v, s, fl, h := d.Uvarint(), d.Varint(), d.Bytes(64), d.Flag(), d.Digests(4)
		if d.Done() != nil {
			return
		}
		e := NewEncoder(tag, "test: encode: ", 1<<12)
		e.Uvarint(u)
		e.Varint(v)
		e.Bytes(s)
		e.Flag(fl)
		e.Digests(h, 4)
		if b, err := e.Done(); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("re-encodes as %x (%v), want %x", b, err, data)
		}
	})
}
