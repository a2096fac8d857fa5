package cli

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/internal/eventlog"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

type generateFlags struct {
	run, prompt, temperature, kernelName string
	tokens, threads                      int
	seed                                 uint64
}

func newGenerateCmd() *cobra.Command {
	var f generateFlags
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Continue a prompt with a trained GPT",
		Long: `Generate reads a GPT run directory (what ` + "`beluga train --out DIR`" + ` wrote:
DIR/spec.json and the checkpoints in DIR/store), takes its newest checkpoint
that reads back verified, and prints --tokens bytes that continue --prompt.

Sampling is integer arithmetic (SPEC.md §20.17): the same run, prompt, seed
and temperature give the same bytes on every machine. --temperature is a
decimal number from 0 to 256 (0: always the likeliest byte), converted to
units of 2^-16 rounding half up: 0.8 is 52429/65536.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runGenerate(c, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.run, "run", "", "run directory of a trained GPT (required)")
	fl.StringVar(&f.prompt, "prompt", "", "text to continue (required, at least one byte)")
	fl.IntVar(&f.tokens, "tokens", 200, "bytes to generate")
	fl.Uint64Var(&f.seed, "seed", 0, "sampling seed")
	fl.StringVar(&f.temperature, "temperature", "1", "sampling temperature, a decimal from 0 to 256 (0: greedy)")
	fl.StringVar(&f.kernelName, "kernel", "", fmt.Sprintf("matrix kernel %q (default: fastest available)", kernel.Names()))
	fl.IntVar(&f.threads, "threads", 0, "threads to use (default: all cores)")
	return cmd
}

func runGenerate(c *cobra.Command, f *generateFlags) error {
	usage := func(format string, a ...any) error {
		return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
	}
	switch {
	case f.run == "":
		return usage("--run DIR is required: the --out directory of a GPT training run")
	case f.prompt == "":
		return usage("--prompt is required and must not be empty")
	case f.tokens < 0:
		return usage("--tokens %d: want 0 or more bytes", f.tokens)
	}
	temp, err := parseTemperature(f.temperature)
	if err != nil {
		return usage("--temperature: %w", err)
	}
	k := kernel.Best()
	if f.kernelName != "" {
		if k, err = kernel.ByName(f.kernelName); err != nil {
			return err
		}
	}
	threads := f.threads
	if threads <= 0 {
		threads = defaultThreads()
	}
	s, err := readSpec(filepath.Join(f.run, "spec.json"))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s is not a run directory (no spec.json): train with --out %s first", f.run, f.run)
	}
	if err != nil {
		return err
	}
	cfg, err := s.GPT()
	if errors.Is(err, spec.ErrUnsupported) {
		return fmt.Errorf("the run in %s is an MLP (%s); generate needs a GPT run", f.run, s.Name)
	}
	if err != nil {
		return err
	}
	id, err := s.ID()
	if err != nil {
		return err
	}
	// Opening the store creates it: look first, so that a directory
	// without checkpoints stays as it was.
	if _, err := os.Stat(filepath.Join(f.run, rundir.StoreDir)); err != nil {
		return fmt.Errorf("no checkpoint in %s (%v): train with --out %s first", f.run, err, f.run)
	}
	cps, err := rundir.OpenCheckpoints(f.run, s, id)
	if err != nil {
		return err
	}
	defer cps.Close()
	stderr := c.ErrOrStderr()
	st, err := cps.Latest(c.Context(), s.Steps, eventlog.New(func(l string) { fmt.Fprintln(stderr, l) }))
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("no checkpoint of job %s in %s reads back: train with --out %s (or --resume) first", id, f.run, f.run)
	}
	gs, err := spec.GPTFromState(cfg, st)
	if err != nil {
		return err
	}
	g, err := gpt.NewGenerator(cfg, gs, k, threads)
	if err != nil {
		return err
	}
	note := ""
	if st.Step < s.Steps && !s.IsGPT2() { // an imported model (SPEC.md §22) is its step-0 checkpoint
		note = fmt.Sprintf(" (unfinished: %d steps of %d)", st.Step, s.Steps)
	}
	fmt.Fprintf(stderr, "job %s: %s at step %d%s, seed %d, temperature %d/65536\n", id, s.Name, st.Step, note, f.seed, temp)
	out, err := g.Generate([]byte(f.prompt), f.tokens, f.seed, temp)
	if err != nil {
		return err
	}
	w := c.OutOrStdout()
	if _, err := w.Write(out); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w)
	return err
}

var decimal = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// parseTemperature converts a decimal temperature to units of 2^-16,
// rounding half up: ⌊t·2^16 + 1/2⌋, exactly (no binary floating point),
// and refuses anything but a plain decimal from 0 to 256.
func parseTemperature(s string) (int64, error) {
	if len(s) > 40 || !decimal.MatchString(s) {
		return 0, fmt.Errorf("%q is not a decimal number such as 0.8", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("%q is not a decimal number such as 0.8", s)
	}
	r.Mul(r, big.NewRat(1<<16, 1))
	r.Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom()) // r ≥ 0: truncation is the floor
	if !q.IsInt64() || q.Int64() > gpt.MaxTemperature {
		return 0, fmt.Errorf("%s is above the largest temperature, 256", s)
	}
	return q.Int64(), nil
}
