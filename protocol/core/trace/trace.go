// Package trace is the solver's commitment to a whole run: the state
// digests at every digest interval form a Merkle tree whose root the solver
// publishes before any challenge exists (SPEC.md §12).
//
// Leaf i of the tree tagged "beluga/trace/v1" is le64(step) || digest: the
// state digest after `step` steps, for step = 0, k, 2k, … and the final step
// (k = the spec's digest_interval). Binding the step number into the leaf
// keeps a digest from being claimed at another position.
package trace

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Tree is the tree of a trace.
var Tree = merkle.New("beluga/trace/v1")

// Entry is one committed state digest.
type Entry struct {
	Step   int64
	Digest merkle.Digest
}

// Leaf returns the leaf data of e: le64(step) || digest.
func (e Entry) Leaf() []byte {
	return append(binary.LittleEndian.AppendUint64(nil, uint64(e.Step)), e.Digest[:]...)
}

// StepAt returns the step of entry i of the trace of a run of s (SPEC.md
// §12): i·k for the entries before the last, and s.Steps for the last one,
// k = s.DigestInterval. ok is false when s's trace has no entry i. It is
// computed, never enumerated: a spec's step count is a number a peer chose,
// and nothing here allocates in proportion to it.
func StepAt(s *spec.Spec, i int64) (step int64, ok bool) {
	n := s.Digests()
	switch {
	case i < 0 || i >= n:
		return 0, false
	case i == n-1:
		return s.Steps, true
	}
	return i * s.DigestInterval, true // i·k < s.Steps: no overflow
}

// Index returns the position in the trace of a run of s of the entry at
// step, or ok = false when the trace commits no digest at step. It is
// StepAt's inverse, computed arithmetically.
func Index(s *spec.Spec, step int64) (i int64, ok bool) {
	n := s.Digests()
	switch {
	case n == 0 || step < 0 || step > s.Steps:
		return 0, false
	case step == s.Steps:
		return n - 1, true
	case step%s.DigestInterval != 0:
		return 0, false
	}
	return step / s.DigestInterval, true
}

// Trace is a run's list of committed digests, in step order.
type Trace struct {
	Job     spec.JobID
	Entries []Entry
}

// ErrMalformed: trace bytes or contents that do not fit the spec.
var ErrMalformed = errors.New("trace: malformed")

// Check verifies that t commits exactly the steps of a run of s: entry i
// is at StepAt(s, i), for every i below s.Digests(). Lengths are compared
// arithmetically and entries one by one, so a spec that asks for 2^40
// digests costs no more to refuse than one that asks for two.
func (t *Trace) Check(s *spec.Spec) error {
	if err := checkShape(s); err != nil {
		return err
	}
	if n := s.Digests(); int64(len(t.Entries)) != n {
		return fmt.Errorf("%w: %d entries, the spec commits %d", ErrMalformed, len(t.Entries), n)
	}
	return CheckPrefix(s, t.Entries)
}

// CheckPrefix verifies that entries are the first len(entries) entries of
// the trace of a run of s: a trace so far, as a solver announces it with a
// checkpoint. An empty list is a prefix.
func CheckPrefix(s *spec.Spec, entries []Entry) error {
	if err := checkShape(s); err != nil {
		return err
	}
	if n := s.Digests(); int64(len(entries)) > n {
		return fmt.Errorf("%w: %d entries, the spec commits %d", ErrMalformed, len(entries), n)
	}
	for i, e := range entries {
		if want, _ := StepAt(s, int64(i)); e.Step != want {
			return fmt.Errorf("%w: entry %d is step %d, want %d", ErrMalformed, i, e.Step, want)
		}
	}
	return nil
}

// checkShape refuses a spec whose trace is not defined (no steps, no
// digest interval) or longer than any trace may be (MaxEntries): specs
// that passed spec.Validate never are, but a caller may hand over one that
// did not.
func checkShape(s *spec.Spec) error {
	if s.Steps < 1 || s.DigestInterval < 1 {
		return fmt.Errorf("%w: a spec of %d steps at digest interval %d has no trace", ErrMalformed, s.Steps, s.DigestInterval)
	}
	if n := s.Digests(); n > MaxEntries {
		return fmt.Errorf("%w: the spec commits %d digests, more than the %d a trace may hold", ErrMalformed, n, MaxEntries)
	}
	return nil
}

// Leaves returns the leaf hashes of t.
func (t *Trace) Leaves() []merkle.Digest {
	ls := make([]merkle.Digest, len(t.Entries))
	for i, e := range t.Entries {
		ls[i] = Tree.Leaf(e.Leaf())
	}
	return ls
}

// Root returns the trace root.
func (t *Trace) Root() merkle.Digest { return Tree.Root(t.Leaves()) }

// Index returns the position of step in t, or -1.
func (t *Trace) Index(step int64) int {
	for i, e := range t.Entries {
		if e.Step == step {
			return i
		}
	}
	return -1
}

// Prove returns the inclusion proof of entry i.
func (t *Trace) Prove(i int) (merkle.Proof, error) { return Tree.Prove(t.Leaves(), i) }

// Verify checks that e is entry p.Index of the trace with the given root.
func Verify(root merkle.Digest, e Entry, p merkle.Proof) error {
	return Tree.Verify(root, Tree.Leaf(e.Leaf()), p)
}

// MaxEntries bounds every trace: spec.MaxDigests, the most digests a valid
// spec commits (a trace travels in one message and every party holds it).
const MaxEntries = spec.MaxDigests

