package trace

import (
	"bytes"
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

func zkSample(n int) *ZKTrace {
	z := &ZKTrace{Job: spec.JobID{1, 2, 3}}
	for i := range n {
		var r [32]byte
		r[0], r[31] = byte(i), byte(i*7)
		z.Entries = append(z.Entries, ZKEntry{Step: int64(i), Root: r})
	}
	return z
}

func TestZKTraceRoundTripAndProofs(t *testing.T) {
	z := zkSample(13)
	var buf bytes.Buffer
	if err := z.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadZK(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Root() != z.Root() || got.Job != z.Job {
		t.Fatal("round trip changed the zk trace")
	}
	root := z.Root()
	for i, e := range z.Entries {
		p, err := z.Prove(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyZK(root, e, p); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		bad := e
		bad.Root[5] ^= 1
		if VerifyZK(root, bad, p) == nil {
			t.Fatalf("entry %d: a changed root verified", i)
		}
		moved := e
		moved.Step++
		if VerifyZK(root, moved, p) == nil {
			t.Fatalf("entry %d: an entry at another step verified", i)
		}
	}
}

func TestZKTraceCheck(t *testing.T) {
	s := &spec.Spec{Steps: 4}
	if err := zkSample(5).Check(s); err != nil {
		t.Fatal(err)
	}
	if err := zkSample(4).Check(s); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short zk trace: %v", err)
	}
	z := zkSample(5)
	z.Entries[2].Step = 3
	if err := z.Check(s); !errors.Is(err, ErrMalformed) {
		t.Fatalf("out-of-order zk trace: %v", err)
	}
}

func TestCombinedBindsBothRoots(t *testing.T) {
	a, b := zkSample(2).Root(), zkSample(3).Root()
	if Combined(a, b) == Combined(b, a) || Combined(a, b) == Combined(a, a) {
		t.Fatal("Combined does not bind the order or both roots")
	}
}

// FuzzReadZK: as FuzzRead, for zk traces.
func FuzzReadZK(f *testing.F) {
	var buf bytes.Buffer
	zkSample(3).Write(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte("zkjob 00\n"))
	f.Add([]byte("zkjob " + string(bytes.Repeat([]byte("ab"), 32)) + "\n-1 00\n"))
	for _, in := range variants(f, "zkjob", canonicalZK(f)) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		z, err := ReadZK(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		var out bytes.Buffer
		if err := z.Write(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("accepted %q, whose canonical form is %q", data, out.Bytes())
		}
	})
}
