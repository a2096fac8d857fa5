package dispute

import (
	"bytes"
	"context"
	"go/scanner"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/ref"
)

// seedEvidence plays a few games on the tiny vector, one per kind of
// verdict, and returns their encoded evidence.
func seedEvidence(f testing.TB) (*spec.Spec, [][]byte) {
	s, ds := tinyJob(f)
	r, err := NewReferee(s)
	if err != nil {
		f.Fatal(err)
	}
	cheats := []StepFunc{
		at(4, tamperOutput("layers.0.out", 0)), // operator
		at(2, func(tr *ref.OpTrace) error { // batch
			g := tr.Graph
			i := g.Index("batch.y")
			v := tr.Value[i].Clone()
			v.Data[0] = (v.Data[0] + 1) % int64(s.Data.Train.Classes)
			tr.Value[i] = v
			return tr.Recompute(0)
		}),
	}
	var out [][]byte
	for _, c := range cheats {
		solver := replayer(f, s, ds, s.Init(), c)
		h := replayer(f, s, ds, s.Init(), nil)
		res, err := r.Play(context.Background(), segment(f, solver, h, 0, s.Steps), solver, h)
		if err != nil || res.Evidence == nil {
			f.Fatalf("seed game: %v", err)
		}
		b, err := res.Evidence.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	// Inconsistent claim.
	h := replayer(f, s, ds, s.Init(), nil)
	l := &liar{Party: h, digestAt: lieFrom(h, 7)}
	res, err := r.Play(context.Background(), segment(f, h, l, 0, s.Steps), h, l)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := res.Evidence.MarshalBinary()
	return s, append(out, b)
}

// FuzzDecodeEvidence: decoding arbitrary bytes never panics, a decoded
// message re-encodes to the same bytes, and Check on whatever decodes
// returns a verdict or an error, never panics.
func FuzzDecodeEvidence(f *testing.F) {
	s, seeds := seedEvidence(f)
	for _, b := range seeds {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(evidenceTag))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvidence(data)
		if err != nil {
			return
		}
		b, err := ev.MarshalBinary()
		if err != nil || !bytes.Equal(b, data) {
			t.Fatalf("decoded evidence re-encodes differently: %v", err)
		}
		_, _ = Check(s, *ev)
	})
}

func FuzzDecodeClaim(f *testing.F) {
	s, ds := tinyJob(f)
	c, err := replayer(f, s, ds, s.Init(), nil).Claim(context.Background(), 1)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := c.MarshalBinary()
	f.Add(b)
	f.Add([]byte(claimTag + "\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Claim
		if c.UnmarshalBinary(data) != nil {
			return
		}
		if b, err := c.MarshalBinary(); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("claim re-encodes differently: %v", err)
		}
	})
}

func FuzzDecodeTensor(f *testing.F) {
	for _, v := range []ref.Tensor{
		{Shape: []int{1}, Data: []int64{-11}},
		{Shape: []int{2, 3}, Data: []int64{1, -2, 3, 1 << 40, -1 << 62, 0}},
		{Shape: []int{0, 5}, Data: []int64{}},
	} {
		b, err := MarshalTensor(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(tensorTag + "\x02\xff\xff\xff\xff\x07\xff\xff\xff\xff\x07"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := UnmarshalTensor(data)
		if err != nil {
			return
		}
		if b, err := MarshalTensor(v); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("tensor re-encodes differently: %v", err)
		}
	})
}

func FuzzDecodeBatchOpening(f *testing.F) {
	s, ds := tinyJob(f)
	o, err := replayer(f, s, ds, s.Init(), nil).OpenBatch(context.Background(), 5)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := o.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var o BatchOpening
		if o.UnmarshalBinary(data) != nil {
			return
		}
		if b, err := o.MarshalBinary(); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("batch opening re-encodes differently: %v", err)
		}
		_, _, _ = VerifyBatch(s, 5, &o)
	})
}

// TestNoFloatingPoint: the referee and the operator step decide slashing;
// no float may enter their non-test code.
func TestNoFloatingPoint(t *testing.T) {
	t.Parallel()
	banned := map[string]bool{"float32": true, "float64": true, "complex64": true, "complex128": true}
	checked := 0
	for _, dir := range []string{".", "../../../spec/ref", "../../../spec/gptref", "../../../spec/opgraph"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			fset := token.NewFileSet()
			var sc scanner.Scanner
			sc.Init(fset.AddFile(path, -1, len(src)), src, nil, 0)
			for {
				pos, tok, lit := sc.Scan()
				if tok == token.EOF {
					break
				}
				if tok == token.FLOAT || tok == token.IMAG || (tok == token.IDENT && banned[lit]) {
					t.Errorf("%s: floating point (%s %q)", fset.Position(pos), tok, lit)
				}
			}
		}
	}
	if checked < 18 {
		t.Fatalf("scanned only %d files", checked)
	}
}
