package inferdispute

import (
	"encoding/binary"
	"fmt"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// Message tags.
const (
	claimTag    = "beluga/inference-dispute/claim/v1\x00"
	evidenceTag = "beluga/inference-dispute/evidence/v1\x00"
)

// Limits of the encodings.
const (
	// MaxMessageBytes bounds every message: evidence opening a forward
	// operator's inputs at the largest context (a 4,096-row attention).
	MaxMessageBytes = dispute.MaxMessageBytes
	// MaxClaimHashes bounds each list of a claim: a 64-block GPT's
	// forward graph has under 1,500 tensors, its moments 2·(3 + 4·64).
	MaxClaimHashes = 1 << 12
	// MaxOpInputs bounds an operator's opened inputs (at most 6 here).
	MaxOpInputs = 16
)

// MarshalBinary encodes c: the tag, then the hashes and the moments, each
// as a uvarint count and 32-byte digests.
func (c Claim) MarshalBinary() ([]byte, error) {
	e := &enc{b: []byte(claimTag)}
	e.claim(c)
	return e.done()
}

// UnmarshalBinary decodes a claim.
func (c *Claim) UnmarshalBinary(data []byte) error {
	d, err := newDec(data, claimTag)
	if err != nil {
		return err
	}
	v := d.claim()
	if err := d.done(); err != nil {
		return err
	}
	*c = v
	return nil
}

// MarshalBinary encodes ev: the tag, the case as an inference.Record
// (JSON, length-prefixed), both claims, the operator (a signed varint,
// −1 for none), its opened inputs (name, then dispute.MarshalTensor's
// bytes, each length-prefixed), the loser and the reason.
func (ev *Evidence) MarshalBinary() ([]byte, error) {
	e := &enc{b: []byte(evidenceTag)}
	if ev.Case.Request == nil || ev.Case.Receipt == nil {
		e.fail("no case")
		return e.done()
	}
	e.bytes(inference.NewRecord("", ev.Case.Request, ev.Case.Output, ev.Case.Receipt).Marshal())
	e.claim(ev.Solver)
	e.claim(ev.Verifier)
	e.b = binary.AppendVarint(e.b, int64(ev.Op))
	if len(ev.Inputs) > MaxOpInputs {
		e.fail("%d inputs", len(ev.Inputs))
	}
	e.u(uint64(len(ev.Inputs)))
	for _, in := range ev.Inputs {
		e.bytes([]byte(in.Name))
		t, err := dispute.MarshalTensor(in.Tensor)
		if err != nil {
			e.fail("input %s: %v", in.Name, err)
		}
		e.bytes(t)
	}
	e.b = append(e.b, byte(ev.Verdict.Loser), byte(ev.Verdict.Reason))
	return e.done()
}

// UnmarshalBinary decodes evidence (DecodeEvidence).
func (ev *Evidence) UnmarshalBinary(data []byte) error {
	v, err := DecodeEvidence(data)
	if err != nil {
		return err
	}
	*ev = *v
	return nil
}

// DecodeEvidence parses evidence: the outside bytes a third party
// re-checks. It checks the encoding, not the dispute (Check does).
func DecodeEvidence(data []byte) (*Evidence, error) {
	d, err := newDec(data, evidenceTag)
	if err != nil {
		return nil, err
	}
	ev := &Evidence{}
	rec := d.bytes(inference.MaxRecordBytes)
	if d.err == nil {
		req, out, rc, err := inference.DecodeRecord(rec)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		ev.Case = Case{Request: req, Output: out, Receipt: rc}
	}
	ev.Solver, ev.Verifier = d.claim(), d.claim()
	op := d.varint()
	if op < NoOp || op > 1<<20 {
		d.fail("operator %d", op)
	}
	ev.Op = int(op)
	n := d.count(MaxOpInputs, 2)
	for range n {
		name := string(d.bytes(dispute.MaxNameBytes))
		raw := d.bytes(MaxMessageBytes)
		if d.err != nil {
			break
		}
		t, err := dispute.UnmarshalTensor(raw)
		if err != nil {
			d.fail("input %q: %v", name, err)
			break
		}
		ev.Inputs = append(ev.Inputs, dispute.NamedTensor{Name: name, Tensor: t})
	}
	lr := d.raw(2)
	ev.Verdict = Verdict{Loser: dispute.Loser(lr[0]), Reason: Reason(lr[1])}
	if err := d.done(); err != nil {
		return nil, err
	}
	if l, r := ev.Verdict.Loser, ev.Verdict.Reason; l < dispute.LoserSolver || l > dispute.LoserBoth || r < ReasonReceipt || r > ReasonOp {
		return nil, fmt.Errorf("%w: verdict %v", ErrMalformed, ev.Verdict)
	}
	return ev, nil
}

// MarshalTensor encodes an opened tensor (dispute.MarshalTensor's
// encoding).
func MarshalTensor(t opgraph.Tensor) ([]byte, error) { return dispute.MarshalTensor(t) }

// UnmarshalTensor decodes an opened tensor; its shape and values are only
// checked against the graph when it is used.
func UnmarshalTensor(b []byte) (opgraph.Tensor, error) { return dispute.UnmarshalTensor(b) }

// enc appends to a message; the first failure sticks.
type enc struct {
	b   []byte
	err error
}

func (e *enc) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("inferdispute: encode: "+format, args...)
	}
}

