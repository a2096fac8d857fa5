package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// uploadResult is what `beluga job upload --json` prints.
type uploadResult struct {
	File  string `json:"file"`
	Root  string `json:"root"`
	Bytes int    `json:"bytes"`
}

func newJobUploadCmd(f *jobFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload a text corpus for GPT jobs; prints its root and size for the spec",
		Long: `Uploads FILE (1 byte to 64 MiB) to the coordinator, which keeps it under
its text commitment (SPEC.md, "Text data") and hands it to the solvers and
verifiers of jobs that name it; they check it against the root and size.
The root is computed here too and must match the coordinator's. A spec
names the corpus with

  "data": {"source": "text", "text": {"root": ROOT, "bytes": SIZE, ...}}

which 'beluga spec example --model gpt --text FILE' writes for you.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, b, err := readCorpusFile(args[0])
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			// A corpus takes longer than an API call: it gets a download's time.
			ctx, cancel := context.WithTimeout(cmd.Context(), downloadTimeout)
			defer cancel()
			resp, err := c.request(ctx, "PUT", "/v1/data", "", b)
			if err != nil {
				return notThere(err, "corpus uploads (PUT /v1/data)")
			}
			defer resp.Body.Close()
			var got api.TextCorpus
			if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&got); err != nil {
				return fmt.Errorf("the coordinator's answer to the upload is not what this client understands: %v", err)
			}
			if got.Root != root || got.Bytes != len(b) {
				return fmt.Errorf("the coordinator stored root %s (%d bytes), but %s has root %s (%d bytes)", got.Root, got.Bytes, args[0], root, len(b))
			}
			out := cmd.OutOrStdout()
			if f.json {
				j, _ := json.Marshal(uploadResult{File: args[0], Root: root, Bytes: len(b)})
				return printJSON(out, j)
			}
			fmt.Fprintf(out, "uploaded %s: root %s, %d bytes\n", args[0], root, len(b))
			fmt.Fprintf(out, "in the spec: \"data\": {\"source\": \"text\", \"text\": {\"root\": %q, \"bytes\": %d, \"val_bytes\": …, \"eval_windows\": …}}\n", root, len(b))
			fmt.Fprintf(out, "or write one: beluga spec example --model gpt --text %s\n", args[0])
			return nil
		},
	}
}

// readCorpusFile reads a corpus file of at most service.MaxTextUpload
// bytes and returns its text root (hex) and bytes.
func readCorpusFile(path string) (string, []byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", nil, fmt.Errorf("the corpus: %w", err)
	}
	if fi.Size() > service.MaxTextUpload {
		return "", nil, fmt.Errorf("%s is %d bytes; a corpus is at most %d (64 MiB)", path, fi.Size(), service.MaxTextUpload)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("the corpus: %w", err)
	}
	t, err := dataset.NewText(b)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	r := t.Root()
	return hex.EncodeToString(r[:]), b, nil
}

// textSpec makes the GPT spec s train on the corpus in path: source
// "text", its root and size, and the last tenth (at least a window, at
// most the example's) held out for validation.
func textSpec(s *spec.Spec, path string) error {
	root, b, err := readCorpusFile(path)
	if err != nil {
		return err
	}
	ctx := s.Model.Layers[0].Context
	val := min(s.Data.Text.ValBytes, len(b)/10)
	val = max(val, ctx+1)
	s.Data.Source = spec.SourceText
	s.Data.Text.Root, s.Data.Text.Bytes, s.Data.Text.ValBytes = root, len(b), val
	s.Name = "text-gpt"
	return nil
}
