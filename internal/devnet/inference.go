package devnet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/coordinatord"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/solver/trainer"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
)

// InferenceConfig configures RunInference.
type InferenceConfig struct {
	// Requests is the burst the client sends (default 48), a third of
	// them streamed chat completions.
	Requests int
	// Out receives the timeline (nil: nothing).
	Out io.Writer
	// Backend trains the two models (default auto); the solvers and the
	// verifier serve and check them with the CPU engine, the one
	// inference runs on.
	Backend model.Backend
}

// InferenceResult is what RunInference ends with (one JSON object).
type InferenceResult struct {
	Requests         int   `json:"requests"`
	Succeeded        int   `json:"succeeded"`
	Streamed         int   `json:"streamed"`
	ReceiptsVerified int64 `json:"receipts_verified"`
	FraudsFound      int64 `json:"frauds_found"`
	CheaterSlashed   bool  `json:"cheater_slashed"`
	SlashedMicroUSD  int64 `json:"slashed_micro_usd"`
	BilledMicroUSD   int64 `json:"billed_micro_usd"`
	RefundedMicroUSD int64 `json:"refunded_micro_usd"`
	VerifyRatePPM    int64 `json:"verify_rate_ppm"`
	OtherModelServed bool  `json:"other_model_served"`
	// Disputes are the fraud verdicts the coordinator refereed;
	// VerdictsRefused those it refuted (the lying verifier's).
	Disputes             int64   `json:"disputes"`
	VerdictsRefused      int64   `json:"verdicts_refused"`
	LyingVerifierSlashed bool    `json:"lying_verifier_slashed"`
	LedgerBalanced       bool    `json:"ledger_balanced"`
	Seconds              float64 `json:"seconds"`
}

// inferenceSpec is the devnet's inference model: a byte-level GPT of one
// block (context 64, width 32) on the devnet's corpus.
func inferenceSpec(seed uint64, steps int64, corpus []byte) (*spec.Spec, error) {
	s, err := gptSpec(int(seed), steps, corpus)
	if err != nil {
		return nil, err
	}
	s.Name = fmt.Sprintf("devnet-inference-%d", seed)
	s.Model.Layers[0].Context, s.Model.Layers[0].Dim = 64, 32
	s.Model.Layers[1].FF = 64
	return s, s.Validate()
}

