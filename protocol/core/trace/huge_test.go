package trace

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// allocated returns the bytes allocated on the heap while fn runs. The
// count is process-wide, so tests that call it do not run in parallel.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A spec that bypassed spec.Validate (2^40 steps, a digest after every
// one) must be refused by Check without allocating anything in proportion
// to its step count: a coordinator once enumerated every step of such a
// spec and ran out of memory. The smaller spec comes first so that an
// enumerating Check fails the test before trying the huge one.
func TestCheckHugeSpecAllocatesNothing(t *testing.T) {
	tr := sample()
	for _, steps := range []int64{1 << 22, spec.MaxSteps, 1<<63 - 1} {
		s := &spec.Spec{Steps: steps, DigestInterval: 1}
		var err error
		if n := allocated(func() { err = tr.Check(s) }); n > 16<<10 {
			t.Fatalf("steps = %d: Check allocated %d bytes", steps, n)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("steps = %d: Check = %v, want ErrMalformed", steps, err)
		}
	}
}

// enumerate lists the steps of a trace the slow way, as SPEC.md §12 words
// it: 0, k, 2k, … below steps, then steps.
func enumerate(steps, k int64) []int64 {
	var out []int64
	for t := int64(0); t < steps; t += k {
		out = append(out, t)
	}
	return append(out, steps)
}

func TestStepAtAndIndexMatchTheDefinition(t *testing.T) {
	t.Parallel()
	for steps := int64(1); steps <= 40; steps++ {
		for k := int64(1); k <= steps+2; k++ {
			s := &spec.Spec{Steps: steps, DigestInterval: k}
			want := enumerate(steps, k)
			if s.Digests() != int64(len(want)) {
				t.Fatalf("steps %d k %d: Digests = %d, want %d", steps, k, s.Digests(), len(want))
			}
			for i, step := range want {
				if got, ok := StepAt(s, int64(i)); !ok || got != step {
					t.Fatalf("steps %d k %d: StepAt(%d) = %d %v, want %d", steps, k, i, got, ok, step)
				}
			}
			for _, i := range []int64{-1, int64(len(want)), 1 << 62} {
				if _, ok := StepAt(s, i); ok {
					t.Fatalf("steps %d k %d: StepAt(%d) is defined", steps, k, i)
				}
			}
			for step := int64(-2); step <= steps+2; step++ {
				i, ok := Index(s, step)
				wantI := slices.Index(want, step)
				if ok != (wantI >= 0) || ok && i != int64(wantI) {
					t.Fatalf("steps %d k %d: Index(%d) = %d %v, want %d", steps, k, step, i, ok, wantI)
				}
			}
		}
	}
	// The extremes compute without overflow.
	s := &spec.Spec{Steps: 1<<63 - 1, DigestInterval: 1}
	if got, ok := StepAt(s, 1<<62); !ok || got != 1<<62 {
		t.Fatalf("StepAt(2^62) = %d %v", got, ok)
	}
	if i, ok := Index(s, s.Steps); !ok || i != 1<<63-1-1 {
		t.Fatalf("Index(last) = %d %v", i, ok)
	}
}

// traceOf is an honest-looking trace of s (digests are arbitrary).
func traceOf(t *testing.T, s *spec.Spec) *Trace {
	t.Helper()
	job, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	tr := &Trace{Job: job}
	for i := range s.Digests() {
		step, _ := StepAt(s, i)
		tr.Entries = append(tr.Entries, Entry{Step: step, Digest: merkle.Digest{byte(i), 1}})
	}
	return tr
}

func TestCheckAndCheckPrefix(t *testing.T) {
	s := &spec.Spec{Steps: 10, DigestInterval: 3}
	tr := traceOf(t, s)
	if err := tr.Check(s); err != nil {
		t.Fatal(err)
	}
	for n := range tr.Entries {
		if err := CheckPrefix(s, tr.Entries[:n]); err != nil {
			t.Fatalf("prefix of %d: %v", n, err)
		}
	}
	for name, es := range map[string][]Entry{
		"short":   tr.Entries[:len(tr.Entries)-1],
		"long":    append(slices.Clone(tr.Entries), Entry{Step: 11}),
		"moved":   append(slices.Clone(tr.Entries[:2]), Entry{Step: 7}, tr.Entries[3], tr.Entries[4]),
		"swapped": {tr.Entries[1], tr.Entries[0], tr.Entries[2], tr.Entries[3], tr.Entries[4]},
	} {
		if err := (&Trace{Entries: es}).Check(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Check = %v", name, err)
		}
	}
	if err := CheckPrefix(s, append(slices.Clone(tr.Entries), Entry{Step: 12})); !errors.Is(err, ErrMalformed) {
		t.Errorf("overlong prefix: %v", err)
	}
	if err := CheckPrefix(s, []Entry{{Step: 0}, {Step: 2}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("wrong prefix: %v", err)
	}
	for _, bad := range []*spec.Spec{{Steps: 0, DigestInterval: 1}, {Steps: 5, DigestInterval: 0}, {Steps: -1, DigestInterval: 1}} {
		if err := (&Trace{}).Check(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("steps %d k %d: Check of an empty trace = %v", bad.Steps, bad.DigestInterval, err)
		}
	}
	huge := &spec.Spec{Steps: spec.MaxSteps, DigestInterval: 1}
	if n := allocated(func() { _ = CheckPrefix(huge, tr.Entries) }); n > 16<<10 {
		t.Fatalf("CheckPrefix of a huge spec allocated %d bytes", n)
	}
}

// failReader fails the test if anything reads it.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("the reader was read")
	return 0, io.EOF
}

func TestReadSpec(t *testing.T) {
	s, err := spectest.MLP(8)
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.DigestInterval, s.CheckpointInterval = 10, 3, 3
	tr := traceOf(t, s)
	var buf bytes.Buffer
	if err := tr.Write(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	back, err := ReadSpec(strings.NewReader(text), s)
	if err != nil || back.Root() != tr.Root() {
		t.Fatalf("ReadSpec = %v", err)
	}
	lines := strings.SplitAfter(text, "\n")
	other := *s
	other.Seed++
	for name, in := range map[string]string{
		"short":     strings.Join(lines[:len(lines)-2], ""),
		"long":      text + fmt.Sprintf("11 %064x\n", 0),
		"other job": strings.Replace(text, tr.Job.String(), mustID(t, &other).String(), 1),
		"moved":     strings.Replace(text, "\n6 ", "\n5 ", 1),
	} {
		if _, err := ReadSpec(strings.NewReader(in), s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ReadSpec = %v", name, err)
		}
	}
	// A spec that bypassed Validate: refused before a byte is read, with
	// nothing allocated for its 2^40 digests.
	huge := &spec.Spec{Steps: spec.MaxSteps, DigestInterval: 1}
	var herr error
	if n := allocated(func() { _, herr = ReadSpec(failReader{t}, huge) }); n > 16<<10 {
		t.Fatalf("ReadSpec of a huge spec allocated %d bytes", n)
	}
	if !errors.Is(herr, ErrMalformed) {
		t.Fatalf("ReadSpec of a huge spec = %v", herr)
	}
}

func mustID(t *testing.T, s *spec.Spec) spec.JobID {
	t.Helper()
	id, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
