package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

func newSpecCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "spec", Short: "Write, check and identify job specs"}
	var ds string
	var steps int64
	var seed uint64
	example := &cobra.Command{
		Use:   "example",
		Short: "Print a working job spec (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := catalog.Example(ds)
			if err != nil {
				return err
			}
			if steps > 0 {
				s.Steps = steps
			}
			if c.Flags().Changed("seed") {
				s.Seed = seed
			}
			if err := s.Validate(); err != nil {
				return err
			}
			out, err := s.JSON()
			if err != nil {
				return err
			}
			_, err = c.OutOrStdout().Write(out)
			return err
		},
	}
	example.Flags().StringVar(&ds, "dataset", catalog.ExampleSynthetic, "synthetic (no download, trains in seconds) or fashion-mnist")
	example.Flags().Int64Var(&steps, "steps", 0, "training steps (default: the example's)")
	example.Flags().Uint64Var(&seed, "seed", 0, "the job's seed (another seed is another job)")
	id := &cobra.Command{
		Use:   "id FILE",
		Short: "Validate a spec and print its job ID",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := readSpec(args[0])
			if err != nil {
				return err
			}
			jid, err := s.ID()
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), jid)
			return nil
		},
	}
	cmd.AddCommand(example, id)
	return cmd
}

// readSpec reads and validates the spec in path ("-" for standard input).
func readSpec(path string) (*spec.Spec, error) {
	if path == "-" {
		return spec.Read(os.Stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := spec.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
