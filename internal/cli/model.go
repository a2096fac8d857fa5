package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/internal/devnet"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
)

func newModelCmd() *cobra.Command {
	f := &jobFlags{getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Inference models: import a GPT-2 checkpoint, publish a GPT run as a model clients can call",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.coordinator, "coordinator", "", "the coordinator's HTTP API, e.g. http://127.0.0.1:8700")
	pf.StringVar(&f.apiKey, "api-key", "", "the operator's API key")
	pf.StringVar(&f.config, "config", "", "config file (default $XDG_CONFIG_HOME/beluga/client.json)")
	pf.BoolVar(&f.json, "json", false, "print JSON for programs")
	cmd.AddCommand(newModelPublishCmd(f), newModelImportCmd())
	return cmd
}

func newModelPublishCmd(f *jobFlags) *cobra.Command {
	var run, id string
	var inPrice, outPrice int64
	cmd := &cobra.Command{
		Use:   "publish --run DIR --id NAME --input-price N --output-price N",
		Short: "Publish a GPT run's newest checkpoint as a model (operator)",
		Long: `publish reads the run directory DIR (what beluga train --out wrote), takes its
newest checkpoint that reads back verified, and publishes it on the
coordinator as model NAME: the checkpoint's state digest names the weights
(solvers serving NAME must serve exactly them, and every receipt names
them), with prices in micro-dollars per 1,000 tokens (bytes) of input and
output. Clients then see it in GET /v1/models.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if run == "" || id == "" {
				return &exitError{code: exitUsage, err: errors.New("give --run DIR and --id NAME")}
			}
			if inPrice < 0 || outPrice < 0 || inPrice+outPrice == 0 {
				return &exitError{code: exitUsage, err: errors.New("give --input-price and/or --output-price: micro-dollars per 1,000 tokens, at least one above 0")}
			}
			m, err := rundir.OpenModel(cmd.Context(), run, nil)
			if err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			canon, err := m.Spec.Canonical()
			if err != nil {
				return err
			}
			// The spec lets solvers and verifiers without the run fetch
			// the weights from the peers serving them (--serve-model-id).
			body, _ := json.Marshal(map[string]any{"id": id, "digest": hex.EncodeToString(m.Digest[:]), "job": m.Job.String(), "step": m.Step,
				"context_length": m.Config.Context, "input_micro_usd_per_1k": inPrice, "output_micro_usd_per_1k": outPrice, "spec": json.RawMessage(canon)})
			raw, err := c.call(cmd.Context(), "POST", "/v1/models", "", body, nil)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %s: weights %x (job %s, step %d), context %d, %d µ$ in / %d µ$ out per 1k tokens\n",
				id, m.Digest[:8], m.Job.String()[:12], m.Step, m.Config.Context, inPrice, outPrice)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&run, "run", "", "run directory of the trained GPT (required)")
	fl.StringVar(&id, "id", "", "the model's name, e.g. beluga-gpt-fortunes (required)")
	fl.Int64Var(&inPrice, "input-price", 0, "micro-dollars per 1,000 prompt tokens")
	fl.Int64Var(&outPrice, "output-price", 0, "micro-dollars per 1,000 completion tokens")
	return cmd
}

// inferenceTamperForTesting, set only in test builds (cheat.go, under the
// belugacheat build tag), rewrites every answer the solver's inference
// server signs: a cheating solver for the end-to-end tests.
var inferenceTamperForTesting func(*inference.Request, *inference.Result)

// verdictTamperForTesting, set only in test builds (cheat.go), rewrites
// every verdict the verifier's inference checker sends: a lying verifier
// for the end-to-end tests.
var verdictTamperForTesting func(*infer.Verdict)

// serveModels starts answering inference requests for the GPT runs in
// dirs (each the run directory of a trained model) and the published
// models ids (IDs or digests, fetched from the peers holding them) on n,
// serves their weights to other peers and announces them to the
// coordinator at coordAddr until ctx ends. It returns a stop function.
func serveModels(ctx context.Context, n *p2p.Node, key crypto.PrivKey, coordAddr string, dirs, ids []string, slots int, log *slog.Logger) (func(), error) {
	if len(dirs)+len(ids) == 0 {
		return func() {}, nil
	}
	coord, err := join.Coordinator(coordAddr)
	if err != nil {
		return nil, err
	}
	models, err := loadModels(ctx, n, coord, "--serve-model", dirs, ids, log)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range models {
		names = append(names, fmt.Sprintf("%x", m.Digest[:8]))
	}
	srv, err := infer.NewServer(n.Host, key, models, slots, max(1, defaultThreads()/slots), log)
	if err != nil {
		return nil, err
	}
	srv.Restrict(coord) // requests and dispute queries come from the coordinator alone
	if inferenceTamperForTesting != nil {
		srv.SetTamper(inferenceTamperForTesting)
		log.Warn("test build: this solver tampers with every inference answer it signs")
	}
	actx, cancel := context.WithCancel(ctx)
	go srv.Announce(actx, coord)
	log.Info("serving inference", "models", strings.Join(names, ","), "slots", slots)
	return func() { cancel(); srv.Close() }, nil
}

// runInferenceDevnet runs `beluga devnet --inference`.
func runInferenceDevnet(c *cobra.Command, requests int, backend model.Backend, jsonOut bool) error {
	cfg := devnet.InferenceConfig{Requests: requests, Backend: backend}
	if !jsonOut {
		cfg.Out = c.OutOrStdout()
	}
	res, err := devnet.RunInference(c.Context(), cfg)
	if res != nil && jsonOut {
		b, _ := json.Marshal(res)
		fmt.Fprintln(c.OutOrStdout(), string(b))
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if !jsonOut {
		fmt.Fprintf(c.OutOrStdout(), "inference devnet passed in %.1f s\n", res.Seconds)
	}
	return nil
}

// verifyModels answers the coordinator's verification requests for the
// GPT runs in dirs on n and announces them until ctx ends. It returns a
// stop function.
func verifyModels(ctx context.Context, n *p2p.Node, coordAddr string, dirs, ids []string, log *slog.Logger) (func(), error) {
	if len(dirs)+len(ids) == 0 {
		return func() {}, nil
	}
	coord, err := join.Coordinator(coordAddr)
	if err != nil {
		return nil, err
	}
	models, err := loadModels(ctx, n, coord, "--verify-model", dirs, ids, log)
	if err != nil {
		return nil, err
	}
	v, err := infer.NewVerifierServer(n.Host, models, defaultThreads(), log)
	if err != nil {
		return nil, err
	}
	v.Restrict(coord) // tasks and dispute queries come from the coordinator alone
	if verdictTamperForTesting != nil {
		log.Warn("TEST BUILD: this verifier rewrites every inference verdict it sends")
		v.SetTamper(verdictTamperForTesting)
	}
	actx, cancel := context.WithCancel(ctx)
	go v.Announce(actx, coord)
	log.Info("checking inference receipts", "models", len(models))
	return cancel, nil
}

// weightsWait bounds how long a daemon waits for a peer to hold a model it
// fetches (the peers serving it may be starting too).
const weightsWait = 2 * time.Minute

// loadModels reads the models of the run directories dirs and fetches the
// published models ids from the peers holding them (checked against their
// digests), then serves all their weights to other peers on n. flag names
// the option in errors.
func loadModels(ctx context.Context, n *p2p.Node, coord peer.ID, flag string, dirs, ids []string, log *slog.Logger) ([]infer.Model, error) {
	var models []infer.Model
	var held []infer.HeldModel
	for _, d := range dirs {
		m, err := rundir.OpenModel(ctx, d, log)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", flag, d, err)
		}
		models = append(models, infer.Model{Digest: m.Digest, Config: m.Config, State: m.State})
		st := spec.GPTTensors(m.Config, m.State)
		held = append(held, infer.HeldModel{Spec: m.Spec, Job: m.Job, State: st})
	}
	for _, id := range ids {
		f, err := fetchModel(ctx, n, coord, id, log)
		if err != nil {
			return nil, fmt.Errorf("%s-id %s: %w", flag, id, err)
		}
		models = append(models, f.Model)
		held = append(held, f.Held)
	}
	ds, err := infer.ServeWeights(ctx, n, coord, held, log)
	if err != nil {
		return nil, err
	}
	for i, d := range ds {
		if d != models[i].Digest {
			return nil, fmt.Errorf("%s: model %x: its checkpoint's digest is %x", flag, models[i].Digest[:8], d[:8])
		}
	}
	return models, nil
}

// fetchModel fetches a published model, waiting up to weightsWait for a
// peer to hold it; a model the coordinator does not know fails at once.
func fetchModel(ctx context.Context, n *p2p.Node, coord peer.ID, id string, log *slog.Logger) (*infer.FetchedModel, error) {
	deadline := time.Now().Add(weightsWait)
	for {
		f, err := infer.FetchWeights(ctx, n, coord, id, log)
		if err == nil {
			return f, nil
		}
		var r *infer.Refusal
		if (errors.As(err, &r) && r.Code == infer.RefusedModel) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		log.Info("waiting for a peer holding the model", "model", id, "err", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
