package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec/gpt"
)

// Limits.
const (
	MaxBodyBytes = 1 << 20 // a request body
	MaxAttempts  = 3       // solvers tried per request
	// RetryAfterSec is the Retry-After of a 429 (no solver has room).
	RetryAfterSec = 1
)

// Events the gateway logs.
const (
	// EventRequest: one per inference request (Info): "request", "client",
	// "model", "status", "solver", "attempts", "prompt_tokens",
	// "completion_tokens", "cost_micro_usd", "receipt", "stream".
	EventRequest = "inference request"
	// EventRetry: a solver failed a request, which goes to another (Warn):
	// "request", "solver", "err".
	EventRetry = "inference retried elsewhere"
	// EventSettleFailed: the ledger did not take a settlement (Error).
	EventSettleFailed = "inference settlement failed"
)

// Gateway serves the inference API.
type Gateway struct {
	svc    *service.Service
	keys   *auth.Keys
	h      host.Host
	router *Router
	cat    *catalog
	log    *slog.Logger
	mux    *http.ServeMux
	ver    sampler
	// OnReceipt, if set, sees every receipt the gateway accepted (the
	// verification sampler; called after the response is sent).
	OnReceipt func(model *Model, req *inference.Request, output []byte, rc *inference.Receipt)
}

// New returns the gateway of a coordinator: its service (ledger, store),
// its API keys and its libp2p host, on which it takes the solvers'
// announcements.
func New(svc *service.Service, keys *auth.Keys, h host.Host, log *slog.Logger) *Gateway {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{svc: svc, keys: keys, h: h, cat: &catalog{st: svc.Store()}, log: log, mux: http.NewServeMux()}
	g.router = newRouterOn(h, infer.AnnounceProtocol, "solver", log, func(p peer.ID) string { return g.standing(wire.RoleSolver, p) })
	g.ver.verifiers = newRouterOn(h, infer.VerifierAnnounceProtocol, "verifier", log, func(p peer.ID) string { return g.standing(wire.RoleVerifier, p) })
	g.ver.ratePPM.Store(DefaultRatePPM)
	g.ver.secondPPM.Store(DefaultSecondOpinionPPM)
	g.startSampler()
	g.mux.HandleFunc("GET /v1/models", g.listModels)
	g.mux.HandleFunc("GET /v1/models/{id}", g.getModel)
	g.mux.HandleFunc("POST /v1/models", g.publishModel)
	g.mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { g.generate(w, r, false) })
	g.mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { g.generate(w, r, true) })
	g.mux.HandleFunc("GET /v1/receipts/{id}", g.getReceipt)
	return g
}

// Router returns the gateway's router (what solvers serve).
func (g *Gateway) Router() *Router { return g.router }

// Paths the gateway serves; Wrap sends everything else on.
var paths = []string{"/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/receipts/"}

