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
	var ds, model, text string
	var steps int64
	var seed uint64
	example := &cobra.Command{
		Use:   "example",
		Short: "Print a working job spec (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := exampleSpec(model, ds, c.Flags().Changed("dataset"))
			if err != nil {
				return err
			}
			if text != "" {
				if model != "gpt" {
					return &exitError{code: exitUsage, err: fmt.Errorf("--text is for --model gpt")}
				}
				if err := textSpec(s, text); err != nil { // internal/cli/upload.go
					return err
				}
			}
			if steps > 0 {
				setSteps(s, steps)
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
	example.Flags().StringVar(&model, "model", "mlp", "mlp (an MLP on --dataset) or gpt (a byte-level GPT on the fortunes corpus, version 2)")
	example.Flags().StringVar(&ds, "dataset", catalog.ExampleSynthetic, "synthetic (no download, trains in seconds) or fashion-mnist; for --model mlp")
	example.Flags().Int64Var(&steps, "steps", 0, "training steps (default: the example's)")
	example.Flags().Uint64Var(&seed, "seed", 0, "the job's seed (another seed is another job)")
	example.Flags().StringVar(&text, "text", "", "for --model gpt: train on this corpus file (its root and size; upload it with 'beluga job upload FILE')")
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

// exampleSpec returns the example spec of a model kind: "mlp" on the
// catalog dataset ds, or "gpt" (which reads text, so takes no --dataset).
func exampleSpec(model, ds string, dsSet bool) (*spec.Spec, error) {
	switch model {
	case "mlp":
		return catalog.Example(ds)
	case "gpt":
		if dsSet {
			return nil, fmt.Errorf("--dataset is for --model mlp; the GPT example trains on the fortunes corpus")
		}
		return spec.ExampleGPT(), nil
	}
	return nil, fmt.Errorf("no example model %q (have \"mlp\" and \"gpt\")", model)
}

// setSteps makes s a job of steps steps; a GPT's learning rate then
// decays to its floor at the last step (or just after its previous knot).
func setSteps(s *spec.Spec, steps int64) {
	s.Steps = steps
	if lr := s.Optimizer.LR; s.IsGPT() && len(lr) > 1 {
		lr[len(lr)-1].Step = max(steps, lr[len(lr)-2].Step+1)
	}
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
