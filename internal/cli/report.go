package cli

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/protocol/core/report"
)

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Check or show a job's signed audit report (offline)",
		Long: `A job's audit report (GET /v1/jobs/{id}/report, or beluga job report) is a
JSON file signed by the coordinator: the spec, the trace root and the final
digest with its proof, the beacon, each verifier's signed findings (the
sampled segments and how each replay came out), disputes, slashes and the
job's ledger movements. SPEC.md §18 defines it.`,
	}
	cmd.AddCommand(newReportVerifyCmd(), newReportShowCmd())
	return cmd
}

// readReportFile reads FILE, or standard input for "-".
func readReportFile(c *cobra.Command, path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = c.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, report.MaxReportBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > report.MaxReportBytes {
		return nil, fmt.Errorf("%s: larger than a report may be (%d bytes)", path, report.MaxReportBytes)
	}
	return b, nil
}

func newReportVerifyCmd() *cobra.Command {
	var keyFlag string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "verify FILE [--coordinator-key KEY]",
		Short: "Check a report's signatures and consistency; exit 1 if it fails",
		Long: `Verify checks, without any network: the coordinator's signature over the
report; each verifier's signature over its findings and that it is the
verifier the report names; that the job ID is the spec's; that the sampled
segments (or zk tiles) are exactly those the job ID, trace root and beacon
draw, as many as the spec's audit policy requires, and that each verdict is
what its per-sample outcomes say; that the final digest is the trace root's
last entry; that the disputes and slashes match the outcome; and that the
job's escrow account ends empty.

--coordinator-key pins the signer: the coordinator's peer ID (12D3KooW…, the
end of the multiaddr solvers and verifiers dial), that multiaddr itself, or
64 hex digits of its ed25519 key. Without it the report is checked against
the key it names, and the output says the signer is not pinned.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var pin ed25519.PublicKey
			if keyFlag != "" {
				var err error
				if pin, err = report.ParseKey(keyFlag); err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--coordinator-key: %w", err)}
				}
			}
			b, err := readReportFile(c, args[0])
			if err != nil {
				return err
			}
			r, key, err := report.Verify(b, pin)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s does not verify: %w", args[0], err)}
			}
			signer := report.PeerID(key)
			out := c.OutOrStdout()
			if jsonOut {
				return json.NewEncoder(out).Encode(map[string]any{"verified": true, "job_id": r.JobID, "state": r.Outcome.State,
					"coordinator": signer, "pinned": pin != nil, "audits": len(r.Audits)})
			}
			fmt.Fprintf(out, "verified: report of job %s, outcome %s, %d audit(s) with verifier signatures, %d ledger movements\n",
				r.JobID, r.Outcome.State, len(r.Audits), len(r.Ledger))
			if pin != nil {
				fmt.Fprintf(out, "signed by the pinned coordinator %s\n", signer)
			} else {
				fmt.Fprintf(out, "signed by %s — NOT pinned: pass --coordinator-key with the coordinator's peer ID to know it is yours\n", signer)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFlag, "coordinator-key", "", "the coordinator's peer ID, multiaddr (…/p2p/ID) or ed25519 key in hex")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the result as one JSON object")
	return cmd
}

func newReportShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show FILE",
		Short: "Render a report for reading (does not verify it: use verify)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			b, err := readReportFile(c, args[0])
			if err != nil {
				return err
			}
			r, err := report.Decode(b)
			if err != nil {
				return err
			}
			return r.Render(c.OutOrStdout())
		},
	}
}