// Wrap returns a handler that serves the gateway's paths and passes every
// other request to next (the coordinator's API).
func (g *Gateway) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range paths {
			if r.URL.Path == p || strings.HasPrefix(r.URL.Path, p+"/") || (strings.HasSuffix(p, "/") && strings.HasPrefix(r.URL.Path, p)) {
				g.mux.ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the gateway's paths alone.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// authenticate returns the bearer key's principal if it has one of roles.
func (g *Gateway) authenticate(r *http.Request, roles ...auth.Role) (auth.Principal, *apiError) {
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || key == "" {
		return auth.Principal{}, newError(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "",
			"You didn't provide an API key: send it as Authorization: Bearer KEY (a client key the operator issued).")
	}
	p, err := g.keys.Authenticate(r.Context(), key)
	if err != nil {
		return p, newError(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "", "Incorrect API key provided.")
	}
	if err := p.Require(roles...); err != nil {
		return p, newError(http.StatusForbidden, "invalid_request_error", "forbidden", "", fmt.Sprintf("A %s key may not do this.", p.Role))
	}
	return p, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// openAIModel is a model as /v1/models lists it, with Beluga's fields.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	Model
	Solvers int `json:"solvers"`
}

func (g *Gateway) view(m Model) openAIModel {
	d, _ := infer.ParseDigest(m.Digest)
	return openAIModel{ID: m.ID, Object: "model", Created: m.Created, OwnedBy: "beluga", Model: m, Solvers: g.router.Serving(d)}
}

func (g *Gateway) listModels(w http.ResponseWriter, r *http.Request) {
	if _, e := g.authenticate(r, auth.RoleClient, auth.RoleOperator); e != nil {
		writeError(w, e)
		return
	}
	ms, err := g.cat.list()
	if err != nil {
		writeError(w, newError(http.StatusInternalServerError, "server_error", "", "", "The model list is unavailable."))
		return
	}
	data := make([]openAIModel, 0, len(ms))
	for _, m := range ms {
		data = append(data, g.view(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (g *Gateway) getModel(w http.ResponseWriter, r *http.Request) {
	if _, e := g.authenticate(r, auth.RoleClient, auth.RoleOperator); e != nil {
		writeError(w, e)
		return
	}
	m, ok, err := g.cat.get(r.PathValue("id"))
	if err != nil || !ok {
		writeError(w, modelNotFound(r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, g.view(*m))
}

func modelNotFound(id string) *apiError {
	return newError(http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
		fmt.Sprintf("The model `%s` does not exist (GET /v1/models lists the published models).", id))
}

// publishModel: POST /v1/models (operator): publish a trained run's
// checkpoint as a model.
func (g *Gateway) publishModel(w http.ResponseWriter, r *http.Request) {
	if _, e := g.authenticate(r, auth.RoleOperator); e != nil {
		writeError(w, e)
		return
	}
	var body struct {
		Model
		// Spec is the job's spec, so that peers can fetch the weights
		// (weights.go); optional.
		Spec json.RawMessage `json:"spec,omitempty"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, badRequest("invalid_json", "", "The body is not a model: "+err.Error()))
		return
	}
	m := body.Model
	if _, err := m.validate(); err != nil {
		writeError(w, badRequest("invalid_value", "", err.Error()))
		return
	}
	var specJSON []byte
	if len(body.Spec) > 0 {
		var err error
		if specJSON, err = checkModelSpec(&m, body.Spec); err != nil {
			writeError(w, badRequest("invalid_value", "spec", err.Error()))
			return
		}
	}
	if m.Created == 0 {
		m.Created = g.svc.Now().Unix()
	}
	got, err := g.cat.publish(m)
	if errors.Is(err, errConflict) {
		writeError(w, newError(http.StatusConflict, "invalid_request_error", "model_exists", "id", fmt.Sprintf("Model %s is already published with other fields.", m.ID)))
		return
	}
	if err == nil && specJSON != nil {
		err = g.cat.putSpec(m.Job, specJSON)
	}
	if err != nil {
		writeError(w, newError(http.StatusInternalServerError, "server_error", "", "", "The model could not be stored."))
		return
	}
	writeJSON(w, http.StatusOK, g.view(got))
}

// receiptEntry is a stored receipt: its owner and record.
type receiptEntry struct {
	Client string            `json:"client"`
	Record *inference.Record `json:"record"`
}

func receiptKey(id string) string { return "inference/receipt/" + id }

func (g *Gateway) getReceipt(w http.ResponseWriter, r *http.Request) {
	p, e := g.authenticate(r, auth.RoleClient, auth.RoleOperator)
	if e != nil {
		writeError(w, e)
		return
	}
	id := r.PathValue("id")
	notFound := newError(http.StatusNotFound, "invalid_request_error", "receipt_not_found", "id", fmt.Sprintf("No receipt %s.", id))
	if len(id) != 64 {
		writeError(w, notFound)
		return
	}
	b, ok, err := g.svc.Store().GetRaw(receiptKey(id))
	var ent receiptEntry
	if err != nil || !ok || json.Unmarshal(b, &ent) != nil || (p.Role == auth.RoleClient && ent.Client != p.Subject) {
		writeError(w, notFound)
		return
	}
	writeJSON(w, http.StatusOK, ent.Record)
}

// genRequest is the body of /v1/completions and /v1/chat/completions
// (the fields Beluga reads; others are ignored, as OpenAI's optional ones
// that do not apply).
type genRequest struct {
	Model               string          `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	Seed                *int64          `json:"seed"`
	Stop                json.RawMessage `json:"stop"`
	Stream              bool            `json:"stream"`
	N                   *int            `json:"n"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// stringOrList reads a JSON string or a list of strings (null: none).
func stringOrList(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, true
	}
	var l []string
	if json.Unmarshal(raw, &l) == nil {
		return l, true
	}
	return nil, false
}

// chatPrompt renders messages as the byte model's prompt: "role: content"
// lines, then "assistant: ".
func chatPrompt(ms []chatMessage) (string, *apiError) {
	if len(ms) == 0 {
		return "", badRequest("invalid_value", "messages", "messages must hold at least one message.")
	}
	var b strings.Builder
	for i, m := range ms {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		default:
			return "", badRequest("invalid_value", fmt.Sprintf("messages[%d].role", i), fmt.Sprintf("Unknown role %q.", m.Role))
		}
		var text string
		if json.Unmarshal(m.Content, &text) != nil {
			var parts []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			if json.Unmarshal(m.Content, &parts) != nil {
				return "", badRequest("invalid_value", fmt.Sprintf("messages[%d].content", i), "content must be a string or a list of text parts.")
			}
			for _, p := range parts {
				if p.Type != "text" {
					return "", badRequest("invalid_value", fmt.Sprintf("messages[%d].content", i), "Only text content is supported.")
				}
				text += p.Text
			}
		}
		fmt.Fprintf(&b, "%s: %s\n", m.Role, text)
	}
	b.WriteString("assistant: ")
	return b.String(), nil
}

// parse turns a body into an inference request for model m.
func parse(body genRequest, chat bool, m *Model, id string) (*inference.Request, *apiError) {
	var prompt string
	if chat {
		p, e := chatPrompt(body.Messages)
		if e != nil {
			return nil, e
		}
		prompt = p
	} else {
		ps, ok := stringOrList(body.Prompt)
		if !ok || len(ps) != 1 {
			return nil, badRequest("invalid_value", "prompt", "prompt must be one string (or a list of one).")
		}
		prompt = ps[0]
	}
	if len(prompt) == 0 {
		return nil, badRequest("invalid_value", "prompt", "The prompt is empty.")
	}
	if body.N != nil && *body.N != 1 {
		return nil, badRequest("invalid_value", "n", "Only n = 1 is supported.")
	}
	room := m.Context - len(prompt)
	if room < 1 {
		return nil, badRequest("context_length_exceeded", "prompt", fmt.Sprintf("This model's maximum context length is %d tokens; your prompt has %d (tokens are bytes).", m.Context, len(prompt)))
	}
	maxTokens := 16
	if chat {
		maxTokens = room
	}
	if body.MaxCompletionTokens != nil {
		body.MaxTokens = body.MaxCompletionTokens
	}
	if body.MaxTokens != nil {
		maxTokens = *body.MaxTokens
		if maxTokens < 1 {
			return nil, badRequest("invalid_value", "max_tokens", fmt.Sprintf("max_tokens must be at least 1, not %d.", maxTokens))
		}
		if maxTokens > room {
			return nil, badRequest("context_length_exceeded", "max_tokens", fmt.Sprintf("This model's maximum context length is %d tokens; you asked for %d in the prompt and %d to generate.", m.Context, len(prompt), maxTokens))
		}
	}
	temp := int64(1 << 16)
	if t := body.Temperature; t != nil {
		if math.IsNaN(*t) || *t < 0 || *t > 256 {
			return nil, badRequest("invalid_value", "temperature", "temperature must be from 0 to 256.")
		}
		temp = int64(math.Floor(*t*65536 + 0.5))
	}
	var seed uint64
	if body.Seed != nil {
		seed = uint64(*body.Seed)
	}
	stops, ok := stringOrList(body.Stop)
	if !ok || len(stops) > inference.MaxStops {
		return nil, badRequest("invalid_value", "stop", "stop must be a string or up to 4 strings.")
	}
	req := &inference.Request{ID: id, Prompt: []byte(prompt), MaxTokens: maxTokens, Seed: seed, Temperature: min(temp, gpt.MaxTemperature)}
	req.Model, _ = infer.ParseDigest(m.Digest)
	for _, s := range stops {
		if len(s) < 1 || len(s) > inference.MaxStopBytes {
			return nil, badRequest("invalid_value", "stop", "Each stop sequence must have 1 to 32 bytes.")
		}
		req.Stop = append(req.Stop, []byte(s))
	}
	if err := req.Validate(m.Context); err != nil {
		return nil, badRequest("invalid_value", "", err.Error())
	}
	return req, nil
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// generate serves /v1/completions (chat false) and /v1/chat/completions.
func (g *Gateway) generate(w http.ResponseWriter, r *http.Request, chat bool) {
	start := time.Now()
	p, e := g.authenticate(r, auth.RoleClient)
	if e != nil {
		writeError(w, e)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, newError(http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large", "", fmt.Sprintf("The body is over %d bytes.", MaxBodyBytes)))
		return
	}
	var body genRequest
	if err := json.Unmarshal(data, &body); err != nil {
		writeError(w, badRequest("invalid_json", "", "We could not parse the JSON body of your request: "+err.Error()))
		return
	}
	if body.Model == "" {
		writeError(w, badRequest("invalid_value", "model", "You must provide a model parameter."))
		return
	}
	m, ok, err := g.cat.get(body.Model)
	if err != nil || !ok {
		writeError(w, modelNotFound(body.Model))
		return
	}
	prefix := "cmpl-"
	if chat {
		prefix = "chatcmpl-"
	}
	id := newID(prefix)
	req, e := parse(body, chat, m, id)
	if e != nil {
		writeError(w, e)
		return
	}
	inCost, err1 := service.TokenCostMicroUSD(int64(len(req.Prompt)), m.InputMicroUSDPer1K)
	outMax, err2 := service.TokenCostMicroUSD(int64(req.MaxTokens), m.OutputMicroUSDPer1K)
	if err1 != nil || err2 != nil {
		writeError(w, badRequest("invalid_value", "", "The request's price overflows."))
		return
	}
	logDone := func(status int, attrs ...any) {
		g.log.Info(EventRequest, append([]any{"request", id, "client", p.Subject, "model", m.ID, "status", status, "stream", body.Stream,
			"ms", time.Since(start).Milliseconds()}, attrs...)...)
	}
	skip := map[peer.ID]bool{}
	solver, done, ok := g.router.Pick(req.Model, skip)
	if !ok {
		w.Header().Set("Retry-After", fmt.Sprint(RetryAfterSec))
		writeError(w, newError(http.StatusTooManyRequests, "rate_limit_exceeded", "no_capacity", "", fmt.Sprintf("No solver serving %s has room now; retry after %d s.", m.ID, RetryAfterSec)))
		logDone(http.StatusTooManyRequests)
		return
	}
	if err := g.svc.HoldInference(r.Context(), p.Subject, id, max(1, inCost+outMax)); err != nil {
		done(0)
		if errors.Is(err, service.ErrInsufficientFunds) {
			writeError(w, newError(http.StatusPaymentRequired, "insufficient_quota", "insufficient_quota", "",
				fmt.Sprintf("Your funds do not cover this request (up to %d µ$): deposit to client:%s.", inCost+outMax, p.Subject)))
			logDone(http.StatusPaymentRequired)
			return
		}
		writeError(w, newError(http.StatusServiceUnavailable, "server_error", "ledger_unavailable", "", "The ledger is unavailable; nothing was charged."))
		logDone(http.StatusServiceUnavailable)
		return
	}
	var st *sseStream
	if body.Stream {
		st = newSSE(w, id, m.ID, chat, req.Stop, start.Unix())
	}
	// Attempts: solvers in turn until one answers. Bytes already sent to
	// the client are regenerated identically (deterministic generation)
	// and not sent again; a solver whose bytes differ is a liar and the
	// request fails.
	var ans *infer.Answer
	var lastErr error
	attempts, allBusy := 0, true
	var ttfb time.Duration
	for {
		attempts++
		t0 := time.Now()
		first := time.Duration(0)
		var out []byte
		a, err := infer.Call(r.Context(), g.h, solver, req, func(k int, b byte) error {
			if first == 0 {
				first = time.Since(t0)
			}
			out = append(out, b)
			if st != nil {
				return st.push(out)
			}
			return nil
		})
		done(first)
		if err == nil {
			ans, ttfb = a, first
			break
		}
		lastErr = err
		var rf *infer.Refusal
		if !errors.As(err, &rf) || rf.Code != infer.RefusedBusy {
			allBusy = false
		}
		if errors.Is(err, errDiverged) || r.Context().Err() != nil {
			break
		}
		g.log.Warn(EventRetry, "request", id, "solver", solver.String(), "err", err.Error())
		skip[solver] = true
		if attempts >= MaxAttempts {
			break
		}
		if solver, done, ok = g.router.Pick(req.Model, skip); !ok {
			break
		}
	}
	if ans == nil {
		if err := g.svc.VoidInference(context.WithoutCancel(r.Context()), id); err != nil {
			g.log.Error(EventSettleFailed, "request", id, "err", err.Error())
		}
		e := newError(http.StatusServiceUnavailable, "server_error", "solver_unavailable", "",
			fmt.Sprintf("No solver completed the request after %d attempts; nothing was charged.", attempts))
		if allBusy {
			w.Header().Set("Retry-After", fmt.Sprint(RetryAfterSec))
			e = newError(http.StatusTooManyRequests, "rate_limit_exceeded", "no_capacity", "", fmt.Sprintf("No solver serving %s has room now; retry after %d s. Nothing was charged.", m.ID, RetryAfterSec))
		}
		if st != nil && st.started {
			st.fail(e)
		} else {
			writeError(w, e)
		}
		logDone(e.status, "attempts", attempts, "err", fmt.Sprint(lastErr))
		return
	}
	outCost, _ := service.TokenCostMicroUSD(int64(len(ans.Output)), m.OutputMicroUSDPer1K)
	cost := max(1, inCost+outCost)
	party := join.PartyID(wire.RoleSolver, solver)
	var settleErr error
	for try := 0; try < 3; try++ {
		if settleErr = g.svc.SettleInference(context.WithoutCancel(r.Context()), id, party, cost); settleErr == nil {
			break
		}
	}
	if settleErr != nil {
		g.log.Error(EventSettleFailed, "request", id, "err", settleErr.Error())
	}
	rec := inference.NewRecord(m.ID, req, ans.Output, ans.Receipt)
	ent, _ := json.Marshal(receiptEntry{Client: p.Subject, Record: rec})
	if err := g.svc.Store().PutRaw(receiptKey(rec.ID), ent); err != nil {
		g.log.Error("inference receipt not stored", "request", id, "err", err.Error())
	}
	// Sampled (and stored for its check) before the client hears back:
	// an answer the client has is one the sampler has seen.
	g.maybeVerify(m, req, rec, solver, p.Subject, cost)
	text := inference.Text(ans.Output, ans.Receipt.Finish, req.Stop)
	usage := map[string]int{"prompt_tokens": len(req.Prompt), "completion_tokens": len(ans.Output), "total_tokens": len(req.Prompt) + len(ans.Output)}
	finish := ans.Receipt.Finish.String()
	if st != nil {
		st.finish(text, finish, usage, rec.ID)
	} else {
		resp := map[string]any{"id": id, "created": start.Unix(), "model": m.ID, "usage": usage, "receipt": rec.ID, "system_fingerprint": m.Digest[:16]}
		if chat {
			resp["object"] = "chat.completion"
			resp["choices"] = []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": string(text), "refusal": nil},
				"logprobs": nil, "finish_reason": finish}}
		} else {
			resp["object"] = "text_completion"
			resp["choices"] = []any{map[string]any{"index": 0, "text": string(text), "logprobs": nil, "finish_reason": finish}}
		}
		writeJSON(w, http.StatusOK, resp)
	}
	logDone(http.StatusOK, "solver", party, "attempts", attempts, "prompt_tokens", len(req.Prompt), "completion_tokens", len(ans.Output),
		"cost_micro_usd", cost, "receipt", rec.ID, "ttfb_ms", ttfb.Milliseconds())
	if g.OnReceipt != nil {
		g.OnReceipt(m, req, ans.Output, ans.Receipt)
	}
}
