package dispute

import (
	"context"
	"errors"
	"math/bits"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
	"github.com/beluga-compute/beluga/spec/ref"
)

// tinyJob is the "tiny" conformance vector: linear 8 → relu → linear 3,
// batch 5, 12 steps.
func tinyJob(t testing.TB) (*spec.Spec, *dataset.Dataset) {
	return vectorJob(t, "tiny")
}

func vectorJob(t testing.TB, name string) (*spec.Spec, *dataset.Dataset) {
	js, err := os.ReadFile(filepath.Join("../../../spec/testdata/vectors", name, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	ds, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	return s, ds
}

// syntheticJob is the built-in synthetic example (MLP 256-128-64-10, batch
// 64) cut to a few steps.
func syntheticJob(t testing.TB, steps int64) (*spec.Spec, *dataset.Dataset) {
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.CheckpointInterval = steps, steps
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	ds, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	return s, ds
}

func replayer(t testing.TB, s *spec.Spec, ds *dataset.Dataset, start *spec.State, f StepFunc) *Replayer {
	if f == nil {
		f = Honest
	}
	r, err := NewReplayer(s, ds, start, WithStep(f))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// segment builds the dispute over [a, b]: the solver's digest after a
// steps is the agreed start; the ends are each party's.
func segment(t testing.TB, solver, verifier Party, a, b int64) Segment {
	ctx := context.Background()
	start, err := solver.DigestAt(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := verifier.DigestAt(ctx, a); err != nil || v != start {
		t.Fatalf("the parties do not agree at the segment start: %v", err)
	}
	se, err1 := solver.DigestAt(ctx, b)
	ve, err2 := verifier.DigestAt(ctx, b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return Segment{Start: a, End: b, StartDigest: start, SolverEnd: se, VerifierEnd: ve}
}

// counted returns a referee whose operator runs are counted.
func counted(t testing.TB, s *spec.Spec) (*Referee, *int) {
	r, err := NewReferee(s)
	if err != nil {
		t.Fatal(err)
	}
	calls := new(int)
	r.runOp = func(g opgraph.Graph, step int64, op int, in map[string]ref.Tensor) (map[string]ref.Tensor, error) {
		*calls++
		return g.RunOp(op, in, step)
	}
	return r, calls
}

// want describes the expected outcome of a game.
type want struct {
	verdict Verdict
	step    int64  // the disputed step t
	op      string // the operator recomputed ("" when none)
}

// play runs the game and checks its outcome, its cost and its evidence
// (directly and after an encode/decode round trip).
func play(t *testing.T, s *spec.Spec, seg Segment, solver, verifier Party, w want) *Result {
	t.Helper()
	r, calls := counted(t, s)
	res, err := r.Play(context.Background(), seg, solver, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != w.verdict {
		t.Fatalf("verdict %v (%s), want %v", res.Verdict, res.Forfeit, w.verdict)
	}
	if max := bits.Len64(uint64(seg.End-seg.Start) - 1); res.Cost.Rounds > max {
		t.Fatalf("%d bisection rounds over %d steps, want ≤ %d", res.Cost.Rounds, seg.End-seg.Start, max)
	}
	wantCalls := 0
	if w.op != "" {
		wantCalls = 1
	}
	if *calls != wantCalls || res.Cost.OpsRun != wantCalls {
		t.Fatalf("the referee recomputed %d operators (cost says %d), want %d", *calls, res.Cost.OpsRun, wantCalls)
	}
	if res.Cost.OpWork > res.Cost.StepWork/2 {
		t.Fatalf("recomputed work %d of a step's %d", res.Cost.OpWork, res.Cost.StepWork)
	}
	if w.verdict.Reason == ReasonForfeit {
		if res.Evidence != nil {
			t.Fatal("a forfeit has evidence")
		}
		return res
	}
	ev := res.Evidence
	if ev.Step != w.step {
		t.Fatalf("disputed step %d, want %d", ev.Step, w.step)
	}
	g, err := graphOf(s)
	if err != nil {
		t.Fatal(err)
	}
	gotOp := ""
	if ev.Op != NoOp {
		gotOp = g.ops[ev.Op].Name
	}
	if gotOp != w.op {
		t.Fatalf("recomputed %q, want %q", gotOp, w.op)
	}
	if v, err := Check(s, *ev); err != nil || v != w.verdict {
		t.Fatalf("Check: %v %v", v, err)
	}
	b, err := ev.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ev2, err := DecodeEvidence(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Check(s, *ev2); err != nil || v != w.verdict {
		t.Fatalf("Check after decoding: %v %v", v, err)
	}
	if b2, _ := ev2.MarshalBinary(); string(b2) != string(b) {
		t.Fatal("evidence encoding is not canonical")
	}
	return res
}

// Dishonest step functions.

// at applies f to the honest trace of step t0 and passes other steps.
func at(t0 int64, f func(tr *ref.OpTrace) error) StepFunc {
	return func(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error) {
		tr, err := Honest(s, st, t, x, y)
		if err != nil || t != t0 {
			return tr, err
		}
		return tr, f(tr)
	}
}

// nudge moves element i of the named tensor by one, staying in its range.
func nudge(tr *ref.OpTrace, name string, i int) error {
	g := tr.Graph
	k := g.Index(name)
	if k < 0 {
		return errors.New("no tensor " + name)
	}
	v := tr.Value[k].Clone()
	if v.Data[i] < g.Tensors[k].Max {
		v.Data[i]++
	} else {
		v.Data[i]--
	}
	tr.Value[k] = v
	return nil
}

// tamperOutput moves one element of an operator's output to an end of its
// range (a change of one unit is often rounded or masked away downstream)
// and recomputes everything downstream: a party that computed one
// operator wrongly and the rest faithfully.
func tamperOutput(name string, i int) func(tr *ref.OpTrace) error {
	return func(tr *ref.OpTrace) error {
		g := tr.Graph
		k := g.Index(name)
		if k < 0 {
			return errors.New("no tensor " + name)
		}
		v, info := tr.Value[k].Clone(), g.Tensors[k]
		if v.Data[i] != info.Max {
			v.Data[i] = info.Max
		} else {
			v.Data[i] = info.Min
		}
		tr.Value[k] = v
		return tr.Recompute(tr.Graph.Tensors[tr.Graph.Index(name)].Producer + 1)
	}
}

// liar overrides some answers of an honest party.
type liar struct {
	Party
	digestAt  func(ctx context.Context, step int64) (merkle.Digest, error)
	claim     func(ctx context.Context, t int64) (Claim, error)
	open      func(ctx context.Context, t int64, name string) (ref.Tensor, error)
	openBatch func(ctx context.Context, t int64) (*BatchOpening, error)
}

func (l *liar) DigestAt(ctx context.Context, step int64) (merkle.Digest, error) {
	if l.digestAt != nil {
		return l.digestAt(ctx, step)
	}
	return l.Party.DigestAt(ctx, step)
}

func (l *liar) Claim(ctx context.Context, t int64) (Claim, error) {
	if l.claim != nil {
		return l.claim(ctx, t)
	}
	return l.Party.Claim(ctx, t)
}

func (l *liar) Open(ctx context.Context, t int64, name string) (ref.Tensor, error) {
	if l.open != nil {
		return l.open(ctx, t, name)
	}
	return l.Party.Open(ctx, t, name)
}

func (l *liar) OpenBatch(ctx context.Context, t int64) (*BatchOpening, error) {
	if l.openBatch != nil {
		return l.openBatch(ctx, t)
	}
	return l.Party.OpenBatch(ctx, t)
}

// lieFrom flips a byte of every digest after `from` steps or more.
func lieFrom(p Party, from int64) func(context.Context, int64) (merkle.Digest, error) {
	return func(ctx context.Context, step int64) (merkle.Digest, error) {
		d, err := p.DigestAt(ctx, step)
		if step >= from {
			d[0] ^= 1
		}
		return d, err
	}
}

var errRefuse = errors.New("refused")

// (a) A solver that perturbs one master weight in the state it produces at
// step t0: the game lands on step t0 and that layer's update, against the
// solver.
func TestCheatingSolverPerturbsAWeight(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	const t0 = 5
	for _, c := range []struct {
		tensor, op string
	}{
		{"next.layers.2.weight", "update.2"},
		{"next.layers.0.weight", "update.0"},
		{"next.layers.0.bias.momentum", "update.0"},
	} {
		t.Run(c.tensor, func(t *testing.T) {
			honest := replayer(t, s, ds, s.Init(), nil)
			cheat := replayer(t, s, ds, s.Init(), at(t0, func(tr *ref.OpTrace) error { return nudge(tr, c.tensor, 3) }))
			seg := segment(t, cheat, honest, 0, s.Steps)
			play(t, s, seg, cheat, honest, want{Verdict{LoserSolver, ReasonOp}, t0, c.op})
		})
	}
}

// (a) again on the synthetic example (MLP 256-128-64-10, batch 64), on a
// segment that does not start at 0.
func TestCheatingSolverOnSyntheticExample(t *testing.T) {
	t.Parallel()
	s, ds := syntheticJob(t, 16)
	start := replayer(t, s, ds, s.Init(), nil)
	st, err := start.stateAt(context.Background(), 4)
	if err != nil {
		t.Fatal(err)
	}
	const t0 = 9
	honest := replayer(t, s, ds, st, nil)
	cheat := replayer(t, s, ds, st, at(t0, func(tr *ref.OpTrace) error { return nudge(tr, "next.layers.2.weight", 100) }))
	seg := segment(t, cheat, honest, 4, 16)
	res := play(t, s, seg, cheat, honest, want{Verdict{LoserSolver, ReasonOp}, t0, "update.2"})
	t.Logf("referee cost: %+v", res.Cost)
}

// (b) A solver that skips a step: the state after t0+1 steps is the state
// after t0, relabelled.
func TestSolverSkipsAStep(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	const t0 = 7
	skip := at(t0, func(tr *ref.OpTrace) error {
		g := tr.Graph
		for k, i := range g.StateOutputs() {
			tr.Value[i] = tr.Value[g.StateInputs()[k]].Clone()
		}
		return nil
	})
	honest := replayer(t, s, ds, s.Init(), nil)
	cheat := replayer(t, s, ds, s.Init(), skip)
	play(t, s, segment(t, cheat, honest, 0, s.Steps), cheat, honest, want{Verdict{LoserSolver, ReasonOp}, t0, "update.2"})
}

// (c) A solver that trains one step on another batch, or with another
// learning rate.
func TestSolverUsesAnotherBatchOrRate(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	const t0 = 3
	other := func(t int64) ([][]uint8, []uint8) {
		idx := make([]int, s.BatchSize)
		s.NewSampler().Batch(t, idx)
		x, y := make([][]uint8, len(idx)), make([]uint8, len(idx))
		for b, i := range idx {
			x[b], y[b] = ds.Sample(i)
		}
		return x, y
	}
	// It records the batch it used: the batch is disputed and settled by
	// the data commitment, with no operator recomputed.
	wrongBatch := func(record bool) StepFunc {
		return func(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error) {
			if t != t0 {
				return Honest(s, st, t, x, y)
			}
			ox, oy := other(t + 1)
			tr, err := Honest(s, st, t, ox, oy)
			if err != nil || record {
				return tr, err
			}
			// It claims the right batch but computed with the other one.
			bx, by, err := ref.BatchTensors(x, y)
			tr.Value[tr.Graph.Index("batch.x")], tr.Value[tr.Graph.Index("batch.y")] = bx, by
			return tr, err
		}
	}
	wrongRate := func(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error) {
		if t != t0 {
			return Honest(s, st, t, x, y)
		}
		fast := *s
		fast.Optimizer.LR = []spec.LRPoint{{Step: 0, Value: s.Optimizer.LRAt(t) * 2}}
		return Honest(&fast, st, t, x, y)
	}
	for _, c := range []struct {
		name string
		f    StepFunc
		w    want
	}{
		{"batch recorded", wrongBatch(true), want{Verdict{LoserSolver, ReasonBatch}, t0, ""}},
		{"batch hidden", wrongBatch(false), want{Verdict{LoserSolver, ReasonOp}, t0, "forward.0"}},
		{"learning rate", wrongRate, want{Verdict{LoserSolver, ReasonOp}, t0, "update.2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			honest := replayer(t, s, ds, s.Init(), nil)
			cheat := replayer(t, s, ds, s.Init(), c.f)
			res := play(t, s, segment(t, cheat, honest, 0, s.Steps), cheat, honest, c.w)
			if c.w.verdict.Reason == ReasonBatch && res.Cost.SamplesChecked != s.BatchSize {
				t.Fatalf("checked %d samples", res.Cost.SamplesChecked)
			}
		})
	}
	// A cheater who cannot prove the batch it claims still loses: the
	// honest verifier's opening decides.
	honest := replayer(t, s, ds, s.Init(), nil)
	cheat := replayer(t, s, ds, s.Init(), wrongBatch(true))
	l := &liar{Party: cheat, openBatch: func(ctx context.Context, t int64) (*BatchOpening, error) {
		o, err := cheat.OpenBatch(ctx, t)
		o.Samples[0].Features[0] ^= 1
		return o, err
	}}
	play(t, s, segment(t, l, honest, 0, s.Steps), l, honest, want{Verdict{LoserSolver, ReasonBatch}, t0, ""})
}

// (d) False accusations: an honest solver and a verifier that claims a
// wrong digest, or lies in its operator trace, lose.
func TestFalseAccuserLoses(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	t.Run("wrong digests", func(t *testing.T) {
		solver := replayer(t, s, ds, s.Init(), nil)
		base := replayer(t, s, ds, s.Init(), nil)
		accuser := &liar{Party: base, digestAt: lieFrom(base, 6)}
		play(t, s, segment(t, solver, accuser, 0, s.Steps), solver, accuser, want{Verdict{LoserVerifier, ReasonInconsistent}, 5, ""})
	})
	for _, c := range []struct{ tensor, op string }{
		{"layers.0.out", "forward.0"},
		{"layers.0.wq", "quantize.0"},
		{"loss.grad", "loss"},
		{"layers.0.grad", "backward.2"},
		{"layers.2.dw", "backward.2"},
		{"next.layers.2.bias", "update.2"},
	} {
		t.Run("lies in "+c.tensor, func(t *testing.T) {
			solver := replayer(t, s, ds, s.Init(), nil)
			accuser := replayer(t, s, ds, s.Init(), at(2, tamperOutput(c.tensor, 1)))
			play(t, s, segment(t, solver, accuser, 0, s.Steps), solver, accuser, want{Verdict{LoserVerifier, ReasonOp}, 2, c.op})
		})
	}
}

// (e) A party whose operator trace does not rebuild its own digest claims
// (or the agreed one) loses without anything being opened.
func TestInconsistentClaimLoses(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	const t0 = 4
	honest := func() *Replayer { return replayer(t, s, ds, s.Init(), nil) }

	// The solver commits perturbed digests but submits the honest trace.
	h := honest()
	solver := &liar{Party: h, digestAt: lieFrom(h, t0+1)}
	play(t, s, segment(t, solver, honest(), 0, s.Steps), solver, honest(), want{Verdict{LoserSolver, ReasonInconsistent}, t0, ""})

	// A cheating solver whose claim starts from another state than the
	// agreed one.
	cheat := replayer(t, s, ds, s.Init(), at(t0, func(tr *ref.OpTrace) error { return nudge(tr, "next.layers.0.weight", 0) }))
	moved := &liar{Party: cheat, claim: func(ctx context.Context, t int64) (Claim, error) {
		c, err := cheat.Claim(ctx, t)
		c.Hashes[0][5] ^= 1 // layers.0.weight before the step
		return c, err
	}}
	play(t, s, segment(t, moved, honest(), 0, s.Steps), moved, honest(), want{Verdict{LoserSolver, ReasonInconsistent}, t0, ""})

	// A truncated claim.
	short := &liar{Party: cheat, claim: func(ctx context.Context, t int64) (Claim, error) {
		c, err := cheat.Claim(ctx, t)
		c.Hashes = c.Hashes[:3]
		return c, err
	}}
	play(t, s, segment(t, short, honest(), 0, s.Steps), short, honest(), want{Verdict{LoserSolver, ReasonInconsistent}, t0, ""})

	// Both inconsistent: both lose.
	h2 := honest()
	verifier := &liar{Party: h2, digestAt: lieFrom(h2, t0+1), claim: short.claim}
	h3 := honest()
	solver = &liar{Party: h3, digestAt: func(ctx context.Context, step int64) (merkle.Digest, error) {
		d, err := h3.DigestAt(ctx, step)
		if step > t0 {
			d[1] ^= 1
		}
		return d, err
	}}
	play(t, s, segment(t, solver, verifier, 0, s.Steps), solver, verifier, want{Verdict{LoserBoth, ReasonInconsistent}, t0, ""})
}

// Two cheaters who computed the same operator differently: neither claim
// matches the recomputation and both lose.
func TestBothWrongBothLose(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	a := replayer(t, s, ds, s.Init(), at(6, tamperOutput("layers.2.out", 0)))
	b := replayer(t, s, ds, s.Init(), at(6, tamperOutput("layers.2.out", 4)))
	play(t, s, segment(t, a, b, 0, s.Steps), a, b, want{Verdict{LoserBoth, ReasonOp}, 6, "forward.2"})
}

// Forfeits: not answering loses; a failed opening falls back on the other
// party, which has the same agreed values.
func TestForfeitsAndOpenings(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	const t0 = 8
	cheatStep := at(t0, tamperOutput("layers.1.out", 2))
	refuse := func(context.Context, int64, string) (ref.Tensor, error) { return ref.Tensor{}, errRefuse }

	t.Run("silent verifier", func(t *testing.T) {
		solver := replayer(t, s, ds, s.Init(), cheatStep)
		h := replayer(t, s, ds, s.Init(), nil)
		seg := segment(t, solver, h, 0, s.Steps)
		mute := &liar{Party: h, digestAt: func(context.Context, int64) (merkle.Digest, error) { return merkle.Digest{}, errRefuse }}
		play(t, s, seg, solver, mute, want{Verdict{LoserVerifier, ReasonForfeit}, 0, ""})
	})
	t.Run("cheater refuses to open", func(t *testing.T) {
		cheat := replayer(t, s, ds, s.Init(), cheatStep)
		solver := &liar{Party: cheat, open: refuse}
		h := replayer(t, s, ds, s.Init(), nil)
		play(t, s, segment(t, solver, h, 0, s.Steps), solver, h, want{Verdict{LoserSolver, ReasonOp}, t0, "relu.1"})
	})
	t.Run("cheater opens garbage", func(t *testing.T) {
		cheat := replayer(t, s, ds, s.Init(), cheatStep)
		solver := &liar{Party: cheat, open: func(ctx context.Context, t int64, name string) (ref.Tensor, error) {
			v, err := cheat.Open(ctx, t, name)
			v.Data[0] ^= 1
			return v, err
		}}
		h := replayer(t, s, ds, s.Init(), nil)
		play(t, s, segment(t, solver, h, 0, s.Steps), solver, h, want{Verdict{LoserSolver, ReasonOp}, t0, "relu.1"})
	})
	t.Run("hostile opening", func(t *testing.T) {
		cheat := replayer(t, s, ds, s.Init(), cheatStep)
		solver := &liar{Party: cheat, open: func(context.Context, int64, string) (ref.Tensor, error) {
			return ref.Tensor{Shape: []int{1 << 40, -3}, Data: []int64{1}}, nil
		}}
		h := replayer(t, s, ds, s.Init(), nil)
		play(t, s, segment(t, solver, h, 0, s.Steps), solver, h, want{Verdict{LoserSolver, ReasonOp}, t0, "relu.1"})
	})
	t.Run("nobody opens", func(t *testing.T) {
		cheat := replayer(t, s, ds, s.Init(), cheatStep)
		solver := &liar{Party: cheat, open: refuse}
		h := replayer(t, s, ds, s.Init(), nil)
		verifier := &liar{Party: h, open: refuse}
		play(t, s, segment(t, solver, verifier, 0, s.Steps), solver, verifier, want{Verdict{LoserBoth, ReasonForfeit}, 0, ""})
	})
	t.Run("no dispute", func(t *testing.T) {
		h := replayer(t, s, ds, s.Init(), nil)
		r, _ := NewReferee(s)
		seg := segment(t, h, h, 0, s.Steps)
		if _, err := r.Play(context.Background(), seg, h, h); !errors.Is(err, ErrNoDispute) {
			t.Fatalf("got %v", err)
		}
		seg.VerifierEnd[0] ^= 1
		seg.End = s.Steps + 1
		if _, err := r.Play(context.Background(), seg, h, h); !errors.Is(err, ErrNoDispute) {
			t.Fatalf("got %v", err)
		}
	})
}

// An anchored segment ties the dispute to the solver's published trace
// root; Check verifies the proofs.
func TestAnchoredEvidence(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	job, _ := s.ID()
	cheat := replayer(t, s, ds, s.Init(), at(9, tamperOutput("loss.grad", 0)))
	h := replayer(t, s, ds, s.Init(), nil)
	tr := &trace.Trace{Job: job}
	for i := range s.Digests() {
		step, _ := trace.StepAt(s, i)
		d, err := cheat.DigestAt(context.Background(), step)
		if err != nil {
			t.Fatal(err)
		}
		tr.Entries = append(tr.Entries, trace.Entry{Step: step, Digest: d})
	}
	seg := segment(t, cheat, h, 4, 12)
	sp, _ := tr.Prove(tr.Index(4))
	ep, _ := tr.Prove(tr.Index(12))
	seg.Anchor = &Anchor{TraceRoot: tr.Root(), StartProof: sp, EndProof: ep}
	res := play(t, s, seg, cheat, h, want{Verdict{LoserSolver, ReasonOp}, 9, "loss"})

	ev := *res.Evidence
	bad := *ev.Segment.Anchor
	bad.TraceRoot[0] ^= 1
	ev.Segment.Anchor = &bad
	if _, err := Check(s, ev); !errors.Is(err, ErrBadEvidence) {
		t.Fatalf("wrong trace root: %v", err)
	}
}

// Evidence that was tampered with does not check.
func TestTamperedEvidence(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	cheat := replayer(t, s, ds, s.Init(), at(5, tamperOutput("layers.0.bq", 0)))
	h := replayer(t, s, ds, s.Init(), nil)
	res := play(t, s, segment(t, cheat, h, 0, s.Steps), cheat, h, want{Verdict{LoserSolver, ReasonOp}, 5, "quantize.0"})
	clone := func() Evidence {
		b, _ := res.Evidence.MarshalBinary()
		ev, _ := DecodeEvidence(b)
		return *ev
	}
	cases := map[string]func(ev *Evidence){
		"verdict flipped":    func(ev *Evidence) { ev.Verdict.Loser = LoserVerifier },
		"reason changed":     func(ev *Evidence) { ev.Verdict.Reason = ReasonInconsistent },
		"opened value":       func(ev *Evidence) { ev.Inputs[0].Tensor.Data[0]++ },
		"input renamed":      func(ev *Evidence) { ev.Inputs[0].Name = "layers.2.weight" },
		"input dropped":      func(ev *Evidence) { ev.Inputs = ev.Inputs[1:] },
		"other operator":     func(ev *Evidence) { ev.Op++ },
		"no operator":        func(ev *Evidence) { ev.Op, ev.Inputs = NoOp, nil },
		"round moved":        func(ev *Evidence) { ev.Rounds[0].Step++ },
		"round dropped":      func(ev *Evidence) { ev.Rounds = ev.Rounds[:len(ev.Rounds)-1] },
		"step changed":       func(ev *Evidence) { ev.Step++ },
		"job changed":        func(ev *Evidence) { ev.Job[0] ^= 1 },
		"ends agree":         func(ev *Evidence) { ev.Segment.VerifierEnd = ev.Segment.SolverEnd },
		"segment past end":   func(ev *Evidence) { ev.Segment.End = 1 << 30 },
		"verifier claim cut": func(ev *Evidence) { ev.Verifier.Hashes = nil },
	}
	for name, mut := range cases {
		ev := clone()
		mut(&ev)
		if v, err := Check(s, ev); err == nil {
			t.Errorf("%s: Check accepted it (%v)", name, v)
		}
	}
	// Evidence of another job does not check against this spec.
	other, _ := syntheticJob(t, 16)
	if _, err := Check(other, clone()); !errors.Is(err, ErrBadEvidence) {
		t.Errorf("other job: %v", err)
	}
}

// HashTensor's state leaves rebuild exactly commit.Hasher's state root,
// including for tensors of several chunks.
func TestStateLeavesMatchTheDigest(t *testing.T) {
	t.Parallel()
	s, ds := syntheticJob(t, 4)
	r := replayer(t, s, ds, s.Init(), nil)
	tr, err := r.tracedAt(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Claim(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	job, _ := s.ID()
	var h commit.Hasher
	before, after := stateDigests(r.lay, job, 0, c)
	if before != h.StateDigest(job, s.Init()) || after != h.StateDigest(job, tr.next) {
		t.Fatal("claim's state leaves do not rebuild the state digests")
	}
	tensors := r.lay.tensors
	if w := tensors[0]; w.Len()*4 <= commit.ChunkBytes {
		t.Fatalf("%s fits one chunk: the test needs a multi-chunk tensor", w.Name)
	}
	// Intermediates hash under their own tag, bound to their name.
	i := r.lay.index("layers.0.out")
	d1, _ := HashTensor(tensors[i], tr.values[i])
	info := tensors[i]
	info.Name = "layers.0.outx"
	d2, _ := HashTensor(info, tr.values[i])
	if d1 == d2 || d1 != c.Hashes[i] {
		t.Fatal("intermediate hash is not bound to the tensor's name")
	}
	// Out-of-range values cannot be hashed, even where le32 would wrap them
	// onto a valid state leaf.
	v := tr.values[0].Clone()
	v.Data[0] += 1 << 32
	if _, err := HashTensor(tensors[0], v); !errors.Is(err, ref.ErrBadOpInput) {
		t.Fatalf("wrapped value hashed: %v", err)
	}
}

// Claims, tensors and batch openings round-trip through their encodings.
func TestWireRoundTrip(t *testing.T) {
	t.Parallel()
	s, ds := tinyJob(t)
	r := replayer(t, s, ds, s.Init(), nil)
	ctx := context.Background()
	c, err := r.Claim(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.MarshalBinary()
	var c2 Claim
	if err := c2.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(c, c2) {
		t.Fatalf("claim: %v", err)
	}
	v, _ := r.Open(ctx, 3, "layers.0.dw")
	b, _ = MarshalTensor(v)
	if v2, err := UnmarshalTensor(b); err != nil || !reflect.DeepEqual(v, v2) {
		t.Fatalf("tensor: %v", err)
	}
	o, _ := r.OpenBatch(ctx, 3)
	b, _ = o.MarshalBinary()
	var o2 BatchOpening
	if err := o2.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(*o, o2) {
		t.Fatalf("batch: %v", err)
	}
	if _, _, err := VerifyBatch(s, 3, &o2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifyBatch(s, 4, &o2); !errors.Is(err, ErrBadOpening) {
		t.Fatalf("batch of step 3 accepted as step 4's: %v", err)
	}
	// Truncations and trailing bytes are errors.
	for _, bad := range [][]byte{b[:len(b)-1], append(append([]byte(nil), b...), 0), b[:10], nil} {
		if err := o2.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("bad bytes accepted: %v", err)
		}
	}
	// Encoders refuse what decoders would refuse.
	if _, err := MarshalTensor(ref.Tensor{Shape: []int{2, 2}, Data: []int64{1}}); err == nil {
		t.Fatal("shape/data mismatch encoded")
	}
	if _, err := (Claim{Hashes: make([]merkle.Digest, MaxClaimHashes+1)}).MarshalBinary(); err == nil {
		t.Fatal("oversized claim encoded")
	}
}