func (e *enc) done() ([]byte, error) {
	if e.err == nil && len(e.b) > MaxMessageBytes {
		e.fail("%d bytes, more than %d", len(e.b), MaxMessageBytes)
	}
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

func (e *enc) u(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

func (e *enc) bytes(b []byte) {
	e.u(uint64(len(b)))
	e.b = append(e.b, b...)
}

func (e *enc) hashes(h []merkle.Digest) {
	if len(h) > MaxClaimHashes {
		e.fail("%d hashes, more than %d", len(h), MaxClaimHashes)
	}
	e.u(uint64(len(h)))
	for _, d := range h {
		e.b = append(e.b, d[:]...)
	}
}

func (e *enc) claim(c Claim) { e.hashes(c.Hashes); e.hashes(c.Moments) }

// dec reads a message; the first failure sticks.
type dec struct {
	b   []byte
	err error
}

func newDec(data []byte, tag string) (*dec, error) {
	if len(data) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(data), MaxMessageBytes)
	}
	if len(data) < len(tag) || string(data[:len(tag)]) != tag {
		return nil, fmt.Errorf("%w: not a %q message", ErrMalformed, tag[:len(tag)-1])
	}
	return &dec{b: data[len(tag):]}, nil
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	d.b = nil
}

func (d *dec) done() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

func (d *dec) raw(n int) []byte {
	if len(d.b) < n {
		d.fail("truncated")
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 || n != len(binary.AppendVarint(nil, v)) {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of at most max items of at least minBytes each.
func (d *dec) count(max, minBytes int) int {
	v := d.u()
	if v > uint64(max) || v*uint64(minBytes) > uint64(len(d.b)) {
		d.fail("count %d (limit %d, %d bytes left)", v, max, len(d.b))
		return 0
	}
	return int(v)
}

// bytes reads a length-prefixed byte string of at most max bytes.
func (d *dec) bytes(max int) []byte { return d.raw(d.count(max, 1)) }

func (d *dec) hashes() []merkle.Digest {
	n := d.count(MaxClaimHashes, len(merkle.Digest{}))
	if n == 0 {
		return nil
	}
	h := make([]merkle.Digest, n)
	for i := range h {
		h[i] = merkle.Digest(d.raw(len(merkle.Digest{})))
	}
	return h
}

func (d *dec) claim() Claim { return Claim{Hashes: d.hashes(), Moments: d.hashes()} }
