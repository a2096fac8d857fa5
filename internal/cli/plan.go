package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
)

func newPlanCmd() *cobra.Command {
	var specPath, example, modelName, dataDir string
	var gainMicroUSD, maxReplayPPM, segmentMicros, stepNSFlag, digestNSFlag int64
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Audit plan for a spec: samples, replayed fraction, solver overhead and bond per digest interval",
		Long: `Plan measures this machine's step and digest times for the spec, then for each
candidate digest interval k computes the audit's sample count for the spec's
policy (cheat fraction, confidence), the steps an audit replays, the solver's
hashing overhead (hashing inline; overlapping it on a second core, as train
--commit does, costs less: see beluga bench commit) and the total; it picks the
k with the least total cost within --max-replay-ppm, and the bond that makes
cheating a losing bet for a solver that could gain --gain-micro-usd.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var s *spec.Spec
			var err error
			if specPath != "" {
				s, err = readSpec(specPath)
			} else {
				s, err = catalog.Example(example)
			}
			if err != nil {
				return err
			}
			model, err := plan.ParseModel(modelName)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			train, _, err := catalog.LoadData(s, dataDir)
			if err != nil {
				return err
			}
			stepNS, digestNS := stepNSFlag, digestNSFlag
			if stepNS <= 0 || digestNS <= 0 {
				m1, m2, err := measure(c, s, train)
				if err != nil {
					return err
				}
				stepNS, digestNS = cmp.Or(max(stepNS, 0), m1), cmp.Or(max(digestNS, 0), m2)
			}
			p, points, err := plan.ChooseInterval(plan.Inputs{
				Steps: s.Steps, CheatFractionPPM: s.Audit.CheatFractionPPM, ConfidencePPM: s.Audit.ConfidencePPM,
				Model: model, StepNanos: stepNS, DigestNanos: digestNS, SegmentNanos: segmentMicros * 1000,
				MaxReplayPPM: maxReplayPPM, GainMicroUSD: gainMicroUSD,
			})
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			if jsonOut {
				return json.NewEncoder(out).Encode(map[string]any{"plan": p, "points": points, "step_ns": stepNS, "digest_ns": digestNS})
			}
			fmt.Fprintf(out, "%s: %d steps, cheat fraction %d ppm, confidence %d ppm, %s model\n", s.Name, s.Steps, s.Audit.CheatFractionPPM, s.Audit.ConfidencePPM, model)
			fmt.Fprintf(out, "step %.3f ms, state digest %.3f ms\n\n", float64(stepNS)/1e6, float64(digestNS)/1e6)
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "k\tsegments\tsamples\treplayed\tsolver overhead\tsolver s\taudit s\ttotal s\tfeasible\t")
			for _, pt := range points {
				mark := ""
				if pt.Interval == p.Interval {
					mark = " ←"
				}
				fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f%%\t%.1f%%\t%.3f\t%.3f\t%.3f\t%v%s\t\n", pt.Interval, pt.Segments, pt.Samples,
					float64(pt.ReplayPPM)/1e4, float64(pt.OverheadPPM)/1e4, float64(pt.SolverNanos)/1e9, float64(pt.AuditNanos)/1e9, float64(pt.TotalNanos)/1e9, pt.Feasible, mark)
			}
			tw.Flush()
			fmt.Fprintf(out, "\nchosen digest interval %d: %d samples, confidence %.4f", p.Interval, p.Samples, p.Confidence)
			if gainMicroUSD > 0 {
				fmt.Fprintf(out, ", bond %d µUSD (gain %d µUSD)", p.BondMicroUSD, gainMicroUSD)
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&specPath, "spec", "", "job spec file")
	f.StringVar(&example, "example", catalog.ExampleFashionMNIST, "built-in example when --spec is not given")
	f.StringVar(&modelName, "model", "clustered", "cheater model: clustered (worst case) or independent")
	f.StringVar(&dataDir, "data", "", "directory of IDX files for fashion-mnist/idx sources")
	f.Int64Var(&gainMicroUSD, "gain-micro-usd", 0, "what a solver could gain by cheating (about the job's price)")
	f.Int64Var(&maxReplayPPM, "max-replay-ppm", 0, "cap on the fraction of steps one audit replays (0: none)")
	f.Int64Var(&segmentMicros, "segment-us", 2000, "verifier's fixed cost per audited segment (fetching and opening a state), µs")
	f.BoolVar(&jsonOut, "json", false, "print the plan and every point as JSON")
	f.Int64Var(&stepNSFlag, "step-ns", 0, "use this step time instead of measuring it")
	f.Int64Var(&digestNSFlag, "digest-ns", 0, "use this digest time instead of measuring it")
	return cmd
}

// measure times a training step and a state digest of s on this machine.
func measure(c *cobra.Command, s *spec.Spec, ds *dataset.Dataset) (stepNS, digestNS int64, err error) {
	st := s.Init()
	eng, err := engine.New(s, st)
	if err != nil {
		return 0, 0, err
	}
	const warm, timed = 10, 50
	if err := eng.Replay(c.Context(), ds, warm); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := eng.Replay(c.Context(), ds, warm+timed); err != nil {
		return 0, 0, err
	}
	stepNS = time.Since(start).Nanoseconds() / timed
	h := commit.Hasher{Threads: 1}
	start = time.Now()
	for range 5 {
		h.StateRoot(st)
	}
	digestNS = time.Since(start).Nanoseconds() / 5
	return max(stepNS, 1), digestNS, nil
}
