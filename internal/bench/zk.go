package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/logger"

	"github.com/beluga-compute/beluga/circuits/tile"
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/protocol/core/zkcommit"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/ref"
)

// ZKConfig sets up `beluga bench zk`: the cost of a confidential audit of
// the reference job against the cost of training it.
type ZKConfig struct {
	// Steps of the reference job: Fashion-MNIST, 3 epochs of batch 64.
	Steps int64
	// Layer whose tile is proven (0 is the largest circuit).
	Layer   int
	Repeats int
}

// DefaultZKConfig is the Fashion-MNIST reference job (60,000 samples,
// 3 epochs, batch 64: 2,813 steps) and the first layer's tile.
func DefaultZKConfig() ZKConfig { return ZKConfig{Steps: 3 * 60000 / 64, Layer: 0, Repeats: 3} }

// ZKResult is what `beluga bench zk` measured.
type ZKResult struct {
	Steps, Samples                   int64
	StepMillis, DigestMillis         float64
	ZKCommitMillis                   float64
	Constraints                      int
	SetupMillis, ProveMillis         float64
	VerifyMillis                     float64
	ProofBytes                       int
	SHABlockConstraints, SHAPerProof int64
}

// ZK measures, on the reference MLP 784-256-128-10 at batch 64: a training
// step, a SHA-256 state digest, a zk commitment of a step, and the Groth16
// proof of one challenged tile (keys from a single-party setup, which
// costs the same as the ceremony's keys to use). The planner gives the
// number of challenged steps for the spec's audit policy.
func ZK(ctx context.Context, cfg ZKConfig) (*ZKResult, error) {
	logger.Disable()
	s, err := MLPSpec(64)
	if err != nil {
		return nil, err
	}
	s.Steps = cfg.Steps
	ds, err := dataset.Synthetic(1, s.Data.Train.Count, 784, 10)
	if err != nil {
		return nil, err
	}
	r := &ZKResult{Steps: cfg.Steps}
	if r.Samples, err = plan.SampleCount(cfg.Steps, 1, s.Audit.CheatFractionPPM, s.Audit.ConfidencePPM, plan.Clustered); err != nil {
		return nil, err
	}
	tc := DefaultTrainConfig()
	if r.StepMillis, err = timeEngine(ctx, s, ds, kernel.Best(), 1, tc); err != nil {
		return nil, err
	}

	// One real step's values, then the commitments.
	st := s.Init()
	batches := engine.NewBatcher(s, ds)
	x, y := batches.Batch(0)
	tr, next, err := ref.StepOps(s, st, 0, x, y)
	if err != nil {
		return nil, err
	}
	vals, err := zkcommit.StepValues(tr)
	if err != nil {
		return nil, err
	}
	job, _ := s.ID()
	h := &commit.Hasher{Threads: 1}
	r.DigestMillis = best(cfg.Repeats, func() { h.StateDigest(job, st) })
	l, err := zkcommit.NewLayout(s)
	if err != nil {
		return nil, err
	}
	var in *zkcommit.Tree
	r.ZKCommitMillis = best(cfg.Repeats, func() { in, err = l.Commit(st, vals) })
	if err != nil {
		return nil, err
	}
	x, y = batches.Batch(1)
	tr2, _, err := ref.StepOps(s, next, 1, x, y)
	if err != nil {
		return nil, err
	}
	vals2, err := zkcommit.StepValues(tr2)
	if err != nil {
		return nil, err
	}
	out, err := l.Commit(next, vals2)
	if err != nil {
		return nil, err
	}

	// The tile proof.
	p, err := tile.ParamsFor(s, cfg.Layer)
	if err != nil {
		return nil, err
	}
	w, err := tile.Build(s, l, cfg.Layer, 0, 0, st, vals, in, out)
	if err != nil {
		return nil, err
	}
	c, _ := tile.New(p)
	ccs, err := prover.CompileR1CS(c)
	if err != nil {
		return nil, err
	}
	r.Constraints = ccs.GetNbConstraints()
	var pk groth16.ProvingKey
	var vk groth16.VerifyingKey
	r.SetupMillis = best(1, func() { pk, vk, err = groth16.Setup(ccs) })
	if err != nil {
		return nil, err
	}
	var proof []byte
	r.ProveMillis = best(cfg.Repeats, func() { proof, err = prover.ProveGroth16(ccs, pk, w.Assignment(p)) })
	if err != nil {
		return nil, err
	}
	r.ProofBytes = len(proof)
	pub := w.Public.Assignment(p)
	r.VerifyMillis = best(cfg.Repeats*5, func() { err = prover.VerifyGroth16(vk, proof, pub) })
	if err != nil {
		return nil, err
	}

	// The alternative: open the SHA-256 state digest inside the circuit.
	// A tile's inputs and outputs are 4 × 2 KiB (w‖v in and out, g, a
	// blocks) = 128 SHA-256 blocks, plus ~4 paths of ~10 nodes of 2 blocks;
	// circuits/stats measures 166,375 constraints for 1 block and 695,462
	// for 16, i.e. ~35k per extra block.
	r.SHABlockConstraints = (695462 - 166375) / 15
	r.SHAPerProof = int64(r.Constraints) + (128+4*10*2)*r.SHABlockConstraints
	return r, nil
}

