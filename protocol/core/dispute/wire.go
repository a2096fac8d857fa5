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
	"math"

	"github.com/beluga-compute/beluga/protocol/core/wirecodec"
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

// MarshalTensor encodes an opened tensor.
func MarshalTensor(t ref.Tensor) ([]byte, error) {
	e := newEnc(tensorTag)
	e.tensor(t)
	return e.Done()
}

// UnmarshalTensor decodes an opened tensor. Its shape and values are only
// checked against the graph when it is used.
func UnmarshalTensor(data []byte) (ref.Tensor, error) {
	d, err := newDec(data, tensorTag)
	if err != nil {
		return ref.Tensor{}, err
	}
	t := d.tensor()
	return t, d.Done()
}

// MarshalBinary encodes o: as a batch message when it holds samples (an
// MLP's), as a windows message when it holds windows (a GPT's).
func (o *BatchOpening) MarshalBinary() ([]byte, error) {
	if len(o.Windows) > 0 {
		e := newEnc(windowsTag)
		e.windows(o)
		return e.Done()
	}
	e := newEnc(batchTag)
	e.batch(o)
	return e.Done()
}

// UnmarshalBinary decodes a batch opening, of either message.
func (o *BatchOpening) UnmarshalBinary(data []byte) error {
	tag, read := batchTag, (*dec).batch
	if wirecodec.HasTag(data, windowsTag) {
		tag, read = windowsTag, (*dec).windows
	}
	d, err := newDec(data, tag)
	if err != nil {
		return err
	}
	v := read(d)
	if err := d.Done(); err != nil {
		return err
	}
	*o = *v
	return nil
}

