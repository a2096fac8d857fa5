package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

type verifyInferenceFlags struct {
	run     string
	threads int
	json    bool
}

func newVerifyInferenceCmd() *cobra.Command {
	var f verifyInferenceFlags
	cmd := &cobra.Command{
		Use:   "verify-inference RECEIPT",
		Short: "Re-check an inference receipt with the model's weights",
		Long: `verify-inference reads RECEIPT (the JSON of GET /v1/receipts/{id}: the
receipt, the request it answers and the output; "-" reads stdin) and
checks it exactly (SPEC.md §21.4) against the model in --run DIR (a GPT
run directory; its newest checkpoint must be the receipt's model): the
solver's signature, the bindings, then ONE teacher-forced forward pass
over prompt + output that re-samples every byte and rebuilds the
commitment.

Exit status: 0 the receipt is correct; 1 it is not (fraud: the solver
signed what no honest run produces; or a bad signature, or a receipt
for another request, output or model); 2 usage.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runVerifyInference(c, args[0], &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.run, "run", "", "run directory of the receipt's model (required)")
	fl.IntVar(&f.threads, "threads", 0, "threads to use (default: all cores)")
	fl.BoolVar(&f.json, "json", false, "print one JSON object")
	return cmd
}

// verifyInferenceResult is what verify-inference prints with --json.
type verifyInferenceResult struct {
	Receipt          string `json:"receipt"`
	Verified         bool   `json:"verified"`
	Fraud            bool   `json:"fraud"`
	Error            string `json:"error,omitempty"`
	Solver           string `json:"solver,omitempty"` // the signer's party ID
	SolverPeer       string `json:"solver_peer,omitempty"`
	ModelDigest      string `json:"model_digest"`
	PromptTokens     uint32 `json:"prompt_tokens"`
	CompletionTokens uint32 `json:"completion_tokens"`
	FinishReason     string `json:"finish_reason"`
	CheckMillis      int64  `json:"check_ms"`
}

func runVerifyInference(c *cobra.Command, path string, f *verifyInferenceFlags) error {
	if f.run == "" {
		return &exitError{code: exitUsage, err: errors.New("--run DIR is required: the run directory of the receipt's model")}
	}
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(c.InOrStdin(), inference.MaxRecordBytes+1))
	} else {
		data, err = readLimited(path, inference.MaxRecordBytes)
	}
	if err != nil {
		return err
	}
	req, out, rc, err := inference.DecodeRecord(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	m, err := rundir.OpenModel(c.Context(), f.run, nil)
	if err != nil {
		return err
	}
	threads := f.threads
	if threads <= 0 {
		threads = defaultThreads()
	}
	g, err := gpt.NewGenerator(m.Config, m.State, kernel.Best(), threads)
	if err != nil {
		return err
	}
	res := verifyInferenceResult{Receipt: rc.ID(), ModelDigest: hex.EncodeToString(rc.Model[:]),
		PromptTokens: rc.PromptTokens, CompletionTokens: rc.CompletionTokens, FinishReason: rc.Finish.String()}
	if pk, err := crypto.UnmarshalEd25519PublicKey(rc.Solver[:]); err == nil {
		if id, err := peer.IDFromPublicKey(pk); err == nil {
			res.SolverPeer, res.Solver = id.String(), join.PartyID(wire.RoleSolver, id)
		}
	}
	t0 := time.Now()
	checkErr := inference.Check(g, m.Digest, req, out, rc)
	res.CheckMillis = time.Since(t0).Milliseconds()
	res.Verified = checkErr == nil
	res.Fraud = errors.Is(checkErr, inference.ErrFraud)
	if checkErr != nil {
		res.Error = checkErr.Error()
	}
	w := c.OutOrStdout()
	if f.json {
		b, _ := json.Marshal(res)
		fmt.Fprintln(w, string(b))
	} else if res.Verified {
		fmt.Fprintf(w, "receipt %s verified: %d prompt + %d completion bytes (finish %s), model %s at step %d, signed by solver %s; one forward pass in %d ms\n",
			res.Receipt, res.PromptTokens, res.CompletionTokens, res.FinishReason, res.ModelDigest[:16], m.Step, res.Solver, res.CheckMillis)
	}
	if checkErr != nil {
		if errors.Is(checkErr, inference.ErrNotFor) {
			return fmt.Errorf("receipt %s: %w (the run in %s has model %x at step %d)", res.Receipt, checkErr, f.run, m.Digest[:8], m.Step)
		}
		return fmt.Errorf("receipt %s: %w", res.Receipt, checkErr)
	}
	return nil
}

// readLimited reads at most limit bytes of path, refusing a longer file.
func readLimited(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes: not a receipt record", path, limit)
	}
	return data, nil
}
