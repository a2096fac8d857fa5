package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/internal/modelimport"
	"github.com/beluga-compute/beluga/internal/safetensors"
	"github.com/beluga-compute/beluga/spec/gpt"
)

func newModelImportCmd() *cobra.Command {
	var in, hfConfig, out, name string
	var heads, bits, context int
	cmd := &cobra.Command{
		Use:   "import --in model.safetensors [--hf-config config.json] --out DIR",
		Short: "Import a GPT-2 checkpoint (safetensors) as a served model",
		Long: `import converts a GPT-2-architecture checkpoint — safetensors with Hugging
Face's tensor names (wte, wpe, h.<l>.ln_1, attn.c_attn, attn.c_proj, ln_2,
mlp.c_fc, mlp.c_proj, ln_f; with or without "transformer.") — into Beluga's
integer model of GPT-2 blocks (SPEC.md §22), and writes DIR as a run
directory: spec.json and the weights as the checkpoint at step 0. beluga
generate --run DIR, beluga model publish --run DIR and the daemons'
--serve-model DIR read it; nobody trains it.

The conversion is deterministic (SPEC.md §22.5): weights to int32 with 24
fractional bits, LayerNorm gains and all biases to int32 with 16, each
rounded half to even. The vocabulary must be 256 (bytes): a checkpoint
with another vocabulary is refused, since a tokenizer is not supported yet.
--hf-config is Hugging Face's config.json; without it the sizes are read from
the tensors and --heads gives the number of attention heads. It prints
the model's digest, the name every receipt gives it.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if in == "" || out == "" {
				return &exitError{code: exitUsage, err: errors.New("give --in model.safetensors and --out DIR")}
			}
			if bits != 0 && (bits < gpt.MinBits || bits > gpt.MaxBits) {
				return &exitError{code: exitUsage, err: fmt.Errorf("--bits %d outside [%d, %d]", bits, gpt.MinBits, gpt.MaxBits)}
			}
			raw, err := os.ReadFile(in)
			if err != nil {
				return err
			}
			f, err := safetensors.Parse(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			var cfg *modelimport.Config
			if hfConfig != "" {
				b, err := os.ReadFile(hfConfig)
				if err != nil {
					return err
				}
				if cfg, err = modelimport.ParseConfig(b); err != nil {
					return fmt.Errorf("%s: %w", hfConfig, err)
				}
			}
			m, err := modelimport.Import(f, cfg, modelimport.Options{Name: name, Bits: bits, Context: context, Heads: heads})
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			rm, err := modelimport.Write(c.Context(), out, m)
			if err != nil {
				return err
			}
			digest := hex.EncodeToString(rm.Digest[:])
			if jsonOut, _ := c.Flags().GetBool("json"); jsonOut {
				b, _ := json.Marshal(map[string]any{"digest": digest, "job": rm.Job.String(), "dir": out,
					"context": rm.Config.Context, "dim": rm.Config.Dim, "layers": rm.Config.Layers, "heads": rm.Config.Heads, "ff": rm.Config.FF, "bits": rm.Config.Bits})
				fmt.Fprintln(c.OutOrStdout(), string(b))
				return nil
			}
			cf := rm.Config
			fmt.Fprintf(c.ErrOrStderr(), "imported %s into %s: GPT-2 blocks, %d layers, width %d, %d heads, MLP %d, context %d, %d-bit operands (job %s)\n",
				in, out, cf.Layers, cf.Dim, cf.Heads, cf.FF, cf.Context, cf.Bits, rm.Job.String()[:12])
			fmt.Fprintln(c.OutOrStdout(), digest)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&in, "in", "", "the checkpoint, a safetensors file (required)")
	fl.StringVar(&hfConfig, "hf-config", "", "Hugging Face GPT-2 config.json (n_embd, n_head, n_layer, n_positions, vocab_size, layer_norm_epsilon)")
	fl.StringVar(&out, "out", "", "the run directory to write (required; must not hold a run)")
	fl.StringVar(&name, "name", "", "the spec's name (default gpt2-import)")
	fl.IntVar(&heads, "heads", 0, "attention heads, when no --hf-config gives n_head")
	fl.IntVar(&bits, "bits", 0, "operand bits, 8 to 12 (default 12)")
	fl.IntVar(&context, "context", 0, "served context, at most n_positions (default n_positions, at most 4096)")
	return cmd
}