// Write writes t in its canonical text form (SPEC.md §12): the line
// "job <JobID hex>", then one line "<step> <digest hex>" per entry, in
// lower-case hex and decimal without leading zeros, each ending in "\n".
func (t *Trace) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "job %s\n", t.Job)
	for _, e := range t.Entries {
		fmt.Fprintf(bw, "%d %s\n", e.Step, hex.EncodeToString(e.Digest[:]))
	}
	return bw.Flush()
}

// Read parses the canonical text form of a trace (see Write): any other
// spelling, steps that do not increase, or more than MaxEntries entries
// are refused with ErrMalformed.
func Read(r io.Reader) (*Trace, error) {
	return read(r, func(int, Entry) error { return nil })
}

// ReadSpec reads the text form of the trace of a run of s: the trace's job
// must be s's, and every entry is checked against StepAt(s, i) as it is
// read, so a wrong or overlong trace is refused at its first bad line and
// what is kept never exceeds what s commits. A spec whose trace would hold
// more than MaxEntries entries is refused before anything is read.
func ReadSpec(r io.Reader, s *spec.Spec) (*Trace, error) {
	if err := checkShape(s); err != nil {
		return nil, err
	}
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	n := s.Digests()
	t, err := read(r, func(i int, e Entry) error {
		if want, ok := StepAt(s, int64(i)); !ok || e.Step != want {
			return fmt.Errorf("%w: entry %d is step %d; the spec commits %d entries, entry %d at step %d", ErrMalformed, i, e.Step, n, i, want)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if t.Job != job {
		return nil, fmt.Errorf("%w: trace of job %s, not %s", ErrMalformed, t.Job, job)
	}
	if int64(len(t.Entries)) != n {
		return nil, fmt.Errorf("%w: %d entries, the spec commits %d", ErrMalformed, len(t.Entries), n)
	}
	return t, nil
}

// read parses the text form of a trace, calling check on each entry before
// it is kept.
func read(r io.Reader, check func(i int, e Entry) error) (*Trace, error) {
	lr := newLineReader(r)
	job, err := lr.header("job")
	if err != nil {
		return nil, err
	}
	t := &Trace{Job: spec.JobID(job)}
	for {
		step, d, err := lr.entry()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, err
		}
		n := len(t.Entries)
		if n >= MaxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrMalformed, MaxEntries)
		}
		if n > 0 && step <= t.Entries[n-1].Step {
			return nil, fmt.Errorf("%w: line %d: steps must increase", ErrMalformed, lr.line)
		}
		e := Entry{Step: step, Digest: merkle.Digest(d)}
		if err := check(n, e); err != nil {
			return nil, err
		}
		t.Entries = append(t.Entries, e)
	}
}

// lineReader reads the canonical text of a trace or zk trace (SPEC.md
// §12): every line ends in "\n" (no "\r", the last line too); the header
// is the keyword, one space and 64 lower-case hex digits; an entry line is
// a step in decimal without sign or leading zeros ("0" for zero), one
// space and 64 lower-case hex digits. Nothing else is accepted, so a trace
// has exactly one text form: the one Write gives.
type lineReader struct {
	br   *bufio.Reader
	line int
}

// maxLine bounds a line: 19 digits, a space, 64 hex digits and "\n" (a
// header is shorter), with room to spare.
const maxLine = 128

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, maxLine)}
}

// next returns the next line without its "\n", or io.EOF at the end of the
// input (and only there: a last line without "\n" is malformed).
func (lr *lineReader) next() ([]byte, error) {
	b, err := lr.br.ReadSlice('\n')
	switch {
	case err == io.EOF && len(b) == 0:
		return nil, io.EOF
	case err == io.EOF:
		return nil, fmt.Errorf("%w: line %d does not end in a newline", ErrMalformed, lr.line+1)
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrMalformed, lr.line+1, maxLine)
	case err != nil:
		return nil, fmt.Errorf("trace: read: %w", err)
	}
	lr.line++
	return b[:len(b)-1], nil
}

// header reads the first line, "<keyword> <64 hex digits>".
func (lr *lineReader) header(keyword string) ([32]byte, error) {
	var id [32]byte
	b, err := lr.next()
	if err == io.EOF {
		return id, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if err != nil {
		return id, err
	}
	h, ok := bytes.CutPrefix(b, []byte(keyword+" "))
	if !ok || !canonicalHex32(h, &id) {
		return id, fmt.Errorf("%w: first line must be \"%s <64 lower-case hex digits>\", got %.80q", ErrMalformed, keyword, b)
	}
	return id, nil
}

// entry reads an entry line, "<step> <64 hex digits>", or returns io.EOF
// at the end of the input.
func (lr *lineReader) entry() (int64, [32]byte, error) {
	var d [32]byte
	b, err := lr.next()
	if err != nil {
		return 0, d, err
	}
	stepText, h, ok := bytes.Cut(b, []byte(" "))
	step, sok := canonicalStep(stepText)
	if !ok || !sok || !canonicalHex32(h, &d) {
		return 0, d, fmt.Errorf("%w: line %d must be \"<step> <64 lower-case hex digits>\", got %.80q", ErrMalformed, lr.line, b)
	}
	return step, d, nil
}

// canonicalStep parses a step written in decimal with no sign and no
// leading zeros ("0" for zero) that fits an int64.
func canonicalStep(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' || v > (math.MaxInt64-int64(c-'0'))/10 {
			return 0, false
		}
		v = 10*v + int64(c-'0')
	}
	return v, true
}

// canonicalHex32 decodes exactly 64 lower-case hex digits into out.
func canonicalHex32(b []byte, out *[32]byte) bool {
	if len(b) != 64 {
		return false
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	_, err := hex.Decode(out[:], b)
	return err == nil
}