func best(n int, f func()) float64 {
	var ds []time.Duration
	for range max(n, 1) {
		t0 := time.Now()
		f()
		ds = append(ds, time.Since(t0))
	}
	return float64(slices.Min(ds).Microseconds()) / 1e3
}

// PrintZK prints the cost breakdown of a confidential audit.
func PrintZK(w io.Writer, r *ZKResult, cfg ZKConfig) {
	fmt.Fprintf(w, "Confidential audit of the reference job vs training it (%s, %s)\n", cpuModel(), runtime.Version())
	fmt.Fprintf(w, "job: MLP 784-256-128-10, batch 64, %d steps; audit: cheating on ≥1%% of steps caught with ≥99%% → %d challenged steps (planner, clustered, k = 1)\n\n", r.Steps, r.Samples)
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "item\tper unit\tunits\ttotal\t× training\t")
	train := float64(r.Steps) * r.StepMillis
	row := func(name string, unit float64, n int64) float64 {
		tot := unit * float64(n)
		fmt.Fprintf(tw, "%s\t%.3f ms\t%d\t%.1f s\t%.2f\t\n", name, unit, n, tot/1e3, tot/train)
		return tot
	}
	row("training step (1 thread)", r.StepMillis, r.Steps)
	row("SHA-256 state digest (replay audits)", r.DigestMillis, r.Steps+1)
	zc := row("zk commitment (Poseidon2, 2 threads)", r.ZKCommitMillis, r.Steps+1)
	pr := row(fmt.Sprintf("tile proof (Groth16, %d constraints)", r.Constraints), r.ProveMillis, r.Samples)
	vf := row("tile verification", r.VerifyMillis, r.Samples)
	tw.Flush()
	total := zc + pr + vf
	fmt.Fprintf(w, "\nconfidential audit total: %.1f s = %.0f× the training (%.2f s); proofs alone %.0f×\n", total/1e3, total/train, train/1e3, pr/train)
	fmt.Fprintf(w, "proof %d bytes, verify %.2f ms, prove %.0f ms, setup %.1f s (single-party here; the ceremony yields keys of the same shape)\n",
		r.ProofBytes, r.VerifyMillis, r.ProveMillis, r.SetupMillis/1e3)
	shaProve := r.ProveMillis * float64(r.SHAPerProof) / float64(r.Constraints)
	fmt.Fprintf(w, "alternative, SHA-256 digests opened in-circuit: ~%d constraints per proof (≈%d per SHA block), ≈%.0f s per proof at the measured rate: %.0f s of proofs vs %.0f s of Poseidon2 commitments + proofs\n",
		r.SHAPerProof, r.SHABlockConstraints, shaProve/1e3, shaProve*float64(r.Samples)/1e3, total/1e3)
}
