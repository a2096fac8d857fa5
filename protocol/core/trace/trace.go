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

// Steps returns the steps whose digests a run of s commits: 0, k, 2k, …
// and s.Steps.
func Steps(s *spec.Spec) []int64 {
	var out []int64
	for t := int64(0); t < s.Steps; t += s.DigestInterval {
		out = append(out, t)
	}
	return append(out, s.Steps)
}

// Trace is a run's list of committed digests, in step order.
type Trace struct {
	Job     spec.JobID
	Entries []Entry
}

// ErrMalformed: trace bytes or contents that do not fit the spec.
var ErrMalformed = errors.New("trace: malformed")

// Check verifies that t commits exactly the steps Steps(s) names.
func (t *Trace) Check(s *spec.Spec) error {
	want := Steps(s)
	if len(t.Entries) != len(want) {
		return fmt.Errorf("%w: %d entries, the spec commits %d", ErrMalformed, len(t.Entries), len(want))
	}
	for i, e := range t.Entries {
		if e.Step != want[i] {
			return fmt.Errorf("%w: entry %d is step %d, want %d", ErrMalformed, i, e.Step, want[i])
		}
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

// MaxEntries bounds a decoded trace (2^40 steps at interval 1 would not
// fit anywhere; a trace file is read against its spec anyway).
const MaxEntries = 1 << 26

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
		t.Entries = append(t.Entries, Entry{Step: step, Digest: merkle.Digest(d)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return t, nil
}