// RunInference runs verified inference end to end, in this process on
// 127.0.0.1: it trains a small GPT (and another model), publishes the
// first on a coordinator, starts an honest solver and a cheating solver
// serving it (the cheater changes a byte of every answer and signs it),
// a solver serving the other model and a verifier, and sends a burst of
// completions (a third streamed chat completions) through the
// OpenAI-compatible gateway. Receipts are verified at the planner's rate
// for the burst; the cheater is caught, slashed and banned. It returns an
// error unless every request succeeded, the cheater was slashed and the
// ledger balances.
func RunInference(ctx context.Context, cfg InferenceConfig) (*InferenceResult, error) {
	t0 := time.Now()
	if cfg.Requests <= 0 {
		cfg.Requests = 48
	}
	say := func(format string, a ...any) {
		if cfg.Out != nil {
			fmt.Fprintf(cfg.Out, "%6.2fs  %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, a...))
		}
	}
	tmp, err := os.MkdirTemp("", "beluga-devnet-inference-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	// Two models, trained here.
	chosen, err := model.ResolveBackend(cfg.Backend)
	if err != nil {
		return nil, fmt.Errorf("devnet: backend %s: %w", cfg.Backend, err)
	}
	defer chosen.Close()
	corpus := gptCorpus()
	var models []*rundir.Model
	for i, steps := range []int64{30, 10} {
		s, err := inferenceSpec(uint64(40+i), steps, corpus)
		if err != nil {
			return nil, err
		}
		data, err := model.NewTextData(s, corpus)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(tmp, fmt.Sprintf("model%d", i))
		if _, err := trainer.Run(ctx, s, data, trainer.Options{OutDir: dir, Model: chosen.Options()}); err != nil {
			return nil, err
		}
		m, err := rundir.OpenModel(ctx, dir, nil)
		if err != nil {
			return nil, err
		}
		models = append(models, m)
		say("trained model %d on %s: %s, final digest %x", i+1, chosen.Name(), describe(s), m.Digest[:8])
	}

	// The coordinator.
	cn, err := p2p.New(ctx, p2p.WithListen("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		return nil, err
	}
	defer cn.Close()
	cd, err := coordinatord.Open(ctx, coordinatord.Config{DataDir: filepath.Join(tmp, "coordinator"), P2P: cn, HoldOffers: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer cd.Close()
	opKey, err := cd.Bootstrap(ctx)
	if err != nil {
		return nil, err
	}
	clientKey, _, err := cd.Keys.Issue(ctx, "acme", auth.RoleClient, 0)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srvCtx, stopSrv := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- cd.Serve(srvCtx, ln) }()
	defer func() { stopSrv(); <-served }()
	base := "http://" + ln.Addr().String() + "/v1"
	rate, err := plan.InferenceRatePPM(10_000, 990_000, int64(cfg.Requests))
	if err != nil {
		return nil, err
	}
	cd.Gateway.SetVerifyRate(rate)
	// One honest verifier once the liar is banned: no second opinion to
	// be had (the gateway tests and e2e show second opinions).
	cd.Gateway.SetSecondOpinionRate(0)
	say("coordinator: gateway on %s; verification rate %d ppm (1%% cheating caught with 99%% over %d requests)", base, rate, cfg.Requests)

	// Publish model 1; fund the client; bond the solvers.
	m1 := models[0]
	canon, err := m1.Spec.Canonical()
	if err != nil {
		return nil, err
	}
	pub, _ := json.Marshal(map[string]any{"id": "devnet-gpt", "digest": hex.EncodeToString(m1.Digest[:]), "job": m1.Job.String(), "step": m1.Step,
		"context_length": m1.Config.Context, "input_micro_usd_per_1k": 500, "output_micro_usd_per_1k": 1500, "spec": json.RawMessage(canon)})
	if st, body := call(ctx, "POST", base+"/models", opKey, pub); st != 200 {
		return nil, fmt.Errorf("publish: %d %s", st, body)
	}
	if _, err := cd.Service.RecordDeposit(ctx, service.Deposit{Account: service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}, AmountMicroUSD: 10_000_000, BankRef: "devnet-acme"}); err != nil {
		return nil, err
	}
	say("published devnet-gpt (%x, context %d, 500/1500 µ$ per 1k tokens in/out); client acme has $10", m1.Digest[:8], m1.Config.Context)

	// Solvers: honest, cheater (same model), other model; and a verifier.
	type role struct {
		name   string
		m      *rundir.Model
		cheat  bool // a solver that cheats, a verifier that lies
		verify bool
	}
	roles := []role{{"honest solver", m1, false, false}, {"cheating solver", m1, true, false}, {"other-model solver", models[1], false, false},
		{"lying verifier", m1, true, true}, {"verifier", m1, false, true}}
	var cheater, liar string
	var announceHonest func()
	var wg sync.WaitGroup
	actx, stopAnnounce := context.WithCancel(ctx)
	defer func() { stopAnnounce(); wg.Wait() }()
	for i, r := range roles {
		n, err := p2p.New(ctx, p2p.WithListen("/ip4/127.0.0.1/tcp/0"), p2p.WithAllow(cn.ID()))
		if err != nil {
			return nil, err
		}
		defer n.Close()
		if _, err := n.Connect(ctx, cn.Addrs()[0]); err != nil {
			return nil, err
		}
		im := []infer.Model{{Digest: r.m.Digest, Config: r.m.Config, State: r.m.State}}
		// Every peer serving or checking a model serves its weights (the
		// coordinator's referee fetches them from there).
		held := []infer.HeldModel{{Spec: r.m.Spec, Job: r.m.Job, State: spec.GPTTensors(r.m.Config, r.m.State)}}
		if _, err := infer.ServeWeights(ctx, n, cn.ID(), held, nil); err != nil {
			return nil, err
		}
		if r.verify {
			v, err := infer.NewVerifierServer(n.Host, im, 1, nil)
			if err != nil {
				return nil, err
			}
			announce := func() {
				wg.Add(1)
				go func() { defer wg.Done(); v.Announce(actx, cn.ID()) }()
			}
			// Enrolled and bonded, as the gateway asks of a verifier.
			vparty := join.PartyID(wire.RoleVerifier, n.ID())
			if _, _, err := cd.Keys.Issue(ctx, vparty, auth.RoleVerifier, 0); err != nil {
				return nil, err
			}
			if _, err := cd.Service.RecordDeposit(ctx, service.Deposit{Account: service.AccountRef{Kind: service.KindVerifierBond, Party: vparty},
				AmountMicroUSD: 20_000_000, BankRef: "devnet-verifier-bond-" + vparty}); err != nil {
				return nil, err
			}
			if r.cheat {
				liar = vparty
				v.SetTamper(func(vd *infer.Verdict) { vd.Verdict, vd.Detail, vd.Position = infer.VerdictFraud, "made up", 0 })
				announce()
				say("%s %s claims fraud at byte 0 of every receipt (enrolled, bond $20)", r.name, liar)
				continue
			}
			announceHonest = announce
			say("%s %s checks devnet-gpt (enrolled, bond $20)", r.name, vparty)
			continue
		}
		party := join.PartyID(wire.RoleSolver, n.ID())
		if _, err := cd.Service.RecordDeposit(ctx, service.Deposit{Account: service.AccountRef{Kind: service.KindSolverBond, Party: party},
			AmountMicroUSD: 20_000_000, BankRef: fmt.Sprintf("devnet-bond-%d", i)}); err != nil {
			return nil, err
		}
		srv, err := infer.NewServer(n.Host, n.Host.Peerstore().PrivKey(n.ID()), im, 2, 1, nil)
		if err != nil {
			return nil, err
		}
		if r.cheat {
			cheater = party
			srv.SetTamper(func(_ *inference.Request, res *inference.Result) { res.Output[len(res.Output)/2] ^= 0x20 })
		}
		wg.Add(1)
		go func() { defer wg.Done(); srv.Announce(actx, cn.ID()) }()
		say("%s %s serves %x (bond $20)", r.name, party, r.m.Digest[:8])
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ms struct {
			Data []struct {
				Solvers int `json:"solvers"`
			} `json:"data"`
		}
		_, body := call(ctx, "GET", base+"/models", clientKey, nil)
		if json.Unmarshal(body, &ms) == nil && len(ms.Data) == 1 && ms.Data[0].Solvers == 2 {
			break
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the solvers of devnet-gpt did not announce within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	other := cd.Gateway.Router().Serving(models[1].Digest) == 1

	// The lying verifier alone checks a first request: the coordinator,
	// as referee, plays the dispute game (the liar's own pass agrees with
	// the receipt, so it accuses nothing), refuses the verdict and
	// slashes the liar; then the honest verifier takes over.
	// A first request the cheating solver answered is a true fraud even
	// to the liar (the solver loses that dispute): ask again, until the
	// liar has accused an honest answer.
	cd.Gateway.SetVerifyRate(plan.PPM)
	for i := 0; !cd.Gateway.Slashed(liar); i++ {
		if i == 8 {
			return nil, errors.New("the lying verifier was not refused in 8 requests")
		}
		if ok, _ := burstRequest(ctx, base, clientKey, 1000+i); !ok {
			return nil, errors.New("a request the lying verifier checks failed")
		}
		cd.Gateway.WaitVerifications()
	}
	cd.Gateway.SetVerifyRate(rate)
	announceHonest()
	for deadline := time.Now().Add(30 * time.Second); cd.Gateway.VerifiersOf(m1.Digest) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, errors.New("the verifier did not announce within 30 s")
		}
	}
	say("lying verifier %s: verdict refused by the referee, slashed: %v", liar, cd.Gateway.Slashed(liar))

	// The burst: 4 clients at once.
	res := &InferenceResult{Requests: cfg.Requests, VerifyRatePPM: rate, OtherModelServed: other}
	var mu sync.Mutex
	jobs := make(chan int)
	var cw sync.WaitGroup
	for range 4 {
		cw.Add(1)
		go func() {
			defer cw.Done()
			for i := range jobs {
				ok, streamed := burstRequest(ctx, base, clientKey, i)
				mu.Lock()
				if ok {
					res.Succeeded++
				}
				if streamed && ok {
					res.Streamed++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range cfg.Requests {
		jobs <- i
	}
	close(jobs)
	cw.Wait()
	cd.Gateway.WaitVerifications()
	vs := cd.Gateway.VerifyStats()
	res.ReceiptsVerified, res.FraudsFound, res.SlashedMicroUSD, res.RefundedMicroUSD = vs.Passed, vs.Frauds, vs.Slashed, vs.Refunded
	res.CheaterSlashed = cd.Gateway.Slashed(cheater)
	res.Disputes, res.VerdictsRefused, res.LyingVerifierSlashed = vs.Disputes, vs.Refused, cd.Gateway.Slashed(liar)
	var me struct {
		Funds int64 `json:"funds_micro_usd"`
	}
	_, body := call(ctx, "GET", base+"/me", clientKey, nil)
	json.Unmarshal(body, &me)
	res.BilledMicroUSD = 10_000_000 - me.Funds
	res.LedgerBalanced = cd.Service.CheckLedger(ctx) == nil
	res.Seconds = time.Since(t0).Seconds()
	say("burst: %d of %d requests answered (%d streamed); %d receipts sampled: %d verified, %d frauds; cheater %s slashed %d µ$ and banned: %v",
		res.Succeeded, res.Requests, res.Streamed, vs.Sampled, vs.Passed, vs.Frauds, cheater, vs.Slashed, res.CheaterSlashed)
	say("client billed %d µ$ net of refunds; ledger balanced: %v", res.BilledMicroUSD, res.LedgerBalanced)
	switch {
	case res.Succeeded != res.Requests:
		return res, fmt.Errorf("%d of %d requests failed", res.Requests-res.Succeeded, res.Requests)
	case !res.CheaterSlashed:
		return res, errors.New("the cheating solver was not caught")
	case !res.LyingVerifierSlashed || res.VerdictsRefused != 1:
		return res, fmt.Errorf("the lying verifier was not caught (%d verdicts refused)", res.VerdictsRefused)
	case !res.LedgerBalanced:
		return res, errors.New("the ledger does not balance")
	}
	return res, nil
}

// call sends an HTTP request with a bearer key and returns the status
// and body.
func call(ctx context.Context, method, url, key string, body []byte) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// burstRequest sends request i of the burst: every third a streamed chat
// completion, the others completions. It retries a 429 after its
// Retry-After.
func burstRequest(ctx context.Context, base, key string, i int) (ok, streamed bool) {
	streamed = i%3 == 2
	prompts := []string{"the whale ", "A fortune: ", "Q: why? A: ", "once upon a time "}
	var body []byte
	path := "/completions"
	if streamed {
		path = "/chat/completions"
		body, _ = json.Marshal(map[string]any{"model": "devnet-gpt", "messages": []map[string]string{{"role": "user", "content": "hi"}},
			"max_tokens": 24, "seed": i, "stream": true})
	} else {
		body, _ = json.Marshal(map[string]any{"model": "devnet-gpt", "prompt": prompts[i%len(prompts)], "max_tokens": 32, "temperature": 0.8, "seed": i})
	}
	for try := 0; try < 20; try++ {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, streamed
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			resp.Body.Close()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return false, streamed
		}
		if !streamed {
			var c struct {
				Receipt string `json:"receipt"`
			}
			return json.NewDecoder(resp.Body).Decode(&c) == nil && c.Receipt != "", false
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "data: [DONE]" {
				return true, true
			}
		}
		return false, true
	}
	return false, streamed
}
