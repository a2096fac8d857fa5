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
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

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

// Write writes t as text: "job <hex>" then one "step digest-hex" line per entry.
func (t *Trace) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "job %s\n", t.Job)
	for _, e := range t.Entries {
		fmt.Fprintf(bw, "%d %s\n", e.Step, hex.EncodeToString(e.Digest[:]))
	}
	return bw.Flush()
}

// Read parses the text form of a trace, reading at most MaxEntries lines.
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
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	if !sc.Scan() {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	jobHex, ok := strings.CutPrefix(sc.Text(), "job ")
	if !ok {
		return nil, fmt.Errorf("%w: first line must be \"job <id>\"", ErrMalformed)
	}
	job, err := spec.ParseJobID(jobHex)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	t := &Trace{Job: job}
	for sc.Scan() {
		if len(t.Entries) >= MaxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrMalformed, MaxEntries)
		}
		stepStr, dHex, ok := strings.Cut(sc.Text(), " ")
		step, err := strconv.ParseInt(stepStr, 10, 64)
		d, herr := hex.DecodeString(dHex)
		if !ok || err != nil || step < 0 || herr != nil || len(d) != len(merkle.Digest{}) {
			return nil, fmt.Errorf("%w: line %d: %.80q", ErrMalformed, len(t.Entries)+2, sc.Text())
		}
		if n := len(t.Entries); n > 0 && step <= t.Entries[n-1].Step {
			return nil, fmt.Errorf("%w: steps must increase (line %d)", ErrMalformed, n+2)
		}
		e := Entry{Step: step, Digest: merkle.Digest(d)}
		if err := check(len(t.Entries), e); err != nil {
			return nil, err
		}
		t.Entries = append(t.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return t, nil
}