// MarshalBinary encodes ev.
func (ev *Evidence) MarshalBinary() ([]byte, error) {
	e := newEnc(evidenceTag)
	e.Raw(ev.Job[:])
	seg := &ev.Segment
	e.step(seg.Start)
	e.step(seg.End)
	e.Digest(seg.StartDigest)
	e.Digest(seg.SolverEnd)
	e.Digest(seg.VerifierEnd)
	e.Flag(seg.Anchor != nil)
	if a := seg.Anchor; a != nil {
		e.Digest(a.TraceRoot)
		e.proof(a.StartProof)
		e.proof(a.EndProof)
	}
	if len(ev.Rounds) > maxRounds {
		e.Fail("%d rounds", len(ev.Rounds))
	}
	e.Uvarint(uint64(len(ev.Rounds)))
	for _, r := range ev.Rounds {
		e.step(r.Step)
		e.Digest(r.Solver)
		e.Digest(r.Verifier)
	}
	e.step(ev.Step)
	e.claim(ev.Solver)
	e.claim(ev.Verifier)
	if ev.Op < NoOp || ev.Op >= MaxClaimHashes {
		e.Fail("operator %d", ev.Op)
	}
	e.Varint(int64(ev.Op))
	if len(ev.Inputs) > MaxOpInputs {
		e.Fail("%d inputs", len(ev.Inputs))
	}
	e.Uvarint(uint64(len(ev.Inputs)))
	for _, in := range ev.Inputs {
		e.str(in.Name)
		e.tensor(in.Tensor)
	}
	switch {
	case ev.Batch == nil:
		e.Byte(batchNone)
	case len(ev.Batch.Windows) > 0:
		e.Byte(batchWindows)
		e.windows(ev.Batch)
	default:
		e.Byte(batchSamples)
		e.batch(ev.Batch)
	}
	if !validVerdict(ev.Verdict) {
		e.Fail("verdict %v", ev.Verdict)
	}
	e.Raw([]byte{byte(ev.Verdict.Loser), byte(ev.Verdict.Reason)})
	return e.Done()
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
	copy(ev.Job[:], d.Raw(len(ev.Job)))
	seg := &ev.Segment
	seg.Start, seg.End = d.step(), d.step()
	seg.StartDigest, seg.SolverEnd, seg.VerifierEnd = d.Digest(), d.Digest(), d.Digest()
	if d.Flag() {
		seg.Anchor = &Anchor{TraceRoot: d.Digest()}
		seg.Anchor.StartProof = d.proof()
		seg.Anchor.EndProof = d.proof()
	}
	if n := d.Count(maxRounds, 1+2*len(merkle.Digest{})); n > 0 {
		ev.Rounds = make([]Round, n)
		for i := range ev.Rounds {
			ev.Rounds[i] = Round{Step: d.step(), Solver: d.Digest(), Verifier: d.Digest()}
		}
	}
	ev.Step = d.step()
	ev.Solver, ev.Verifier = d.claim(), d.claim()
	op := d.Varint()
	if op < NoOp || op >= MaxClaimHashes {
		d.Fail("operator %d", op)
	}
	ev.Op = int(op)
	if n := d.Count(MaxOpInputs, 3); n > 0 {
		ev.Inputs = make([]NamedTensor, n)
		for i := range ev.Inputs {
			ev.Inputs[i].Name = d.str()
			ev.Inputs[i].Tensor = d.tensor()
		}
	}
	switch k := d.Byte(); k {
	case batchNone:
	case batchSamples:
		ev.Batch = d.batch()
	case batchWindows:
		ev.Batch = d.windows()
	default:
		d.Fail("batch kind %d", k)
	}
	vb := d.Raw(2)
	if d.Err() == nil {
		ev.Verdict = Verdict{Loser(vb[0]), Reason(vb[1])}
		if !validVerdict(ev.Verdict) {
			d.Fail("verdict %d/%d", vb[0], vb[1])
		}
	}
	if err := d.Done(); err != nil {
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

// enc appends to a dispute message; the first failure sticks.
type enc struct{ wirecodec.Encoder }

func newEnc(tag string) *enc {
	return &enc{wirecodec.NewEncoder(tag, "dispute: encode: ", MaxMessageBytes)}
}

func (e *enc) claim(c Claim) { e.Digests(c.Hashes, MaxClaimHashes) }

func (e *enc) step(v int64) {
	if v < 0 || v > maxStep {
		e.Fail("step %d", v)
	}
	e.Uvarint(uint64(v))
}

func (e *enc) str(s string) {
	if len(s) > MaxNameBytes {
		e.Fail("name of %d bytes", len(s))
	}
	e.Bytes([]byte(s))
}

func (e *enc) tensor(t ref.Tensor) {
	if len(t.Shape) > MaxRank {
		e.Fail("rank %d", len(t.Shape))
		return
	}
	n := 1
	for _, dim := range t.Shape {
		if dim < 0 || dim > maxDim {
			e.Fail("dimension %d", dim)
			return
		}
		if dim > 0 && n > MaxMessageBytes/dim {
			e.Fail("shape %v too large", t.Shape)
			return
		}
		n *= dim
	}
	if n != len(t.Data) {
		e.Fail("shape %v with %d values", t.Shape, len(t.Data))
		return
	}
	e.Uvarint(uint64(len(t.Shape)))
	for _, dim := range t.Shape {
		e.Uvarint(uint64(dim))
	}
	for _, v := range t.Data {
		e.Varint(v)
	}
}

func (e *enc) proof(p merkle.Proof) {
	e.Uvarint(p.Index)
	e.Uvarint(p.Count)
	e.Digests(p.Siblings, merkle.MaxDepth)
}

func (e *enc) batch(o *BatchOpening) {
	if len(o.Samples) > spec.MaxBatch {
		e.Fail("%d samples", len(o.Samples))
	}
	if len(o.Windows) > 0 {
		e.Fail("a batch of both samples and windows")
	}
	e.Uvarint(uint64(len(o.Samples)))
	for _, s := range o.Samples {
		if s.Index < 0 || s.Index > spec.MaxSamples || len(s.Features) > spec.MaxWidth {
			e.Fail("sample %d with %d features", s.Index, len(s.Features))
		}
		e.Uvarint(uint64(s.Index))
		e.Byte(s.Label)
		e.Bytes(s.Features)
		e.proof(s.Proof)
	}
}

func (e *enc) windows(o *BatchOpening) {
	if len(o.Samples) > 0 {
		e.Fail("a batch of both samples and windows")
	}
	if len(o.Windows) < 1 || len(o.Windows) > MaxWindows {
		e.Fail("%d windows", len(o.Windows))
	}
	e.Uvarint(uint64(len(o.Windows)))
	for _, w := range o.Windows {
		p := &w.Proof
		if w.Start < 0 || w.Start > dataset.MaxTextBytes || len(w.Bytes) > MaxWindowBytes ||
			len(p.Chunks) != len(p.Proofs) || len(p.Chunks) > MaxWindowChunks {
			e.Fail("window at %d of %d bytes with %d chunks and %d proofs", w.Start, len(w.Bytes), len(p.Chunks), len(p.Proofs))
			return
		}
		e.Uvarint(uint64(w.Start))
		e.Bytes(w.Bytes)
		e.Uvarint(uint64(len(p.Chunks)))
		for k, c := range p.Chunks {
			if len(c) > dataset.TextChunkBytes {
				e.Fail("chunk of %d bytes", len(c))
			}
			e.Bytes(c)
			e.proof(p.Proofs[k])
		}
	}
}

// dec reads a dispute message; the first failure sticks and later reads
// return zero values.
type dec struct{ wirecodec.Decoder }

func newDec(data []byte, tag string) (*dec, error) {
	d, err := wirecodec.NewDecoder(data, tag, MaxMessageBytes, ErrMalformed)
	if err != nil {
		return nil, err
	}
	return &dec{d}, nil
}

func (d *dec) step() int64 {
	v := d.Uvarint()
	if v > maxStep {
		d.Fail("step %d", v)
		return 0
	}
	return int64(v)
}

func (d *dec) str() string { return string(d.Bytes(MaxNameBytes)) }

func (d *dec) claim() Claim { return Claim{Hashes: d.Digests(MaxClaimHashes)} }

func (d *dec) tensor() ref.Tensor {
	rank := d.Count(MaxRank, 1)
	shape := make([]int, rank)
	n := uint64(1)
	for i := range shape {
		dim := d.Uvarint()
		if dim > maxDim {
			d.Fail("dimension %d", dim)
			return ref.Tensor{}
		}
		shape[i] = int(dim)
		n *= dim // ≤ d.Left() after each step, so no overflow
		if n > uint64(d.Left()) {
			d.Fail("shape %v needs more values than bytes left", shape[:i+1])
			return ref.Tensor{}
		}
	}
	data := make([]int64, n)
	for i := range data {
		data[i] = d.Varint()
	}
	return ref.Tensor{Shape: shape, Data: data}
}

func (d *dec) proof() merkle.Proof {
	p := merkle.Proof{Index: d.Uvarint(), Count: d.Uvarint()}
	p.Siblings = d.Digests(merkle.MaxDepth)
	return p
}

func (d *dec) batch() *BatchOpening {
	n := d.Count(spec.MaxBatch, 6)
	o := &BatchOpening{}
	if n > 0 {
		o.Samples = make([]OpenedSample, n)
	}
	for i := range o.Samples {
		s := &o.Samples[i]
		idx := d.Uvarint()
		if idx > spec.MaxSamples {
			d.Fail("sample index %d", idx)
		}
		s.Index = int(idx)
		s.Label = d.Byte()
		s.Features = append([]uint8(nil), d.Bytes(spec.MaxWidth)...)
		s.Proof = d.proof()
	}
	return o
}

// windows reads a GPT batch: at least one window, each at most
// MaxWindowBytes bytes proven by at most MaxWindowChunks chunks.
func (d *dec) windows() *BatchOpening {
	n := d.Count(MaxWindows, 3)
	if n == 0 {
		d.Fail("a batch of no windows")
	}
	o := &BatchOpening{}
	if n > 0 {
		o.Windows = make([]OpenedWindow, n)
	}
	for i := range o.Windows {
		w := &o.Windows[i]
		start := d.Uvarint()
		if start > dataset.MaxTextBytes {
			d.Fail("window start %d", start)
		}
		w.Start = int64(start)
		w.Bytes = append([]byte(nil), d.Bytes(MaxWindowBytes)...)
		if k := d.Count(MaxWindowChunks, 1); k > 0 {
			w.Proof.Chunks = make([][]byte, k)
			w.Proof.Proofs = make([]merkle.Proof, k)
			for c := range k {
				w.Proof.Chunks[c] = append([]byte(nil), d.Bytes(dataset.TextChunkBytes)...)
				w.Proof.Proofs[c] = d.proof()
			}
		}
	}
	return o
}
