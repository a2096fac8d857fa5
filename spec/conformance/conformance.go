// Package conformance holds the test vectors of SPEC.md (spec/testdata/vectors)
// and the code that reads them. Each vector is a directory with
//
//	spec.json     the job spec
//	samples.txt   the training samples: "label hex(features)" per line, in index order
//	steps.txt     per step: "step batch-indices loss-q16 digest-hex"; step -1 is the initial state
//	trace.json    intermediate values of step 0 (logits, logit gradients, exponents) for debugging
//
// The conformance tests run the reference step and the fast engine (every
// kernel, several thread counts) against every vector; running the same
// test binary on arm64 under qemu shows the digests do not depend on the
// architecture.
package conformance

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// Vector is one test vector.
type Vector struct {
	Name    string
	Spec    *spec.Spec
	Samples *dataset.Dataset
	Steps   []StepRecord
}

// StepRecord is the expected outcome of one step; Step -1 records the
// initial state (no batch, no loss).
type StepRecord struct {
	Step    int64
	Batch   []int
	LossQ16 int64
	Digest  string
}

// Load reads the vector in dir.
func Load(dir string) (*Vector, error) {
	data, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		return nil, err
	}
	s, err := spec.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	v := &Vector{Name: filepath.Base(dir), Spec: s}
	if v.Samples, err = readSamples(filepath.Join(dir, "samples.txt"), s); err != nil {
		return nil, err
	}
	if v.Steps, err = readSteps(filepath.Join(dir, "steps.txt")); err != nil {
		return nil, err
	}
	return v, nil
}

func readSamples(path string, s *spec.Spec) (*dataset.Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var x, y []uint8
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		label, feat, ok := strings.Cut(sc.Text(), " ")
		l, err := strconv.ParseUint(label, 10, 8)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		b, err := hex.DecodeString(feat)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		x, y = append(x, b...), append(y, uint8(l))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return dataset.New("vector", s.Data.Train.Features, s.Data.Train.Classes, x, y)
}

func readSteps(path string) ([]StepRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []StepRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		var r StepRecord
		var err error
		if r.Step, err = strconv.ParseInt(fields[0], 10, 64); err != nil {
			return nil, err
		}
		if fields[1] != "-" {
			for _, b := range strings.Split(fields[1], ",") {
				i, err := strconv.Atoi(b)
				if err != nil {
					return nil, err
				}
				r.Batch = append(r.Batch, i)
			}
		}
		if r.LossQ16, err = strconv.ParseInt(fields[2], 10, 64); err != nil {
			return nil, err
		}
		r.Digest = fields[3]
		out = append(out, r)
	}
	return out, sc.Err()
}

// Format renders records as steps.txt lines.
func Format(records []StepRecord) string {
	var b strings.Builder
	for _, r := range records {
		batch := "-"
		if len(r.Batch) > 0 {
			parts := make([]string, len(r.Batch))
			for i, v := range r.Batch {
				parts[i] = strconv.Itoa(v)
			}
			batch = strings.Join(parts, ",")
		}
		fmt.Fprintf(&b, "%d %s %d %s\n", r.Step, batch, r.LossQ16, r.Digest)
	}
	return b.String()
}

// FormatSamples renders ds as samples.txt.
func FormatSamples(ds *dataset.Dataset) string {
	var b strings.Builder
	for i := range ds.Len() {
		x, y := ds.Sample(i)
		fmt.Fprintf(&b, "%d %s\n", y, hex.EncodeToString(x))
	}
	return b.String()
}
