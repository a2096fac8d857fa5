package dispute

// Binary encodings of everything that crosses the wire in a dispute:
// claims, tensor openings, batch openings and evidence. Each message
// starts with its tag and is canonical: unsigned varints are minimal, flags
// are 0 or 1, nothing trails, so Marshal(Unmarshal(b)) == b. Decoding
// bounds every count by a fixed limit and by the bytes that remain before
// allocating, so a message of n bytes allocates O(n) at most.
//
//	tensor   = uvarint(rank ≤ 4) uvarint(dim)… varint(value)…   (∏ dims values)
//	proof    = uvarint(index) uvarint(count) uvarint(n ≤ 48) digest…
//	claim    = uvarint(n) digest…
//	sample   = uvarint(index) byte(label) uvarint(len) features proof
//	batch    = uvarint(n) sample…                                  (an MLP's)
//	window   = uvarint(start) uvarint(len) bytes uvarint(chunks ≤ 2) (uvarint(len) chunk proof)…
//	windows  = uvarint(n ≥ 1) window…                              (a GPT's)
//	evidence = job(32) uvarint(start) uvarint(end) digest(start) digest(solver end) digest(verifier end)
//	           flag [trace root, proof(start), proof(end)]
//	           uvarint(rounds) (uvarint(step) digest(solver) digest(verifier))…
//	           uvarint(t) claim(solver) claim(verifier) varint(op)
//	           uvarint(inputs) (uvarint(len) name tensor)…
//	           byte(0 | 1 batch | 2 windows)
//	           byte(loser) byte(reason)
//
// A batch opening is sent as a batch message (an MLP's samples) or a
// windows message (a GPT's windows); evidence's byte before the verdict
// says which it holds, if any. The MLP's encodings are those of version 1.

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/ref"
)

// Message tags.
const (
	claimTag    = "beluga/dispute/claim/v1\x00"
	tensorTag   = "beluga/dispute/tensor/v1\x00"
	batchTag    = "beluga/dispute/batch/v1\x00"
	windowsTag  = "beluga/dispute/windows/v1\x00"
	evidenceTag = "beluga/dispute/evidence/v1\x00"
)

// Limits of the encodings.
const (
	// MaxMessageBytes bounds every message. Evidence of the largest
	// operator of the largest MLP a spec allows (2^27 weights, 2^28
	// activations, at most 5 varint bytes per value) fits, and so does
	// that of a GPT's attention at gpt.MaxActivations (2^28
	// probabilities of at most 2 varint bytes).
	MaxMessageBytes = 1 << 30
	// MaxClaimHashes bounds a claim: a 64-layer MLP has under 1,500
	// tensors, a 64-block GPT under 6,000.
	MaxClaimHashes = 1 << 14
	// MaxRank bounds a tensor's rank (the MLP's graph uses 1 and 2, the
	// GPT's attention probabilities 4).
	MaxRank = 4
	// MaxOpInputs bounds the opened inputs of an operator: at most 7 for
	// an MLP; a GPT's adamw.norm reads every gradient and its exponent,
	// 2·(3 + 4·64) = 518 for the deepest.
	MaxOpInputs = 1 << 10
	// MaxWindowBytes bounds an opened window: T+1 bytes.
	MaxWindowBytes = gpt.MaxContext + 1
	// MaxWindowChunks bounds the chunks that prove a window: T+1 ≤ 4097
	// bytes span at most two (SPEC.md §20.2).
	MaxWindowChunks = 2
	// MaxWindows bounds a GPT batch's windows: B ≤ B·T ≤ gpt.MaxTokens.
	MaxWindows = gpt.MaxTokens
	// MaxNameBytes bounds a tensor name.
	MaxNameBytes = 255
	maxDim       = math.MaxInt32
	maxStep      = spec.MaxSteps
)

