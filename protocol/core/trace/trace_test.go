package trace

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec/merkle"
)

func sample() *Trace {
	t := &Trace{}
	t.Job[3] = 9
	for i := range 7 {
		var d merkle.Digest
		d[0] = byte(i)
		t.Entries = append(t.Entries, Entry{Step: int64(i * 3), Digest: d})
	}
	return t
}

func TestRoundTripAndProofs(t *testing.T) {
	tr := sample()
	var buf bytes.Buffer
	if err := tr.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if back.Root() != tr.Root() || back.Job != tr.Job {
		t.Fatal("round trip changed the trace")
	}
	root := tr.Root()
	for i, e := range tr.Entries {
		p, err := tr.Prove(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(root, e, p); err != nil {
			t.Fatal(err)
		}
		moved := e
		moved.Step++
		if Verify(root, moved, p) == nil {
			t.Fatal("a digest verified at another step")
		}
	}
}

// FuzzRead: whatever the bytes, Read either refuses them with ErrMalformed
// or accepts exactly the canonical text of what it read (Write gives the
// same bytes back), so no trace has two accepted spellings. Seeded with
// the canonical texts and every variant TestReadRefusesNonCanonical tries.
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	_ = sample().Write(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte("job 00\n1 ab\n"))
	for _, in := range variants(f, "job", canonicalTrace(f)) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Read(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := tr.Write(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("accepted %q, whose canonical form is %q", data, out.Bytes())
		}
	})
}

func TestReadRejects(t *testing.T) {
	for _, in := range []string{"", "jobx\n", "job 12\n", "job " + strings.Repeat("0", 64) + "\n5 zz\n",
		"job " + strings.Repeat("0", 64) + "\n5 " + strings.Repeat("0", 64) + "\n5 " + strings.Repeat("0", 64) + "\n"} {
		if _, err := Read(strings.NewReader(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", in, err)
		}
	}
}
