package dispute

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
	"github.com/beluga-compute/beluga/spec/ref"
)

// The GPT's game on the "gpt-tiny" conformance vector: context 8, width
// 16, 2 heads, MLP width 24, 2 blocks, 12-bit operands, batch 3, 8 steps
// of AdamW on a 372-byte corpus (SPEC.md §20).

const gptVector = "../../../spec/testdata/gptvectors/gpt-tiny"

// gptJob returns the vector's spec and corpus, and its state digest after
// each number of steps (digests[k] after k steps).
func gptJob(t testing.TB) (*spec.Spec, *dataset.Text, []merkle.Digest) {
	js, err := os.ReadFile(filepath.Join(gptVector, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := os.ReadFile(filepath.Join(gptVector, "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := dataset.NewText(corpus)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(gptVector, "steps.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var digests []merkle.Digest
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		step, err1 := strconv.Atoi(fields[0])
		b, err2 := hex.DecodeString(fields[len(fields)-1])
		if err1 != nil || err2 != nil || step != len(digests)-1 || len(b) != 32 {
			t.Fatalf("steps.txt line %q", sc.Text())
		}
		digests = append(digests, merkle.Digest(b))
	}
	if int64(len(digests)) != s.Steps+1 {
		t.Fatalf("steps.txt has %d digests for %d steps", len(digests), s.Steps)
	}
	return s, text, digests
}

// gptInit is the GPT's initial state in the digest's form.
func gptInit(t testing.TB, s *spec.Spec) *spec.State {
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	return spec.GPTTensors(c, c.Init())
}

func gptReplayer(t testing.TB, s *spec.Spec, text *dataset.Text, start *spec.State, f GPTStepFunc) *Replayer {
	var opts []ReplayerOption
	if f != nil {
		opts = append(opts, WithGPTStep(f))
	}
	r, err := NewGPTReplayer(s, text, start, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// gptAt applies f to the honest tensors of step t0 and passes other steps.
func gptAt(t0 int64, f func(g *gptref.Graph, vals map[string]ref.Tensor) error) GPTStepFunc {
	return func(g *gptref.Graph, st *gpt.State, tokens, targets []byte) (map[string]ref.Tensor, error) {
		vals, err := HonestGPT(g, st, tokens, targets)
		if err != nil || st.Step != t0 {
			return vals, err
		}
		return vals, f(g, vals)
	}
}

// gptRecompute runs operators from, from+1, … again on vals: a party that
// computed one value wrongly and everything after it faithfully.
func gptRecompute(g *gptref.Graph, vals map[string]ref.Tensor, t int64, from int) error {
	ops := g.Ops()
	for k := from; k < len(ops); k++ {
		in := map[string]ref.Tensor{}
		for _, name := range ops[k].Inputs {
			in[name] = vals[name]
		}
		out, err := g.RunOp(k, in, t)
		if err != nil {
			return err
		}
		for name, v := range out {
			vals[name] = v
		}
	}
	return nil
}

// gptTamper moves element i of the named tensor by delta (or -delta,
// staying in range) and recomputes everything downstream.
func gptTamper(t0 int64, name string, i int, delta int64) GPTStepFunc {
	return gptAt(t0, func(g *gptref.Graph, vals map[string]ref.Tensor) error {
		info, ok := g.Tensor(name)
		if !ok {
			return errors.New("no tensor " + name)
		}
		v := vals[name].Clone()
		if v.Data[i] <= info.Max-delta {
			v.Data[i] += delta
		} else {
			v.Data[i] -= delta
		}
		vals[name] = v
		return gptRecompute(g, vals, t0, info.Producer+1)
	})
}

// TestGPTReplayerMatchesTheVector: the GPT party's digests are the
// conformance vector's (windows, the reference step, the state's int32
// and int64 leaves), and its claims rebuild them.
func TestGPTReplayerMatchesTheVector(t *testing.T) {
	t.Parallel()
	s, text, digests := gptJob(t)
	r := gptReplayer(t, s, text, gptInit(t, s), nil)
	ctx := context.Background()
	job, _ := s.ID()
	for k, want := range digests {
		got, err := r.DigestAt(ctx, int64(k))
		if err != nil || got != want {
			t.Fatalf("digest after %d steps: %x (%v), vector %x", k, got[:6], err, want[:6])
		}
	}
	c, err := r.Claim(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	before, after := stateDigests(r.lay, job, 3, c)
	if before != digests[3] || after != digests[4] {
		t.Fatal("a GPT claim's state leaves do not rebuild the digests")
	}
	// A GPT's second moments hash as int64 leaves, the rest as int32.
	for _, i := range r.lay.stateIn {
		info := r.lay.tensors[i]
		if want := strings.HasSuffix(info.Name, ".v"); (StateDType(info) == spec.DTypeInt64) != want {
			t.Errorf("%s hashes as %v", info.Name, StateDType(info))
		}
	}
	if _, err := NewReplayer(s, nil, gptInit(t, s)); err == nil {
		t.Fatal("an MLP replayer of a GPT job")
	}
	other, _ := dataset.NewText(append([]byte("x"), make([]byte, text.Len()-1)...))
	if _, err := NewGPTReplayer(s, other, gptInit(t, s)); err == nil {
		t.Fatal("a replayer on another corpus")
	}
	if _, err := NewGPTReplayer(s, text, s.Init()); err == nil {
		t.Fatal("a replayer from a state that is not the GPT's")
	}
}

// (a) An honest solver and a verifier that lies about one operator's
// output of a GPT step: the referee recomputes exactly that operator, and
// the liar loses.
func TestGPTFalseAccuserLoses(t *testing.T) {
	t.Parallel()
	s, text, _ := gptJob(t)
	const t0 = 5
	for _, c := range []struct {
		tensor, op string
		i          int
		delta      int64
	}{
		{"head.wq", "quantize.head", 1, 1},
		{"act.0.x", "embed", 1, 1},
		{"act.1.attn.Oq", "1.attn", 1, 7},
		{"act.0.xmid", "0.out", 1, 1 << 10},
		{"act.1.hq", "1.silu", 1, 3},
		{"loss.grad", "loss", 1, 5},
		{"grad.blocks.0.mlp.up", "0.up.bwd", 1, 1 << 20},
		{"grad.0.dV", "0.attn.bwd", 1, 1 << 10},
		{"adamw.norm", "adamw.norm", 0, 1},
		{"next.blocks.1.attn.qkv.v", "adamw.blocks.1.attn.qkv", 1, 1 << 30},
	} {
		t.Run(c.tensor, func(t *testing.T) {
			t.Parallel()
			solver := gptReplayer(t, s, text, gptInit(t, s), nil)
			accuser := gptReplayer(t, s, text, gptInit(t, s), gptTamper(t0, c.tensor, c.i, c.delta))
			play(t, s, segment(t, solver, accuser, 0, s.Steps), solver, accuser, want{Verdict{LoserVerifier, ReasonOp}, t0, c.op})
		})
	}
}

// (b) A cheating solver against an honest verifier: a state changed after
// the step, a wrong attention output, a wrong AdamW update, a skipped
// step, another learning rate. The game ends at the first operator the
// cheat changed, and the solver loses.
func TestGPTCheatingSolverLoses(t *testing.T) {
	t.Parallel()
	s, text, _ := gptJob(t)
	const t0 = 2
	skip := gptAt(t0, func(g *gptref.Graph, vals map[string]ref.Tensor) error {
		for _, info := range g.Tensors() {
			if info.Kind == opgraph.StateOut {
				vals[info.Name] = vals[info.StateName].Clone()
			}
		}
		return nil
	})
	fastLR := func(g *gptref.Graph, st *gpt.State, tokens, targets []byte) (map[string]ref.Tensor, error) {
		if st.Step != t0 {
			return HonestGPT(g, st, tokens, targets)
		}
		c := g.Config()
		c.LR = []gpt.LRPoint{{Step: 0, Value: c.LRAt(t0) * 2}}
		fast, err := gptref.NewGraph(c)
		if err != nil {
			return nil, err
		}
		return fast.Run(st, tokens, targets)
	}
	for _, c := range []struct {
		name string
		f    GPTStepFunc
		op   string
	}{
		{"state changed", gptAt(t0, func(g *gptref.Graph, vals map[string]ref.Tensor) error {
			v := vals["next.blocks.0.mlp.down"].Clone()
			v.Data[3]++
			vals["next.blocks.0.mlp.down"] = v
			return nil
		}), "adamw.blocks.0.mlp.down"},
		{"attention output", gptTamper(t0, "act.0.attn.Oq", 4, 9), "0.attn"},
		{"attention probabilities", gptTamper(t0, "act.1.attn.P", 8, 1), "1.attn"},
		{"adamw moment", gptTamper(t0, "next.pos_emb.m", 0, 1<<12), "adamw.pos_emb"},
		{"skipped step", skip, "adamw.tok_emb"},
		{"learning rate", fastLR, "adamw.tok_emb"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			honest := gptReplayer(t, s, text, gptInit(t, s), nil)
			cheat := gptReplayer(t, s, text, gptInit(t, s), c.f)
			res := play(t, s, segment(t, cheat, honest, 0, s.Steps), cheat, honest, want{Verdict{LoserSolver, ReasonOp}, t0, c.op})
			t.Logf("referee cost: %+v", res.Cost)
		})
	}
	// A segment that starts at a later agreed state.
	start := gptReplayer(t, s, text, gptInit(t, s), nil)
	start.mu.Lock()
	st, err := start.stateAt(context.Background(), 3)
	start.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	honest := gptReplayer(t, s, text, st, nil)
	cheat := gptReplayer(t, s, text, st, gptTamper(6, "act.0.ln2.yq", 0, 1))
	play(t, s, segment(t, cheat, honest, 3, s.Steps), cheat, honest, want{Verdict{LoserSolver, ReasonOp}, 6, "0.ln2"})
}

// otherWindows is a solver that trains step t0 on step t0+1's windows;
// with record it claims them, without it claims the right batch.
func otherWindows(s *spec.Spec, text *dataset.Text, t0 int64, record bool) GPTStepFunc {
	return func(g *gptref.Graph, st *gpt.State, tokens, targets []byte) (map[string]ref.Tensor, error) {
		if st.Step != t0 {
			return HonestGPT(g, st, tokens, targets)
		}
		c := g.Config()
		split, _ := s.TextSplit()
		var tk, tg []byte
		for _, o := range dataset.TrainWindows(c.Seed, t0+1, c.Batch, c.Context, split.Train, nil) {
			w, err := text.Bytes(int(o), c.Context+1)
			if err != nil {
				return nil, err
			}
			tk, tg = append(tk, w[:c.Context]...), append(tg, w[1:]...)
		}
		vals, err := HonestGPT(g, st, tk, tg)
		if err != nil || record {
			return vals, err
		}
		vals["tokens"], vals["targets"] = bytesTensor(tokens), bytesTensor(targets)
		return vals, nil
	}
}

func bytesTensor(b []byte) ref.Tensor {
	v := ref.Tensor{Shape: []int{len(b)}, Data: make([]int64, len(b))}
	for i, x := range b {
		v.Data[i] = int64(x)
	}
	return v
}

// (c) A disputed GPT batch is settled by the window proofs against the
// spec's text commitment, whatever the parties open.
func TestGPTBatchDispute(t *testing.T) {
	t.Parallel()
	s, text, _ := gptJob(t)
	const t0 = 4
	honest := func() *Replayer { return gptReplayer(t, s, text, gptInit(t, s), nil) }
	cheat := func(record bool) *Replayer {
		return gptReplayer(t, s, text, gptInit(t, s), otherWindows(s, text, t0, record))
	}
	t.Run("windows recorded", func(t *testing.T) {
		t.Parallel()
		c, h := cheat(true), honest()
		res := play(t, s, segment(t, c, h, 0, s.Steps), c, h, want{Verdict{LoserSolver, ReasonBatch}, t0, ""})
		if res.Cost.SamplesChecked != s.BatchSize {
			t.Fatalf("checked %d windows", res.Cost.SamplesChecked)
		}
	})
	t.Run("windows hidden", func(t *testing.T) {
		t.Parallel()
		c, h := cheat(false), honest()
		play(t, s, segment(t, c, h, 0, s.Steps), c, h, want{Verdict{LoserSolver, ReasonOp}, t0, "embed"})
	})
	t.Run("wrong bytes opened", func(t *testing.T) {
		t.Parallel()
		c, h := cheat(true), honest()
		l := &liar{Party: c, openBatch: func(ctx context.Context, t int64) (*BatchOpening, error) {
			o, err := c.OpenBatch(ctx, t)
			o.Windows[1].Bytes[2] ^= 1
			return o, err
		}}
		play(t, s, segment(t, l, h, 0, s.Steps), l, h, want{Verdict{LoserSolver, ReasonBatch}, t0, ""})
	})
	t.Run("wrong starts opened", func(t *testing.T) {
		t.Parallel()
		// The cheater opens the windows it trained on, each proven.
		c, h := cheat(true), honest()
		l := &liar{Party: c, openBatch: func(ctx context.Context, t int64) (*BatchOpening, error) {
			return c.OpenBatch(ctx, t+1)
		}}
		play(t, s, segment(t, l, h, 0, s.Steps), l, h, want{Verdict{LoserSolver, ReasonBatch}, t0, ""})
	})
	t.Run("false accusation", func(t *testing.T) {
		t.Parallel()
		h, c := honest(), cheat(true)
		play(t, s, segment(t, h, c, 0, s.Steps), h, c, want{Verdict{LoserVerifier, ReasonBatch}, t0, ""})
	})
}

// VerifyBatch on a GPT: exactly the step's windows, in order, each T+1
// proven bytes; anything else is ErrBadOpening.
func TestGPTVerifyBatch(t *testing.T) {
	t.Parallel()
	s, text, _ := gptJob(t)
	r := gptReplayer(t, s, text, gptInit(t, s), nil)
	ctx := context.Background()
	o, err := r.OpenBatch(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	tokens, targets, err := VerifyBatch(s, 6, o)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := r.Open(ctx, 6, "tokens")
	wantT, _ := r.Open(ctx, 6, "targets")
	if !equalTensors(tokens, want) || !equalTensors(targets, wantT) {
		t.Fatal("VerifyBatch's tokens and targets are not the step's")
	}
	clone := func() *BatchOpening {
		b, err := o.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var c BatchOpening
		if err := c.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	for name, mut := range map[string]func(o *BatchOpening){
		"window dropped":    func(o *BatchOpening) { o.Windows = o.Windows[1:] },
		"windows swapped":   func(o *BatchOpening) { o.Windows[0], o.Windows[1] = o.Windows[1], o.Windows[0] },
		"start moved":       func(o *BatchOpening) { o.Windows[2].Start++ },
		"byte changed":      func(o *BatchOpening) { o.Windows[0].Bytes[8] ^= 0x20 },
		"window cut":        func(o *BatchOpening) { o.Windows[0].Bytes = o.Windows[0].Bytes[:8] },
		"chunk changed":     func(o *BatchOpening) { o.Windows[0].Proof.Chunks[0][0] ^= 1 },
		"proof dropped":     func(o *BatchOpening) { o.Windows[0].Proof = dataset.TextWindowProof{} },
		"samples too":       func(o *BatchOpening) { o.Samples = []OpenedSample{{}} },
		"no batch":          func(o *BatchOpening) { *o = BatchOpening{} },
		"hostile start":     func(o *BatchOpening) { o.Windows[0].Start = -1 << 40 },
		"hostile proof idx": func(o *BatchOpening) { o.Windows[0].Proof.Proofs[0].Index = 1 << 62 },
	} {
		c := clone()
		mut(c)
		if _, _, err := VerifyBatch(s, 6, c); !errors.Is(err, ErrBadOpening) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := VerifyBatch(s, 5, clone()); !errors.Is(err, ErrBadOpening) {
		t.Errorf("step 6's windows accepted as step 5's: %v", err)
	}
	if _, _, err := VerifyBatch(s, s.Steps, clone()); !errors.Is(err, ErrBadOpening) {
		t.Errorf("a step past the job: %v", err)
	}
	if _, _, err := VerifyBatch(s, 6, nil); !errors.Is(err, ErrBadOpening) {
		t.Errorf("nil opening: %v", err)
	}
	// An MLP's spec refuses windows, and a GPT's samples.
	mlp, _ := tinyJob(t)
	if _, _, err := VerifyBatch(mlp, 6, clone()); !errors.Is(err, ErrBadOpening) {
		t.Errorf("windows as an MLP batch: %v", err)
	}
}

func equalTensors(a, b ref.Tensor) bool {
	if len(a.Shape) != len(b.Shape) || len(a.Data) != len(b.Data) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	for i := range a.Data {
		if a.Data[i] != b.Data[i] {
			return false
		}
	}
	return true
}

// (d) GPT evidence re-checks from the spec alone, round-trips through its
// encoding, and does not check once tampered with or against another job.
func TestGPTEvidence(t *testing.T) {
	t.Parallel()
	s, text, _ := gptJob(t)
	cheat := gptReplayer(t, s, text, gptInit(t, s), gptTamper(1, "act.1.K", 40, 900))
	h := gptReplayer(t, s, text, gptInit(t, s), nil)
	res := play(t, s, segment(t, cheat, h, 0, s.Steps), cheat, h, want{Verdict{LoserSolver, ReasonOp}, 1, "1.qkv"})
	clone := func() Evidence {
		b, _ := res.Evidence.MarshalBinary()
		ev, err := DecodeEvidence(b)
		if err != nil {
			t.Fatal(err)
		}
		return *ev
	}
	for name, mut := range map[string]func(ev *Evidence){
		"verdict flipped":  func(ev *Evidence) { ev.Verdict.Loser = LoserVerifier },
		"opened value":     func(ev *Evidence) { ev.Inputs[2].Tensor.Data[0]++ },
		"exponent moved":   func(ev *Evidence) { ev.Inputs[1].Tensor.Data[0]++ },
		"input renamed":    func(ev *Evidence) { ev.Inputs[0].Name = "act.0.ln1.yq" },
		"other operator":   func(ev *Evidence) { ev.Op++ },
		"batch added":      func(ev *Evidence) { ev.Batch = &BatchOpening{} },
		"step changed":     func(ev *Evidence) { ev.Step++ },
		"solver claim cut": func(ev *Evidence) { ev.Solver.Hashes = ev.Solver.Hashes[:10] },
	} {
		ev := clone()
		mut(&ev)
		if v, err := Check(s, ev); err == nil {
			t.Errorf("%s: Check accepted it (%v)", name, v)
		}
	}
	mlp, _ := tinyJob(t)
	if _, err := Check(mlp, clone()); !errors.Is(err, ErrBadEvidence) {
		t.Errorf("GPT evidence against an MLP spec: %v", err)
	}
	// Batch evidence round-trips too, windows and all.
	c := gptReplayer(t, s, text, gptInit(t, s), otherWindows(s, text, 3, true))
	res = play(t, s, segment(t, c, h, 0, s.Steps), c, h, want{Verdict{LoserSolver, ReasonBatch}, 3, ""})
	if res.Evidence.Batch == nil || len(res.Evidence.Batch.Windows) != s.BatchSize {
		t.Fatal("batch evidence without the windows")
	}
}

// (e) Hostile answers in a GPT game: malformed claims lose without
// anything being opened; openings of the wrong shape, range or value fall
// to the other party; nothing panics.
func TestGPTHostileAnswers(t *testing.T) {
	t.Parallel()
	s, text, _ := gptJob(t)
	const t0 = 3
	cheatStep := gptTamper(t0, "act.0.u", 5, 100)
	for _, c := range []struct {
		name string
		lie  func(p *Replayer) Party
		w    want
	}{
		{"short claim", func(p *Replayer) Party {
			return &liar{Party: p, claim: func(ctx context.Context, t int64) (Claim, error) {
				c, err := p.Claim(ctx, t)
				c.Hashes = c.Hashes[:len(c.Hashes)-1]
				return c, err
			}}
		}, want{Verdict{LoserSolver, ReasonInconsistent}, t0, ""}},
		{"moved start state", func(p *Replayer) Party {
			return &liar{Party: p, claim: func(ctx context.Context, t int64) (Claim, error) {
				c, err := p.Claim(ctx, t)
				c.Hashes[2][0] ^= 1 // tok_emb.v before the step
				return c, err
			}}
		}, want{Verdict{LoserSolver, ReasonInconsistent}, t0, ""}},
		{"hostile opening", func(p *Replayer) Party {
			return &liar{Party: p, open: func(context.Context, int64, string) (ref.Tensor, error) {
				return ref.Tensor{Shape: []int{1 << 40, -3, 0, 7}, Data: []int64{1}}, nil
			}}
		}, want{Verdict{LoserSolver, ReasonOp}, t0, "0.up"}},
		{"out-of-range opening", func(p *Replayer) Party {
			return &liar{Party: p, open: func(ctx context.Context, t int64, name string) (ref.Tensor, error) {
				v, err := p.Open(ctx, t, name)
				v.Data[0] = 1 << 62
				return v, err
			}}
		}, want{Verdict{LoserSolver, ReasonOp}, t0, "0.up"}},
		{"hostile batch", func(p *Replayer) Party {
			return &liar{Party: p, openBatch: func(context.Context, int64) (*BatchOpening, error) {
				return &BatchOpening{Windows: []OpenedWindow{{Start: -5, Bytes: nil}}}, nil
			}}
		}, want{Verdict{LoserSolver, ReasonOp}, t0, "0.up"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			solver := c.lie(gptReplayer(t, s, text, gptInit(t, s), cheatStep))
			h := gptReplayer(t, s, text, gptInit(t, s), nil)
			play(t, s, segment(t, solver, h, 0, s.Steps), solver, h, c.w)
		})
	}
}

// A recomputation that refuses inputs both parties signed (values no
// valid step produces) makes both lose; Check decides the same.
func TestRefusedRecomputationLosesBoth(t *testing.T) {
	t.Parallel()
	s, text, _ := gptJob(t)
	cheat := gptReplayer(t, s, text, gptInit(t, s), gptTamper(2, "act.1.xmid", 0, 1))
	h := gptReplayer(t, s, text, gptInit(t, s), nil)
	r, err := NewReferee(s)
	if err != nil {
		t.Fatal(err)
	}
	r.runOp = func(opgraph.Graph, int64, int, map[string]ref.Tensor) (map[string]ref.Tensor, error) {
		return nil, gptref.ErrOverflow
	}
	res, err := r.Play(context.Background(), segment(t, cheat, h, 0, s.Steps), cheat, h)
	if err != nil || res.Verdict != (Verdict{LoserBoth, ReasonOp}) {
		t.Fatalf("verdict %v, %v", res.Verdict, err)
	}
}

// TestGPTRefereeCost: a GPT step's operators and what one costs the
// referee against the step, for the tiny vector and spec.ExampleGPT.
func TestGPTRefereeCost(t *testing.T) {
	t.Parallel()
	tiny, _, _ := gptJob(t)
	for _, s := range []*spec.Spec{tiny, spec.ExampleGPT()} {
		l, err := graphOf(s)
		if err != nil {
			t.Fatal(err)
		}
		var top opgraph.OpInfo
		for _, o := range l.ops {
			if o.Work > top.Work {
				top = o
			}
		}
		c, _ := s.GPT()
		t.Logf("%s: %d operators, %d tensors; step work %d, largest operator %s %d (%.1f%%); StepMACs %d",
			s.Name, len(l.ops), len(l.tensors), l.work, top.Name, top.Work, 100*float64(top.Work)/float64(l.work), c.StepMACs())
		if want := 2 + 4*c.Layers + 1; len(l.stateIn) != 3*(want) {
			t.Fatalf("%d state tensors, want %d", len(l.stateIn), 3*want)
		}
		if top.Work > l.work/3 {
			t.Fatalf("one operator is %d of the step's %d", top.Work, l.work)
		}
	}
}

// FuzzDecodeWindows: decoding arbitrary bytes as a batch opening never
// panics, what decodes re-encodes to the same bytes, and VerifyBatch on it
// against the GPT's spec returns, never panics.
func FuzzDecodeWindows(f *testing.F) {
	s, text, _ := gptJob(f)
	o, err := gptReplayer(f, s, text, gptInit(f, s), nil).OpenBatch(context.Background(), 2)
	if err != nil {
		f.Fatal(err)
	}
	b, err := o.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/3])
	f.Add([]byte(windowsTag + "\x01\x00\x00\x00"))
	f.Add([]byte(windowsTag + "\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var o BatchOpening
		if o.UnmarshalBinary(data) != nil {
			return
		}
		if b, err := o.MarshalBinary(); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("batch opening re-encodes differently: %v", err)
		}
		_, _, _ = VerifyBatch(s, 2, &o)
	})
}

// FuzzDecodeGPTEvidence: FuzzDecodeEvidence for a GPT job, seeded with an
// operator's and a batch's evidence; Check on whatever decodes returns a
// verdict or an error, never panics.
func FuzzDecodeGPTEvidence(f *testing.F) {
	s, text, _ := gptJob(f)
	r, err := NewReferee(s)
	if err != nil {
		f.Fatal(err)
	}
	for _, cheat := range []GPTStepFunc{gptTamper(1, "act.0.hq", 2, 1), otherWindows(s, text, 5, true)} {
		solver := gptReplayer(f, s, text, gptInit(f, s), cheat)
		h := gptReplayer(f, s, text, gptInit(f, s), nil)
		res, err := r.Play(context.Background(), segment(f, solver, h, 0, s.Steps), solver, h)
		if err != nil || res.Evidence == nil {
			f.Fatalf("seed game: %v", err)
		}
		b, err := res.Evidence.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-3])
	}
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
