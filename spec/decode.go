package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// MaxSpecBytes bounds the JSON form of a spec. Real specs are ~1–10 kB.
const MaxSpecBytes = 64 << 10

// Decode parses and validates the JSON form of a spec. It rejects inputs
// over MaxSpecBytes, unknown fields, non-integer numbers and trailing data,
// then runs Validate; nothing proportional to a dimension in the spec is
// allocated before Validate has bounded it.
//
// The version and the first layer's op select the form the document is
// read against (SPEC.md §3): a version-2 document whose first layer is an
// embedding is a GPT, with the GPT's field set; any other is an MLP, with
// version 1's. A field of the other form is an unknown key.
func Decode(data []byte) (*Spec, error) {
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", ErrMalformed, len(data), MaxSpecBytes)
	}
	s, err := decodeForm(data)
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Read decodes a spec from r, reading at most MaxSpecBytes+1 bytes.
func Read(r io.Reader) (*Spec, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return Decode(data)
}

// JSON returns the indented, human-editable form of s: the fields of its
// form (an MLP's or a GPT's), which Decode reads back.
func (s *Spec) JSON() ([]byte, error) {
	form, err := s.form()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(form); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
