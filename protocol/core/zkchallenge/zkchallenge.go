// Package zkchallenge holds the rules of a confidential audit's challenges
// (SPEC.md §17.3): how many weight tiles are challenged, which ones — drawn
// from the committed traces and the beacon, after both are fixed — and the
// check that a zk trace is well formed. The solver (who proves), the
// verifier and the coordinator (who check) all draw the same tiles here.
package zkchallenge

import (
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/beluga-compute/beluga/protocol/core/challenge"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/core/zkcommit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/prng"
)

// Challenge names one challenged tile: weight tile (Row, Col) of linear
// layer Layer at step Step.
type Challenge struct {
	Step            int64
	Layer, Row, Col int
}

// String names the challenged tile, for logs and reports.
func (c Challenge) String() string {
	return fmt.Sprintf("tile (%d, %d) of layer %d at step %d", c.Row, c.Col, c.Layer, c.Step)
}

// Count is how many tiles a confidential audit of s challenges
// (SPEC.md §17.3): §15's count for the audit policy with k = 1, at most
// one per step.
func Count(s *spec.Spec) (int, error) {
	n, err := plan.SampleCount(s.Steps, 1, s.Audit.CheatFractionPPM, s.Audit.ConfidencePPM, plan.Clustered)
	if err != nil {
		return 0, err
	}
	return int(min(n, s.Steps)), nil
}

// ZKTraceOf checks entries as the zk trace of s (steps 0 … Steps, every
// root a canonical field element) and returns it.
func ZKTraceOf(s *spec.Spec, entries []trace.ZKEntry) (*trace.ZKTrace, error) {
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	z := &trace.ZKTrace{Job: job, Entries: entries}
	if err := z.Check(s); err != nil {
		return nil, err
	}
	for i, e := range entries {
		var f fr.Element
		if err := f.SetBytesCanonical(e.Root[:]); err != nil {
			return nil, fmt.Errorf("%w: zk root of step %d: %v", trace.ErrMalformed, i, err)
		}
	}
	return z, nil
}

// Challenges draws the tiles a confidential run must prove (SPEC.md
// §17.3): with seed = challenge.Seed(job, trace.Combined(traceRoot,
// zkRoot), beacon), `count` distinct steps of [0, Steps) by §15's Floyd
// sampling, and for the i-th drawn step (ascending) weight tile
// Below(S.At(count + i), W) of the W weight tiles in layout order.
func Challenges(s *spec.Spec, traceRoot, zkRoot [32]byte, beacon []byte, count int) ([]Challenge, error) {
	if err := challenge.CheckBeacon(beacon); err != nil {
		return nil, err
	}
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	l, err := zkcommit.NewLayout(s)
	if err != nil {
		return nil, err
	}
	seed := challenge.Seed(job, trace.Combined(traceRoot, zkRoot), beacon)
	steps, err := challenge.Sample(seed, int(s.Steps), count)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, ll := range l.Layers {
		total += ll.Rows * ll.Cols
	}
	st := challenge.Stream(seed)
	out := make([]Challenge, len(steps))
	for i, t := range steps {
		k := int(prng.Below(st.At(uint64(count+i)), uint64(total)))
		for j, ll := range l.Layers {
			if k < ll.Rows*ll.Cols {
				out[i] = Challenge{Step: int64(t), Layer: j, Row: k / ll.Cols, Col: k % ll.Cols}
				break
			}
			k -= ll.Rows * ll.Cols
		}
	}
	return out, nil
}
