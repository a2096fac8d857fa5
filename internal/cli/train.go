package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/beluga-compute/beluga/internal/eventlog"
	"github.com/beluga-compute/beluga/solver/trainer"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model"
)

// exampleGPT is the --example name of the built-in GPT (spec.ExampleGPT).
const exampleGPT = "gpt"

// trainSummary is what `beluga train --json` prints and result.json holds.
type trainSummary struct {
	JobID        string   `json:"job_id"`
	Steps        int64    `json:"steps"`
	ResumedFrom  int64    `json:"resumed_from"`
	FinalDigest  string   `json:"final_digest"`
	FinalLoss    float64  `json:"final_loss"`
	TestAccuracy *float64 `json:"test_accuracy,omitempty"`
	// ValLoss is a GPT's validation loss in bits per byte (SPEC.md §20.7).
	ValLoss     *float64 `json:"val_loss,omitempty"`
	TraceRoot   string   `json:"trace_root,omitempty"`
	Seconds     float64  `json:"seconds"`
	StepsPerSec float64  `json:"steps_per_second"`
	Kernel      string   `json:"kernel"`
	Threads     int      `json:"threads"`
	Backend     string   `json:"backend"` // "cpu" or "vulkan"
}

type trainFlags struct {
	specPath, example, out, dataDir, kernelName string
	backend                                     string
	resume, jsonOut, quiet, commit              bool
	threads                                     int
	steps                                       int64
}

