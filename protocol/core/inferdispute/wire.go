package inferdispute

import (
	"fmt"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/core/wirecodec"
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
	e := newEnc(claimTag)
	e.claim(c)
	return e.Done()
}

// UnmarshalBinary decodes a claim.
func (c *Claim) UnmarshalBinary(data []byte) error {
	d, err := newDec(data, claimTag)
	if err != nil {
		return err
	}
	v := d.claim()
	if err := d.Done(); err != nil {
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
	e := newEnc(evidenceTag)
	if ev.Case.Request == nil || ev.Case.Receipt == nil {
		e.Fail("no case")
		return e.Done()
	}
	e.Bytes(inference.NewRecord("", ev.Case.Request, ev.Case.Output, ev.Case.Receipt).Marshal())
	e.claim(ev.Solver)
	e.claim(ev.Verifier)
	e.Varint(int64(ev.Op))
	if len(ev.Inputs) > MaxOpInputs {
		e.Fail("%d inputs", len(ev.Inputs))
	}
	e.Uvarint(uint64(len(ev.Inputs)))
	for _, in := range ev.Inputs {
		e.Bytes([]byte(in.Name))
		t, err := dispute.MarshalTensor(in.Tensor)
		if err != nil {
			e.Fail("input %s: %v", in.Name, err)
		}
		e.Bytes(t)
	}
	e.Raw([]byte{byte(ev.Verdict.Loser), byte(ev.Verdict.Reason)})
	return e.Done()
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
	rec := d.Bytes(inference.MaxRecordBytes)
	if d.Err() == nil {
		req, out, rc, err := inference.DecodeRecord(rec)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		ev.Case = Case{Request: req, Output: out, Receipt: rc}
	}
	ev.Solver, ev.Verifier = d.claim(), d.claim()
	op := d.Varint()
	if op < NoOp || op > 1<<20 {
		d.Fail("operator %d", op)
	}
	ev.Op = int(op)
	n := d.Count(MaxOpInputs, 2)
	for range n {
		name := string(d.Bytes(dispute.MaxNameBytes))
		raw := d.Bytes(MaxMessageBytes)
		if d.Err() != nil {
			break
		}
		t, err := dispute.UnmarshalTensor(raw)
		if err != nil {
			d.Fail("input %q: %v", name, err)
			break
		}
		ev.Inputs = append(ev.Inputs, dispute.NamedTensor{Name: name, Tensor: t})
	}
	lr := d.Raw(2)
	ev.Verdict = Verdict{Loser: dispute.Loser(lr[0]), Reason: Reason(lr[1])}
	if err := d.Done(); err != nil {
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

// enc appends to an inference-dispute message; the first failure sticks.
type enc struct{ wirecodec.Encoder }

func newEnc(tag string) *enc {
	return &enc{wirecodec.NewEncoder(tag, "inferdispute: encode: ", MaxMessageBytes)}
}

func (e *enc) claim(c Claim) {
	e.Digests(c.Hashes, MaxClaimHashes)
	e.Digests(c.Moments, MaxClaimHashes)
}

// dec reads an inference-dispute message; the first failure sticks.
type dec struct{ wirecodec.Decoder }

func newDec(data []byte, tag string) (*dec, error) {
	d, err := wirecodec.NewDecoder(data, tag, MaxMessageBytes, ErrMalformed)
	if err != nil {
		return nil, err
	}
	return &dec{d}, nil
}

func (d *dec) claim() Claim {
	return Claim{Hashes: d.Digests(MaxClaimHashes), Moments: d.Digests(MaxClaimHashes)}
}
