package bench

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// VulkanGPTConformance trains random small GPT configurations (random of
// them, steps steps each, on random batches) and the GPT conformance
// vectors under dir (spec/testdata/gptvectors; empty skips them) on d and
// on the CPU engine (spec/gpt), comparing the loss, the gradient norm and
// the state digest after every step; a vector's digests must also be the
// ones its steps.txt pins. It fails at the first difference.
func VulkanGPTConformance(ctx context.Context, w io.Writer, d *vulkan.Device, dir string, random, steps, threads int) (CheckResult, error) {
	var res CheckResult
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	r := rand.New(rand.NewPCG(20, 14))
	for i := range random {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		c := gpt.RandomConfig(r)
		batches := make([]gpt.Batch, steps)
		for s := range batches {
			batches[s] = gpt.RandomBatch(r, c)
		}
		if err := checkGPT(d, c, batches, nil, threads); err != nil {
			return res, fmt.Errorf("random GPT %d: %w", i, err)
		}
		res.Specs++
		res.Steps += steps
		fmt.Fprintf(w, "  same digests: random GPT %d (%d layers, d_model %d, %d heads, d_ff %d, context %d, batch %d; %d steps)\n",
			i, c.Layers, c.Dim, c.Heads, c.FF, c.Context, c.Batch, steps)
	}
	if dir == "" {
		return res, nil
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*", "spec.json"))
	if err != nil || len(paths) == 0 {
		return res, fmt.Errorf("no GPT vectors in %s", dir)
	}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		name := filepath.Base(filepath.Dir(p))
		c, batches, pinned, err := loadGPTVector(filepath.Dir(p))
		if err != nil {
			return res, fmt.Errorf("GPT vector %s: %w", name, err)
		}
		if err := checkGPT(d, c, batches, pinned, threads); err != nil {
			return res, fmt.Errorf("GPT vector %s: %w", name, err)
		}
		res.Specs++
		res.Steps += len(batches)
		fmt.Fprintf(w, "  same digests: GPT vector %s (%d steps, the pinned digests)\n", name, len(batches))
	}
	return res, nil
}

// gptPinned is a vector's job ID and its digest after every step.
type gptPinned struct {
	id      spec.JobID
	digests []string
}

// checkGPT runs batches on d and on the CPU engine from c's initial
// state, comparing after every step.
func checkGPT(d *vulkan.Device, c gpt.Config, batches []gpt.Batch, pinned *gptPinned, threads int) error {
	v, err := vulkan.NewGPT(c, c.Init(), vulkan.WithDevice(d))
	if err != nil {
		return err
	}
	defer v.Close()
	e, err := gpt.NewTrainer(c, kernel.Best(), threads)
	if err != nil {
		return err
	}
	st := c.Init()
	var id spec.JobID
	if pinned != nil {
		id = pinned.id
	}
	var h commit.Hasher
	for step, b := range batches {
		want, err := e.Step(st, b)
		if err != nil {
			return err
		}
		got, err := v.Step(b)
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		wd, gd := h.StateDigest(id, spec.GPTTensors(c, st)), h.StateDigest(id, spec.GPTTensors(c, v.State()))
		if got != want || gd != wd {
			return fmt.Errorf("step %d: vulkan loss %d norm %d digest %s, CPU engine loss %d norm %d digest %s",
				step, got.LossQ16, got.NormQ15, hex.EncodeToString(gd[:8]), want.LossQ16, want.NormQ15, hex.EncodeToString(wd[:8]))
		}
		if pinned != nil && (step >= len(pinned.digests) || hex.EncodeToString(gd[:]) != pinned.digests[step]) {
			return fmt.Errorf("step %d: digest %s, not the vector's", step, hex.EncodeToString(gd[:8]))
		}
	}
	return nil
}

// loadGPTVector reads a GPT vector: its configuration, the batches of its
// steps and its pinned digests.
func loadGPTVector(dir string) (gpt.Config, []gpt.Batch, *gptPinned, error) {
	data, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		return gpt.Config{}, nil, nil, err
	}
	s, err := spec.Decode(data)
	if err != nil {
		return gpt.Config{}, nil, nil, err
	}
	c, err := s.GPT()
	if err != nil {
		return gpt.Config{}, nil, nil, err
	}
	text, err := os.ReadFile(filepath.Join(dir, "corpus.txt"))
	if err != nil {
		return gpt.Config{}, nil, nil, err
	}
	tx, err := dataset.NewText(text)
	if err != nil {
		return gpt.Config{}, nil, nil, err
	}
	split, err := s.TextSplit()
	if err != nil {
		return gpt.Config{}, nil, nil, err
	}
	id, err := s.ID()
	if err != nil {
		return gpt.Config{}, nil, nil, err
	}
	recs, err := os.ReadFile(filepath.Join(dir, "steps.txt"))
	if err != nil {
		return gpt.Config{}, nil, nil, err
	}
	pinned := &gptPinned{id: id}
	for _, line := range splitLines(string(recs)) {
		var step int64
		var windows, loss, digest string
		if _, err := fmt.Sscan(line, &step, &windows, &loss, &digest); err != nil {
			return gpt.Config{}, nil, nil, fmt.Errorf("steps.txt: %q: %w", line, err)
		}
		if step >= 0 {
			pinned.digests = append(pinned.digests, digest)
		}
	}
	var batches []gpt.Batch
	for step := range s.Steps {
		offs := dataset.TrainWindows(c.Seed, step, c.Batch, c.Context, split.Train, nil)
		b, err := model.TextBatch(tx, c, offs)
		if err != nil {
			return gpt.Config{}, nil, nil, err
		}
		batches = append(batches, b)
	}
	return c, batches, pinned, nil
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// GPTVulkanStepMillis times steps of c on the Vulkan device d on offs
// after warmup steps and returns the mean milliseconds per timed step.
func GPTVulkanStepMillis(ctx context.Context, d *vulkan.Device, c gpt.Config, text *dataset.Text, offs [][]int64, warmup int) (float64, error) {
	v, err := vulkan.NewGPT(c, c.Init(), vulkan.WithDevice(d))
	if err != nil {
		return 0, err
	}
	defer v.Close()
	var start time.Time
	for s, o := range offs {
		if s == warmup {
			start = time.Now()
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b, err := model.TextBatch(text, c, o)
		if err != nil {
			return 0, err
		}
		if _, err := v.Step(b); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000 / float64(len(offs)-warmup), nil
}