// MarshalBinary encodes c.
func (c Claim) MarshalBinary() ([]byte, error) {
	e := newEnc(claimTag)
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

// MarshalTensor encodes an opened tensor.
func MarshalTensor(t ref.Tensor) ([]byte, error) {
	e := newEnc(tensorTag)
	e.tensor(t)
	return e.done()
}

// UnmarshalTensor decodes an opened tensor. Its shape and values are only
// checked against the graph when it is used.
func UnmarshalTensor(data []byte) (ref.Tensor, error) {
	d, err := newDec(data, tensorTag)
	if err != nil {
		return ref.Tensor{}, err
	}
	t := d.tensor()
	return t, d.done()
}

// MarshalBinary encodes o: as a batch message when it holds samples (an
// MLP's), as a windows message when it holds windows (a GPT's).
func (o *BatchOpening) MarshalBinary() ([]byte, error) {
	if len(o.Windows) > 0 {
		e := newEnc(windowsTag)
		e.windows(o)
		return e.done()
	}
	e := newEnc(batchTag)
	e.batch(o)
	return e.done()
}

// UnmarshalBinary decodes a batch opening, of either message.
func (o *BatchOpening) UnmarshalBinary(data []byte) error {
	tag, read := batchTag, (*dec).batch
	if len(data) >= len(windowsTag) && string(data[:len(windowsTag)]) == windowsTag {
		tag, read = windowsTag, (*dec).windows
	}
	d, err := newDec(data, tag)
	if err != nil {
		return err
	}
	v := read(d)
	if err := d.done(); err != nil {
		return err
	}
	*o = *v
	return nil
}

// MarshalBinary encodes ev.
func (ev *Evidence) MarshalBinary() ([]byte, error) {
	e := newEnc(evidenceTag)
	e.raw(ev.Job[:])
	seg := &ev.Segment
	e.step(seg.Start)
	e.step(seg.End)
	e.digest(seg.StartDigest)
	e.digest(seg.SolverEnd)
	e.digest(seg.VerifierEnd)
	e.flag(seg.Anchor != nil)
	if a := seg.Anchor; a != nil {
		e.digest(a.TraceRoot)
		e.proof(a.StartProof)
		e.proof(a.EndProof)
	}
	if len(ev.Rounds) > maxRounds {
		e.fail("%d rounds", len(ev.Rounds))
	}
	e.u(uint64(len(ev.Rounds)))
	for _, r := range ev.Rounds {
		e.step(r.Step)
		e.digest(r.Solver)
		e.digest(r.Verifier)
	}
	e.step(ev.Step)
	e.claim(ev.Solver)
	e.claim(ev.Verifier)
	if ev.Op < NoOp || ev.Op >= MaxClaimHashes {
		e.fail("operator %d", ev.Op)
	}
	e.b = binary.AppendVarint(e.b, int64(ev.Op))
	if len(ev.Inputs) > MaxOpInputs {
		e.fail("%d inputs", len(ev.Inputs))
	}
	e.u(uint64(len(ev.Inputs)))
	for _, in := range ev.Inputs {
		e.str(in.Name)
		e.tensor(in.Tensor)
	}
	switch {
	case ev.Batch == nil:
		e.raw([]byte{batchNone})
	case len(ev.Batch.Windows) > 0:
		e.raw([]byte{batchWindows})
		e.windows(ev.Batch)
	default:
		e.raw([]byte{batchSamples})
		e.batch(ev.Batch)
	}
	if !validVerdict(ev.Verdict) {
		e.fail("verdict %v", ev.Verdict)
	}
	e.raw([]byte{byte(ev.Verdict.Loser), byte(ev.Verdict.Reason)})
	return e.done()
}

// UnmarshalBinary decodes evidence; see DecodeEvidence.
func (ev *Evidence) UnmarshalBinary(data []byte) error {
	v, err := DecodeEvidence(data)
	if err != nil {
		return err
	}
	*ev = *v
	return nil
}

// DecodeEvidence decodes evidence of at most MaxMessageBytes. Only its
// form is checked; Check decides whether it holds up.
func DecodeEvidence(data []byte) (*Evidence, error) {
	d, err := newDec(data, evidenceTag)
	if err != nil {
		return nil, err
	}
	ev := &Evidence{}
	copy(ev.Job[:], d.raw(len(ev.Job)))
	seg := &ev.Segment
	seg.Start, seg.End = d.step(), d.step()
	seg.StartDigest, seg.SolverEnd, seg.VerifierEnd = d.digest(), d.digest(), d.digest()
	if d.flag() {
		seg.Anchor = &Anchor{TraceRoot: d.digest()}
		seg.Anchor.StartProof = d.proof()
		seg.Anchor.EndProof = d.proof()
	}
	if n := d.count(maxRounds, 1+2*len(merkle.Digest{})); n > 0 {
		ev.Rounds = make([]Round, n)
		for i := range ev.Rounds {
			ev.Rounds[i] = Round{Step: d.step(), Solver: d.digest(), Verifier: d.digest()}
		}
	}
	ev.Step = d.step()
	ev.Solver, ev.Verifier = d.claim(), d.claim()
	op := d.varint()
	if op < NoOp || op >= MaxClaimHashes {
		d.fail("operator %d", op)
	}
	ev.Op = int(op)
	if n := d.count(MaxOpInputs, 3); n > 0 {
		ev.Inputs = make([]NamedTensor, n)
		for i := range ev.Inputs {
			ev.Inputs[i].Name = d.str()
			ev.Inputs[i].Tensor = d.tensor()
		}
	}
	switch k := d.raw(1)[0]; k {
	case batchNone:
	case batchSamples:
		ev.Batch = d.batch()
	case batchWindows:
		ev.Batch = d.windows()
	default:
		d.fail("batch kind %d", k)
	}
	vb := d.raw(2)
	if d.err == nil {
		ev.Verdict = Verdict{Loser(vb[0]), Reason(vb[1])}
		if !validVerdict(ev.Verdict) {
			d.fail("verdict %d/%d", vb[0], vb[1])
		}
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return ev, nil
}

// The kinds of evidence's batch: none, an MLP's samples, a GPT's windows.
// An MLP's evidence encodes as in version 1, whose flag was 0 or 1.
const (
	batchNone byte = iota
	batchSamples
	batchWindows
)

// validVerdict: evidence records only re-checkable verdicts.
func validVerdict(v Verdict) bool {
	return v.Loser >= LoserSolver && v.Loser <= LoserBoth && v.Reason >= ReasonInconsistent && v.Reason <= ReasonOp
}

// enc appends to a message; the first failure sticks.
type enc struct {
	b   []byte
	err error
}

func newEnc(tag string) *enc { return &enc{b: []byte(tag)} }

func (e *enc) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("dispute: encode: "+format, args...)
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

func (e *enc) raw(b []byte)           { e.b = append(e.b, b...) }
func (e *enc) u(v uint64)             { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) digest(d merkle.Digest) { e.b = append(e.b, d[:]...) }
func (e *enc) flag(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *enc) claim(c Claim) { e.hashes(c.Hashes, MaxClaimHashes) }
func (e *enc) hashes(h []merkle.Digest, max int) {
	if len(h) > max {
		e.fail("%d hashes, more than %d", len(h), max)
	}
	e.u(uint64(len(h)))
	for _, d := range h {
		e.digest(d)
	}
}

func (e *enc) step(v int64) {
	if v < 0 || v > maxStep {
		e.fail("step %d", v)
	}
	e.u(uint64(v))
}

func (e *enc) str(s string) {
	if len(s) > MaxNameBytes {
		e.fail("name of %d bytes", len(s))
	}
	e.u(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *enc) tensor(t ref.Tensor) {
	if len(t.Shape) > MaxRank {
		e.fail("rank %d", len(t.Shape))
		return
	}
	n := 1
	for _, dim := range t.Shape {
		if dim < 0 || dim > maxDim {
			e.fail("dimension %d", dim)
			return
		}
		if dim > 0 && n > MaxMessageBytes/dim {
			e.fail("shape %v too large", t.Shape)
			return
		}
		n *= dim
	}
	if n != len(t.Data) {
		e.fail("shape %v with %d values", t.Shape, len(t.Data))
		return
	}
	e.u(uint64(len(t.Shape)))
	for _, dim := range t.Shape {
		e.u(uint64(dim))
	}
	for _, v := range t.Data {
		e.b = binary.AppendVarint(e.b, v)
	}
}

func (e *enc) proof(p merkle.Proof) {
	e.u(p.Index)
	e.u(p.Count)
	e.hashes(p.Siblings, merkle.MaxDepth)
}

func (e *enc) batch(o *BatchOpening) {
	if len(o.Samples) > spec.MaxBatch {
		e.fail("%d samples", len(o.Samples))
	}
	if len(o.Windows) > 0 {
		e.fail("a batch of both samples and windows")
	}
	e.u(uint64(len(o.Samples)))
	for _, s := range o.Samples {
		if s.Index < 0 || s.Index > spec.MaxSamples || len(s.Features) > spec.MaxWidth {
			e.fail("sample %d with %d features", s.Index, len(s.Features))
		}
		e.u(uint64(s.Index))
		e.b = append(e.b, s.Label)
		e.u(uint64(len(s.Features)))
		e.b = append(e.b, s.Features...)
		e.proof(s.Proof)
	}
}

func (e *enc) windows(o *BatchOpening) {
	if len(o.Samples) > 0 {
		e.fail("a batch of both samples and windows")
	}
	if len(o.Windows) < 1 || len(o.Windows) > MaxWindows {
		e.fail("%d windows", len(o.Windows))
	}
	e.u(uint64(len(o.Windows)))
	for _, w := range o.Windows {
		p := &w.Proof
		if w.Start < 0 || w.Start > dataset.MaxTextBytes || len(w.Bytes) > MaxWindowBytes ||
			len(p.Chunks) != len(p.Proofs) || len(p.Chunks) > MaxWindowChunks {
			e.fail("window at %d of %d bytes with %d chunks and %d proofs", w.Start, len(w.Bytes), len(p.Chunks), len(p.Proofs))
			return
		}
		e.u(uint64(w.Start))
		e.u(uint64(len(w.Bytes)))
		e.b = append(e.b, w.Bytes...)
		e.u(uint64(len(p.Chunks)))
		for k, c := range p.Chunks {
			if len(c) > dataset.TextChunkBytes {
				e.fail("chunk of %d bytes", len(c))
			}
			e.u(uint64(len(c)))
			e.b = append(e.b, c...)
			e.proof(p.Proofs[k])
		}
	}
}

// dec reads a message; the first failure sticks and later reads return
// zero values.
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
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		d.fail("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	if n != len(binary.AppendVarint(nil, v)) {
		d.fail("non-minimal varint")
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

func (d *dec) digest() merkle.Digest { return merkle.Digest(d.raw(len(merkle.Digest{}))) }

func (d *dec) flag() bool {
	b := d.raw(1)[0]
	if b > 1 {
		d.fail("flag %d", b)
	}
	return b == 1
}

func (d *dec) step() int64 {
	v := d.u()
	if v > maxStep {
		d.fail("step %d", v)
		return 0
	}
	return int64(v)
}

func (d *dec) str() string {
	n := d.count(MaxNameBytes, 1)
	return string(d.raw(n))
}

func (d *dec) hashes(max int) []merkle.Digest {
	n := d.count(max, len(merkle.Digest{}))
	if n == 0 {
		return nil
	}
	h := make([]merkle.Digest, n)
	for i := range h {
		h[i] = d.digest()
	}
	return h
}

func (d *dec) claim() Claim { return Claim{Hashes: d.hashes(MaxClaimHashes)} }

func (d *dec) tensor() ref.Tensor {
	rank := d.count(MaxRank, 1)
	shape := make([]int, rank)
	n := uint64(1)
	for i := range shape {
		dim := d.u()
		if dim > maxDim {
			d.fail("dimension %d", dim)
			return ref.Tensor{}
		}
		shape[i] = int(dim)
		n *= dim // ≤ len(d.b) after each step, so no overflow
		if n > uint64(len(d.b)) {
			d.fail("shape %v needs more values than bytes left", shape[:i+1])
			return ref.Tensor{}
		}
	}
	data := make([]int64, n)
	for i := range data {
		data[i] = d.varint()
	}
	return ref.Tensor{Shape: shape, Data: data}
}

func (d *dec) proof() merkle.Proof {
	p := merkle.Proof{Index: d.u(), Count: d.u()}
	p.Siblings = d.hashes(merkle.MaxDepth)
	return p
}

func (d *dec) batch() *BatchOpening {
	n := d.count(spec.MaxBatch, 6)
	o := &BatchOpening{}
	if n > 0 {
		o.Samples = make([]OpenedSample, n)
	}
	for i := range o.Samples {
		s := &o.Samples[i]
		idx := d.u()
		if idx > spec.MaxSamples {
			d.fail("sample index %d", idx)
		}
		s.Index = int(idx)
		s.Label = d.raw(1)[0]
		s.Features = append([]uint8(nil), d.raw(d.count(spec.MaxWidth, 1))...)
		s.Proof = d.proof()
	}
	return o
}

// windows reads a GPT batch: at least one window, each at most
// MaxWindowBytes bytes proven by at most MaxWindowChunks chunks.
func (d *dec) windows() *BatchOpening {
	n := d.count(MaxWindows, 3)
	if n == 0 {
		d.fail("a batch of no windows")
	}
	o := &BatchOpening{}
	if n > 0 {
		o.Windows = make([]OpenedWindow, n)
	}
	for i := range o.Windows {
		w := &o.Windows[i]
		start := d.u()
		if start > dataset.MaxTextBytes {
			d.fail("window start %d", start)
		}
		w.Start = int64(start)
		w.Bytes = append([]byte(nil), d.raw(d.count(MaxWindowBytes, 1))...)
		if k := d.count(MaxWindowChunks, 1); k > 0 {
			w.Proof.Chunks = make([][]byte, k)
			w.Proof.Proofs = make([]merkle.Proof, k)
			for c := range k {
				w.Proof.Chunks[c] = append([]byte(nil), d.raw(d.count(dataset.TextChunkBytes, 1))...)
				w.Proof.Proofs[c] = d.proof()
			}
		}
	}
	return o
}
