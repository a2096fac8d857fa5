package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/beluga-compute/beluga/spec/strictjson"
)

// MaxSpecBytes bounds the JSON form of a spec. Real specs are ~1–10 kB.
const MaxSpecBytes = 64 << 10

// Decode parses and validates the JSON form of a spec. It rejects inputs
// over MaxSpecBytes, unknown fields, non-integer numbers and trailing data,
// then runs Validate; nothing proportional to a dimension in the spec is
// allocated before Validate has bounded it.
func Decode(data []byte) (*Spec, error) {
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", ErrMalformed, len(data), MaxSpecBytes)
	}
	var s Spec
	if err := strictjson.Decode(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Read decodes a spec from r, reading at most MaxSpecBytes+1 bytes.
func Read(r io.Reader) (*Spec, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return Decode(data)
}

// JSON returns the indented, human-editable form of s.
func (s *Spec) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
