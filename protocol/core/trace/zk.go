package trace

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// ZKTree is the tree of a confidential job's zk trace (SPEC.md §17).
var ZKTree = merkle.New("beluga/zktrace/v1")

// MaxZKEntries bounds a zk trace read from outside bytes: one entry per step
// of the longest job spec validation admits.
const MaxZKEntries = 1 << 24

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

// Write writes z in its text form: a line "zkjob <JobID hex>" and one line
// "step root-hex" per entry.
func (z *ZKTrace) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "zkjob %s\n", hex.EncodeToString(z.Job[:]))
	for _, e := range z.Entries {
		fmt.Fprintf(bw, "%d %s\n", e.Step, hex.EncodeToString(e.Root[:]))
	}
	return bw.Flush()
}

// ReadZK parses the text form of a zk trace. It bounds the entry count by
// MaxZKEntries and rejects anything malformed.
func ReadZK(r io.Reader) (*ZKTrace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 256), 256)
	if !sc.Scan() {
		return nil, fmt.Errorf("%w: empty zk trace", ErrMalformed)
	}
	head := strings.Fields(sc.Text())
	if len(head) != 2 || head[0] != "zkjob" {
		return nil, fmt.Errorf("%w: first line %q", ErrMalformed, sc.Text())
	}
	z := &ZKTrace{}
	if err := decodeHex32(head[1], (*[32]byte)(&z.Job)); err != nil {
		return nil, fmt.Errorf("%w: job: %v", ErrMalformed, err)
	}
	for sc.Scan() {
		if len(z.Entries) >= MaxZKEntries {
			return nil, fmt.Errorf("%w: more than %d zk entries", ErrMalformed, MaxZKEntries)
		}
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %q", ErrMalformed, sc.Text())
		}
		step, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || step < 0 {
			return nil, fmt.Errorf("%w: step %q", ErrMalformed, f[0])
		}
		e := ZKEntry{Step: step}
		if err := decodeHex32(f[1], &e.Root); err != nil {
			return nil, fmt.Errorf("%w: step %d: %v", ErrMalformed, step, err)
		}
		z.Entries = append(z.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return z, nil
}

func decodeHex32(s string, out *[32]byte) error {
	if len(s) != 64 {
		return fmt.Errorf("want 64 hex digits, got %d", len(s))
	}
	_, err := hex.Decode(out[:], []byte(s))
	return err
}