func newTrainCmd() *cobra.Command {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Run a job spec to completion on this machine",
		Long: `Train runs a job spec to completion with the integer engine (an MLP) or
the integer GPT (a version-2 GPT spec), keeping a checkpoint every
checkpoint_interval steps in --out. Ctrl-C stops at a step boundary and saves
a checkpoint; --resume continues from it to the same final digest as an
uninterrupted run. Without --spec it runs the built-in example named by
--example; --example gpt trains a byte-level GPT on the fortunes corpus
(apt-get install fortunes) and reports its validation loss in bits per byte.
--steps makes a shorter (or longer) job of the same spec: another job ID, as
` + "`beluga spec example --steps`" + ` prints it.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runTrain(c, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.specPath, "spec", "", "job spec file (JSON; - for standard input)")
	fl.StringVar(&f.example, "example", catalog.ExampleSynthetic, "built-in example to run when --spec is not given: synthetic, fashion-mnist or gpt")
	fl.StringVar(&f.out, "out", "", "output directory for spec.json, checkpoints/ and result.json (none: keep nothing)")
	fl.StringVar(&f.dataDir, "data", "", "where the spec's data is: the directory of IDX files of a fashion-mnist/idx source (default "+dataset.DefaultFashionMNISTDir+
		"), the directory of a fortunes source (default "+dataset.FortunesDir+") or the corpus file of a text source")
	fl.Int64Var(&f.steps, "steps", 0, "train this many steps instead of the spec's (a GPT's learning rate then decays to its floor at the last step)")
	fl.StringVar(&f.kernelName, "kernel", "", fmt.Sprintf("matrix kernel %q (default: fastest available)", kernel.Names()))
	fl.IntVar(&f.threads, "threads", 0, "threads to use (default: all cores)")
	fl.StringVar(&f.backend, "backend", "auto", backendHelp)
	fl.BoolVar(&f.resume, "resume", false, "continue from the newest checkpoint in --out")
	fl.BoolVar(&f.jsonOut, "json", false, "print one JSON object instead of the summary")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress display")
	fl.BoolVar(&f.commit, "commit", false, "commit a state digest every digest_interval steps and write the trace (trace.txt) for audits")
	return cmd
}

func runTrain(c *cobra.Command, f *trainFlags) error {
	if f.resume && f.out == "" {
		return &exitError{code: exitUsage, err: errors.New("--resume needs --out")}
	}
	if f.commit && f.out == "" {
		return &exitError{code: exitUsage, err: errors.New("--commit needs --out (the trace and checkpoints must be kept to serve audits)")}
	}
	if f.steps < 0 {
		return &exitError{code: exitUsage, err: fmt.Errorf("--steps %d: want a positive number of steps", f.steps)}
	}
	backend, err := model.ParseBackend(f.backend)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("--backend: %w", err)}
	}
	var s *spec.Spec
	switch {
	case f.specPath != "":
		s, err = readSpec(f.specPath)
	case f.example == exampleGPT:
		s = spec.ExampleGPT()
	default:
		s, err = catalog.Example(f.example)
	}
	if err != nil {
		return err
	}
	if f.steps > 0 {
		setSteps(s, f.steps)
		if err := s.Validate(); err != nil {
			return fmt.Errorf("--steps %d: %w", f.steps, err)
		}
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
	data, err := model.LoadData(s, dataOptions(s, f.dataDir))
	if err != nil {
		return err
	}
	stderr := c.ErrOrStderr()
	id, _ := s.ID()
	chosen, err := chooseBackend(backend, s)
	if err != nil {
		return err
	}
	defer chosen.Close()
	if !f.jsonOut {
		fmt.Fprintf(stderr, "job %s: %s, %d steps of batch %d, kernel %s, %d threads\n", id, s.Name, s.Steps, s.BatchSize, k.Name(), threads)
		fmt.Fprintf(stderr, "backend: %s\n", chosen.Describe)
	}
	ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := newProgress(stderr, s.Steps, f.quiet)
	res, err := trainer.Run(ctx, s, data, trainer.Options{
		OutDir:   f.out,
		Resume:   f.resume,
		Model:    append([]model.Option{model.WithKernel(k), model.WithThreads(threads)}, chosen.Options()...),
		Progress: progress.update,
		Commit:   f.commit,
		Logger:   eventlog.New(func(l string) { fmt.Fprintln(stderr, l) }),
	})
	progress.finish()
	if errors.Is(err, trainer.ErrInterrupted) {
		hint := ""
		if f.out != "" {
			hint = fmt.Sprintf("; checkpoint saved, continue with --resume --out %s", f.out)
		}
		return &exitError{code: exitInterrupted, err: fmt.Errorf("%w%s", err, hint)}
	}
	if err != nil {
		return err
	}
	sum := summarize(res, k.Name(), threads)
	sum.Backend = string(chosen.Backend)
	if f.out != "" {
		data, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(filepath.Join(f.out, "result.json"), append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(c.OutOrStdout())
		return enc.Encode(sum)
	}
	w := c.OutOrStdout()
	fmt.Fprintf(w, "job          %s\n", sum.JobID)
	fmt.Fprintf(w, "steps        %d (resumed from %d)\n", sum.Steps, sum.ResumedFrom)
	fmt.Fprintf(w, "final digest %s\n", sum.FinalDigest)
	if sum.TraceRoot != "" {
		fmt.Fprintf(w, "trace root   %s (%d digests)\n", sum.TraceRoot, len(res.Trace.Entries))
	}
	fmt.Fprintf(w, "final loss   %.4f (mean of the last %d steps)\n", sum.FinalLoss, trainer.LossWindow)
	if sum.TestAccuracy != nil {
		fmt.Fprintf(w, "test acc.    %.4f (%d/%d)\n", *sum.TestAccuracy, res.TestCorrect, res.TestTotal)
	}
	if sum.ValLoss != nil {
		fmt.Fprintf(w, "val loss     %.4f bits per byte (%d positions)\n", *sum.ValLoss, res.ValPositions)
	}
	fmt.Fprintf(w, "time         %.2f s (%.0f steps/s)\n", sum.Seconds, sum.StepsPerSec)
	return nil
}

func summarize(res *trainer.Result, kernelName string, threads int) trainSummary {
	sum := trainSummary{
		JobID:       res.JobID.String(),
		Steps:       res.Steps,
		ResumedFrom: res.ResumedFrom,
		FinalDigest: hex.EncodeToString(res.FinalDigest[:]),
		FinalLoss:   float64(res.FinalLossQ16) / (1 << 16),
		Seconds:     res.Elapsed.Seconds(),
		Kernel:      kernelName,
		Threads:     threads,
	}
	if ran := res.Steps - res.ResumedFrom; ran > 0 && sum.Seconds > 0 {
		sum.StepsPerSec = float64(ran) / sum.Seconds
	}
	if res.Trace != nil {
		root := res.Trace.Root()
		sum.TraceRoot = hex.EncodeToString(root[:])
	}
	if res.TestTotal > 0 {
		acc := float64(res.TestCorrect) / float64(res.TestTotal)
		sum.TestAccuracy = &acc
	}
	if res.ValPositions > 0 {
		bpb := bitsPerByte(res.ValLossQ16, res.ValPositions)
		sum.ValLoss = &bpb
	}
	return sum
}

// bitsPerByte is SPEC.md §20.7's validation loss: a loss summed over
// positions in Q16 nats, as bits per position (byte).
func bitsPerByte(lossQ16, positions int64) float64 {
	return float64(lossQ16) / (1 << 16) / float64(positions) / math.Ln2
}

// dataOptions says where the data of s is: flag is --data, the directory
// or file of the spec's source.
func dataOptions(s *spec.Spec, flag string) model.DataOptions {
	switch s.Data.Source {
	case spec.SourceFortunes:
		return model.DataOptions{FortunesDir: flag}
	case spec.SourceText:
		return model.DataOptions{TextFile: flag}
	}
	return model.DataOptions{IDXDir: flag}
}

// progress shows a bar on a terminal and a line every 10% elsewhere.
type progress struct {
	w      io.Writer
	steps  int64
	bar    *progressbar.ProgressBar
	quiet  bool
	next   int64
	start  time.Time
	first  int64
	primed bool
}

func newProgress(w io.Writer, steps int64, quiet bool) *progress {
	p := &progress{w: w, steps: steps, quiet: quiet, start: time.Now()}
	if f, ok := w.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(steps,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("training"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("steps"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

func (p *progress) update(pr trainer.Progress) {
	if p.quiet {
		return
	}
	if !p.primed {
		p.primed, p.first = true, pr.Step-1
		p.next = p.first + max(1, (pr.Steps-p.first)/10)
	}
	loss := float64(pr.LossQ16) / (1 << 16)
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("training (loss %.3f)", loss))
		_ = p.bar.Set64(pr.Step)
		return
	}
	if pr.Step >= p.next || pr.Step == pr.Steps {
		el := time.Since(p.start).Seconds()
		rate := float64(pr.Step-p.first) / max(el, 1e-9)
		eta := time.Duration(float64(pr.Steps-pr.Step)/max(rate, 1e-9)) * time.Second
		fmt.Fprintf(p.w, "step %d/%d  loss %.3f  %.0f steps/s  ETA %s\n", pr.Step, pr.Steps, loss, rate, eta.Round(time.Second))
		for p.next <= pr.Step {
			p.next += max(1, (pr.Steps-p.first)/10)
		}
		p.next = min(p.next, pr.Steps)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// defaultThreads is every core this process may use.
func defaultThreads() int { return runtime.GOMAXPROCS(0) }
