package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
)

// Canonical returns the canonical encoding of s (SPEC.md §"Canonical
// encoding and job ID"): the JSON object of its form (an MLP's or a
// GPT's) with every field present except an MLP's optional data.synthetic,
// data.test and a relu's out, keys sorted byte-wise at every level, no
// insignificant whitespace, integers in shortest decimal form. Validate
// restricts strings to printable ASCII without '"' or '\', so no string
// needs escaping; the result equals the JSON Canonicalization Scheme
// (RFC 8785) output for the same object. A spec holding a field of the
// other form (a GPT field on an MLP, or the reverse) is refused.
func (s *Spec) Canonical() ([]byte, error) {
	form, err := s.form()
	if err != nil {
		return nil, fmt.Errorf("canonical spec: %w", err)
	}
	raw, err := json.Marshal(form)
	if err != nil {
		return nil, fmt.Errorf("canonical spec: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("canonical spec: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// encoding/json writes map keys sorted and no whitespace.
	if err := enc.Encode(tree); err != nil {
		return nil, fmt.Errorf("canonical spec: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// JobID identifies a job: SHA-256("beluga/job/v1" || 0x00 || Canonical())
// for a version-1 spec, SHA-256("beluga/job/v2" || 0x00 || Canonical())
// for a version-2 spec.
type JobID [sha256.Size]byte

// String returns the ID in lower-case hex.
func (id JobID) String() string { return hex.EncodeToString(id[:]) }

// ParseJobID parses 64 hex digits.
func ParseJobID(s string) (JobID, error) {
	var id JobID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: job ID must be 64 hex digits", ErrMalformed)
	}
	copy(id[:], b)
	return id, nil
}

// ID returns the job ID of s.
func (s *Spec) ID() (JobID, error) {
	c, err := s.Canonical()
	if err != nil {
		return JobID{}, err
	}
	h := sha256.New()
	h.Write([]byte(jobTag(s.Version)))
	h.Write(c)
	var id JobID
	h.Sum(id[:0])
	return id, nil
}

// jobTag is the domain tag of a version's job IDs, with its 0x00
// separator: version 2's for version 2, version 1's for any other (which
// Validate refuses unless it is 1).
func jobTag(version int) string {
	if version == Version2 {
		return "beluga/job/v2\x00"
	}
	return "beluga/job/v1\x00"
}

// LRAt returns the learning-rate numerator at step t (0-based): linear
// between knots, constant after the last one. With knots (s0, v0), (s1, v1)
// and s0 ≤ t < s1 it is v0 + ⌊(v1-v0)(t-s0)/(s1-s0)⌋ when v1 ≥ v0, else
// v0 - ⌊(v0-v1)(t-s0)/(s1-s0)⌋.
func (o *Optimizer) LRAt(t int64) int64 {
	pts := o.LR
	for i := len(pts) - 1; i > 0; i-- {
		if t < pts[i].Step {
			continue
		}
		if i == len(pts)-1 {
			return pts[i].Value
		}
		return interp(pts[i], pts[i+1], t)
	}
	if len(pts) == 1 || t < 0 {
		return pts[0].Value
	}
	return interp(pts[0], pts[1], t)
}

// interp evaluates the segment a→b at a.Step ≤ t < b.Step exactly: the
// product |Δv|·(t-a.Step) < 2^31·2^40 needs 128 bits.
func interp(a, b LRPoint, t int64) int64 {
	d := b.Value - a.Value
	if d < 0 {
		d = -d
	}
	hi, lo := bits.Mul64(uint64(d), uint64(t-a.Step))
	q, _ := bits.Div64(hi, lo, uint64(b.Step-a.Step)) // hi < span since the quotient < d
	if b.Value < a.Value {
		return a.Value - int64(q)
	}
	return a.Value + int64(q)
}
