package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
)

// maxEvidenceBytes bounds an evidence file read from disk.
const maxEvidenceBytes = 1 << 30

func newRefereeCmd() *cobra.Command {
	var specPath string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "referee --spec FILE EVIDENCE",
		Short: "Re-check dispute evidence: recompute its one operator and print who lost",
		Long: `Referee decodes dispute evidence (written by the dispute game), checks every
hash, proof and opening in it against the spec, recomputes the single
operator it names, and prints the verdict. It trusts neither party nor the
referee that produced the evidence. Exit status 0 when the evidence holds and
its verdict is confirmed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if specPath == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--spec FILE is required")}
			}
			s, err := readSpec(specPath)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			data, err := io.ReadAll(io.LimitReader(f, maxEvidenceBytes+1))
			if err != nil {
				return err
			}
			if len(data) > maxEvidenceBytes {
				return fmt.Errorf("%s: larger than %d bytes", args[0], maxEvidenceBytes)
			}
			ev, err := dispute.DecodeEvidence(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			v, err := dispute.Check(s, *ev)
			if err != nil {
				return fmt.Errorf("evidence does not hold: %w", err)
			}
			if jsonOut {
				return json.NewEncoder(c.OutOrStdout()).Encode(map[string]string{"loser": v.Loser.String(), "reason": v.Reason.String()})
			}
			fmt.Fprintln(c.OutOrStdout(), v)
			return nil
		},
	}
	cmd.Flags().StringVar(&specPath, "spec", "", "the job's spec")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print {\"loser\", \"reason\"}")
	return cmd
}
