package cli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/verifier/audit"
)

// auditReport is the audit's findings (the report package's one type,
// which the coordinator's signed report embeds) with how the audited job
// was pinned.
type auditReport struct {
	*report.Findings
	// PinnedBy names the flags that pinned the job ("--job", "--spec" or
	// both), or is empty when the job is whatever the run directory's
	// spec.json says.
	PinnedBy string `json:"pinned_by"`
}

func newAuditCmd() *cobra.Command {
	var dir, beaconHex, dataDir, jobHex, specPath string
	var samples int
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "audit --trace DIR [--job ID | --spec FILE]",
		Short: "Replay-audit a committed run (a directory written by train --commit)",
		Long: `Audit picks segments of a committed run from the trace root and a beacon,
has the solver open the state at each segment's start (recomputing from its
checkpoints), replays the segment with the spec's semantics on the verifier's
own copy of the data, and compares every committed digest. Exit status 0 means
the audit passed, 1 that it failed (the report says where and why) or that
the run is not of the job asked for.

--job ID and --spec FILE pin the job being audited: the run directory's
spec.json must be that job (and so must its trace), or nothing is audited.
Without either, the audit trusts spec.json, and the report says so.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--trace DIR is required")}
			}
			var pinnedJob *spec.JobID
			var pins []string
			if jobHex != "" {
				id, err := spec.ParseJobID(jobHex)
				if err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--job: %w", err)}
				}
				pinnedJob, pins = &id, append(pins, "--job")
			}
			s, err := readSpec(filepath.Join(dir, "spec.json"))
			if err != nil {
				return err
			}
			job, err := s.ID()
			if err != nil {
				return err
			}
			if specPath != "" {
				pinned, err := readSpec(specPath)
				if err != nil {
					return err
				}
				pid, err := pinned.ID()
				if err != nil {
					return err
				}
				if pid != job {
					return fmt.Errorf("%s is job %s, but the run in %s is job %s: not auditing it", specPath, pid, dir, job)
				}
				pins = append(pins, "--spec")
				s = pinned
			}
			if pinnedJob != nil && *pinnedJob != job {
				return fmt.Errorf("the run in %s is job %s, not the job %s asked for: not auditing it", dir, job, *pinnedJob)
			}
			data, err := model.LoadData(s, dataOptions(s, dataDir))
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
			solver, err := rundir.Open(dir, s, data)
			if err != nil {
				return err
			}
			defer solver.Close()
			rep, err := audit.Run(c.Context(), audit.Config{Spec: s, Data: data, Beacon: beacon, Samples: samples}, solver)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			if jsonOut {
				if err := json.NewEncoder(out).Encode(auditReport{Findings: rep, PinnedBy: strings.Join(pins, " ")}); err != nil {
					return err
				}
			} else {
				pinning := "not pinned: read from " + filepath.Join(dir, "spec.json") + "; pass --job to pin it"
				if len(pins) > 0 {
					pinning = "pinned by " + strings.Join(pins, " and ")
				}
				fmt.Fprintf(out, "verdict          %s\n", rep.Verdict)
				fmt.Fprintf(out, "job              %s (%s)\ntrace root       %s\nbeacon           %s\n", rep.JobID, pinning, rep.TraceRoot, rep.Beacon)
				fmt.Fprintf(out, "segments         %d sampled of %d\n", len(rep.Segments), rep.Population)
				fmt.Fprintf(out, "steps checked    %d (%s of the run replayed)\n", rep.StepsChecked, percent(rep.ReplayedPPM))
				fmt.Fprintf(out, "confidence       %s that cheating on %s of steps would be caught\n", percent(rep.ConfidencePPM), percent(s.Audit.CheatFractionPPM))
				if rep.FirstBadStep != nil {
					for _, sc := range rep.Segments {
						if sc.Outcome == report.Mismatch {
							fmt.Fprintf(out, "first bad step   %d (segment %d..%d)\n", *rep.FirstBadStep, sc.FromStep, sc.ToStep)
						}
					}
					fmt.Fprintf(out, "reason           %s\n", rep.Reason)
				}
			}
			if rep.Verdict != audit.Pass {
				return &exitError{code: 1, err: fmt.Errorf("audit of job %s failed: %s", rep.JobID, rep.Reason)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "trace", "", "directory of a run trained with --commit")
	f.StringVar(&jobHex, "job", "", "the job ID (64 hex digits) the run must be; refuse to audit another")
	f.StringVar(&specPath, "spec", "", "the job spec the run must be of (its job ID pins the audit, as --job does)")
	f.StringVar(&beaconHex, "beacon", "", "public randomness (hex) published after the trace root; default: 32 random bytes")
	f.IntVar(&samples, "samples", 0, "segments to replay (default: the planner's count for the spec's audit policy)")
	f.StringVar(&dataDir, "data", "", "where the spec's data is: the directory of IDX files of a fashion-mnist/idx source, the directory of a fortunes source or the corpus file of a text source (as train --data)")
	f.BoolVar(&jsonOut, "json", false, "print the report as one JSON object")
	return cmd
}

// percent writes millionths as a percentage with two decimals, in
// integers ("99.00%").
func percent(ppm int64) string {
	return fmt.Sprintf("%d.%02d%%", ppm/10_000, ppm%10_000/100)
}
