package cli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/verifier/audit"
)

func newAuditCmd() *cobra.Command {
	var dir, beaconHex, dataDir string
	var samples int
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "audit --trace DIR",
		Short: "Replay-audit a committed run (a directory written by train --commit)",
		Long: `Audit picks segments of a committed run from the trace root and a beacon,
has the solver open the state at each segment's start (recomputing from its
checkpoints), replays the segment with the spec's semantics on the verifier's
own copy of the data, and compares every committed digest. Exit status 0 means
the audit passed, 1 that it failed (the report says where and why).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--trace DIR is required")}
			}
			s, err := readSpec(filepath.Join(dir, "spec.json"))
			if err != nil {
				return err
			}
			train, _, err := catalog.LoadData(s, dataDir)
			if err != nil {
				return err
			}
			beacon := make([]byte, 32)
			if beaconHex != "" {
				if beacon, err = hex.DecodeString(beaconHex); err != nil || len(beacon) == 0 || len(beacon) > 256 {
					return &exitError{code: exitUsage, err: fmt.Errorf("--beacon must be 1 to 256 bytes of hex")}
				}
			} else if _, err := rand.Read(beacon); err != nil {
				return err
			}
			solver, err := rundir.Open(dir, s, train)
			if err != nil {
				return err
			}
			defer solver.Close()
			rep, err := audit.Run(c.Context(), audit.Config{Spec: s, Train: train, Beacon: beacon, Samples: samples, Engine: []engine.Option{}}, solver)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			if jsonOut {
				if err := json.NewEncoder(out).Encode(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "verdict          %s\n", rep.Verdict)
				fmt.Fprintf(out, "job              %s\ntrace root       %s\nbeacon           %s\n", rep.Job, rep.TraceRoot, rep.Beacon)
				fmt.Fprintf(out, "segments         %d sampled of %d\n", len(rep.Sampled), rep.Segments)
				fmt.Fprintf(out, "steps checked    %d (%.2f%% of the run replayed)\n", rep.StepsChecked, 100*rep.ReplayedFraction)
				fmt.Fprintf(out, "confidence       %.4f that cheating on %.2f%% of steps would be caught\n", rep.Confidence, float64(s.Audit.CheatFractionPPM)/1e4)
				if rep.FirstBadStep != nil {
					fmt.Fprintf(out, "first bad step   %d (segment %d..%d)\nreason           %s\n", *rep.FirstBadStep, rep.BadSegment[0], rep.BadSegment[1], rep.Reason)
				}
			}
			if rep.Verdict != audit.Pass {
				return &exitError{code: 1, err: fmt.Errorf("audit failed: %s", rep.Reason)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "trace", "", "directory of a run trained with --commit")
	f.StringVar(&beaconHex, "beacon", "", "public randomness (hex) published after the trace root; default: 32 random bytes")
	f.IntVar(&samples, "samples", 0, "segments to replay (default: the planner's count for the spec's audit policy)")
	f.StringVar(&dataDir, "data", "", "directory of IDX files for fashion-mnist/idx sources")
	f.BoolVar(&jsonOut, "json", false, "print the report as one JSON object")
	return cmd
}
