package trace

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// ZKTree is the tree of a confidential job's zk trace (SPEC.md §17).
var ZKTree = merkle.New("beluga/zktrace/v1")

// MaxZKEntries bounds a zk trace read from outside bytes: spec.MaxDigests,
// one entry per state (steps + 1) of the longest confidential job that
// validation admits.
const MaxZKEntries = spec.MaxDigests

// ZKEntry is the zk commitment of one step of a confidential job: Root is
// the Poseidon2 root over the state before step Step and that step's
// gradients and layer inputs (protocol/core/zkcommit), as a 32-byte big-endian
// field element.
type ZKEntry struct {
	Step int64
	Root [32]byte
}

// Leaf returns the leaf data of e: le64(step) || root.
func (e ZKEntry) Leaf() []byte {
	return append(binary.LittleEndian.AppendUint64(nil, uint64(e.Step)), e.Root[:]...)
}

// ZKTrace is a confidential run's zk commitments, one for every step
// 0 … steps−1 in order. It is committed with the digest trace, before any
// challenge: the challenge seed covers Combined(trace root, zk trace root).
type ZKTrace struct {
	Job     spec.JobID
	Entries []ZKEntry
}

// Check verifies that z commits every step of s, in order.
func (z *ZKTrace) Check(s *spec.Spec) error {
	if int64(len(z.Entries)) != s.Steps+1 {
		return fmt.Errorf("%w: %d zk entries, the spec has %d steps (z_0 … z_steps)", ErrMalformed, len(z.Entries), s.Steps)
	}
	for i, e := range z.Entries {
		if e.Step != int64(i) {
			return fmt.Errorf("%w: zk entry %d is step %d", ErrMalformed, i, e.Step)
		}
	}
	return nil
}

// Leaves returns the leaf hashes of z.
func (z *ZKTrace) Leaves() []merkle.Digest {
	ls := make([]merkle.Digest, len(z.Entries))
	for i, e := range z.Entries {
		ls[i] = ZKTree.Leaf(e.Leaf())
	}
	return ls
}

// Root returns the zk trace root.
func (z *ZKTrace) Root() merkle.Digest { return ZKTree.Root(z.Leaves()) }

// Prove returns the inclusion proof of entry i.
func (z *ZKTrace) Prove(i int) (merkle.Proof, error) { return ZKTree.Prove(z.Leaves(), i) }

// VerifyZK checks that e is in the zk trace with root root.
func VerifyZK(root merkle.Digest, e ZKEntry, p merkle.Proof) error {
	if err := ZKTree.Verify(root, ZKTree.Leaf(e.Leaf()), p); err != nil {
		return fmt.Errorf("zk entry of step %d: %w", e.Step, err)
	}
	return nil
}

// Combined is the single root a confidential solver commits and the
// challenge seed covers: SHA-256("beluga/commitment/v1" || 0x00 ||
// trace root || zk trace root). Neither root can change once the
// challenge is drawn.
func Combined(traceRoot, zkRoot merkle.Digest) merkle.Digest {
	h := sha256.New()
	h.Write([]byte("beluga/commitment/v1"))
	h.Write([]byte{0})
	h.Write(traceRoot[:])
	h.Write(zkRoot[:])
	var out merkle.Digest
	h.Sum(out[:0])
	return out
}

// Write writes z in its canonical text form (SPEC.md §17.1): the line
// "zkjob <JobID hex>", then one line "<step> <root hex>" per entry, in
// lower-case hex and decimal without leading zeros, each ending in "\n".
func (z *ZKTrace) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "zkjob %s\n", hex.EncodeToString(z.Job[:]))
	for _, e := range z.Entries {
		fmt.Fprintf(bw, "%d %s\n", e.Step, hex.EncodeToString(e.Root[:]))
	}
	return bw.Flush()
}

// ReadZK parses the canonical text form of a zk trace (see Write), with
// the rules of Read: any other spelling, steps that do not increase, or
// more than MaxZKEntries entries are refused with ErrMalformed.
func ReadZK(r io.Reader) (*ZKTrace, error) {
	lr := newLineReader(r)
	job, err := lr.header("zkjob")
	if err != nil {
		return nil, err
	}
	z := &ZKTrace{Job: spec.JobID(job)}
	for {
		step, root, err := lr.entry()
		if err == io.EOF {
			return z, nil
		}
		if err != nil {
			return nil, err
		}
		n := len(z.Entries)
		if n >= MaxZKEntries {
			return nil, fmt.Errorf("%w: more than %d zk entries", ErrMalformed, MaxZKEntries)
		}
		if n > 0 && step <= z.Entries[n-1].Step {
			return nil, fmt.Errorf("%w: line %d: steps must increase", ErrMalformed, lr.line)
		}
		z.Entries = append(z.Entries, ZKEntry{Step: step, Root: root})
	}
}
