package disputenet_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/net/disputenet"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
	"github.com/beluga-compute/beluga/spec/ref"
)

// gptTiny is the "gpt-tiny" conformance vector: a 2-block GPT, batch 3,
// 8 steps on a 372-byte corpus.
func gptTiny(t *testing.T) (*spec.Spec, *dataset.Text) {
	dir := "../../../spec/testdata/gptvectors/gpt-tiny"
	js, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := os.ReadFile(filepath.Join(dir, "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := dataset.NewText(corpus)
	if err != nil {
		t.Fatal(err)
	}
	return s, text
}

// serve starts a node that answers the referee with p for job.
func serve(t *testing.T, job spec.JobID, p dispute.Party) *p2p.Node {
	n, err := p2p.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	disputenet.Serve(n, func(j spec.JobID) (dispute.Party, error) {
		if j != job {
			return nil, disputenet.ErrNoParty
		}
		return p, nil
	})
	return n
}

// TestGPTDisputeOverTheNetwork: a GPT dispute refereed over libp2p — the
// claims, a rank-4 attention tensor or the windows and their proofs cross
// the wire — ends at one operator (or at the batch's proofs) against the
// cheating solver, with evidence that checks from the spec alone.
func TestGPTDisputeOverTheNetwork(t *testing.T) {
	t.Parallel()
	s, text := gptTiny(t)
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	job, _ := s.ID()
	const t0 = 4
	// The cheater moves one attention probability of step t0 (below the
	// causal diagonal) and computes the rest faithfully.
	attn := func(g *gptref.Graph, st *gpt.State, tokens, targets []byte) (map[string]ref.Tensor, error) {
		vals, err := dispute.HonestGPT(g, st, tokens, targets)
		if err != nil || st.Step != t0 {
			return vals, err
		}
		v := vals["act.0.attn.P"].Clone()
		v.Data[c.Context]++ // row 1, column 0 of the first head
		vals["act.0.attn.P"] = v
		ops := g.Ops()
		info, _ := g.Tensor("act.0.attn.P")
		for k := info.Producer + 1; k < len(ops); k++ {
			in := map[string]ref.Tensor{}
			for _, name := range ops[k].Inputs {
				in[name] = vals[name]
			}
			out, err := g.RunOp(k, in, t0)
			if err != nil {
				return nil, err
			}
			for name, x := range out {
				vals[name] = x
			}
		}
		return vals, nil
	}
	// The other trains step t0 on step t0+1's windows and claims them.
	split, _ := s.TextSplit()
	windows := func(g *gptref.Graph, st *gpt.State, tokens, targets []byte) (map[string]ref.Tensor, error) {
		if st.Step == t0 {
			tokens, targets = nil, nil
			for _, o := range dataset.TrainWindows(c.Seed, t0+1, c.Batch, c.Context, split.Train, nil) {
				w, _ := text.Bytes(int(o), c.Context+1)
				tokens, targets = append(tokens, w[:c.Context]...), append(targets, w[1:]...)
			}
		}
		return dispute.HonestGPT(g, st, tokens, targets)
	}
	for _, tc := range []struct {
		name string
		step dispute.GPTStepFunc
		want dispute.Verdict
		ops  int
	}{
		{"attention", attn, dispute.Verdict{Loser: dispute.LoserSolver, Reason: dispute.ReasonOp}, 1},
		{"windows", windows, dispute.Verdict{Loser: dispute.LoserSolver, Reason: dispute.ReasonBatch}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			start := spec.GPTTensors(c, c.Init())
			cheat, err := dispute.NewGPTReplayer(s, text, start, dispute.WithGPTStep(tc.step))
			if err != nil {
				t.Fatal(err)
			}
			honest, err := dispute.NewGPTReplayer(s, text, start)
			if err != nil {
				t.Fatal(err)
			}
			sn, vn := serve(t, job, cheat), serve(t, job, honest)
			referee, err := p2p.New(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { referee.Close() })
			sp, err := referee.Connect(ctx, sn.Addrs()[0])
			if err != nil {
				t.Fatal(err)
			}
			vp, err := referee.Connect(ctx, vn.Addrs()[0])
			if err != nil {
				t.Fatal(err)
			}
			solver := &disputenet.Remote{Node: referee, Peer: sp, Job: job}
			verifier := &disputenet.Remote{Node: referee, Peer: vp, Job: job}
			seg := dispute.Segment{Start: 0, End: s.Steps}
			if seg.StartDigest, err = solver.DigestAt(ctx, 0); err != nil {
				t.Fatal(err)
			}
			if seg.SolverEnd, err = solver.DigestAt(ctx, s.Steps); err != nil {
				t.Fatal(err)
			}
			if seg.VerifierEnd, err = verifier.DigestAt(ctx, s.Steps); err != nil {
				t.Fatal(err)
			}
			r, err := dispute.NewReferee(s)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Play(ctx, seg, solver, verifier)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.want || res.Cost.OpsRun != tc.ops || res.Evidence == nil || res.Evidence.Step != t0 {
				t.Fatalf("verdict %v (%s), %d operators run, evidence %v", res.Verdict, res.Forfeit, res.Cost.OpsRun, res.Evidence != nil)
			}
			b, err := res.Evidence.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			ev, err := dispute.DecodeEvidence(b)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := dispute.Check(s, *ev); err != nil || v != tc.want {
				t.Fatalf("Check: %v %v", v, err)
			}
			t.Logf("%s: %+v, evidence %d bytes", tc.name, res.Cost, len(b))
		})
	}
}
