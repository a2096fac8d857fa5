package api

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the embedded OpenAPI 3 document.
func OpenAPI() []byte { return openapiYAML }

// MaxIdempotencyKeyLen bounds the Idempotency-Key header.
const MaxIdempotencyKeyLen = 128

// DefaultIdempotencyWindow is how long a key's response is kept for
// replays: a client retrying later than this with the same key runs the
// request again.
const DefaultIdempotencyWindow = 24 * time.Hour

// Server serves the API.
type Server struct {
	svc    *service.Service
	keys   *auth.Keys
	log    *slog.Logger
	mux    *http.ServeMux
	now    func() time.Time
	window time.Duration
	// postMu serialises POSTs so that an idempotency key is checked and
	// recorded atomically with the operation.
	postMu sync.Mutex
	onJob  func(spec []byte)
	// checks, collectors and metrics serve /healthz and /metrics
	// (health.go, metrics.go).
	checks     []healthCheck
	collectors []prometheus.Collector
	metrics    *metrics
	// parties: hooks the coordinator node registers (parties.go).
	parties partyHooks
	client  clientState  // the client endpoints' node and limits (client.go)
	signup  *signupState // self-serve sign-up, when enabled (overview.go)
	daemon  daemonSignup // daemons' self-serve sign-up (signup_daemon.go)
}

// Option configures a Server.
type Option func(*Server)

// WithIdempotencyWindow sets how long a key's response answers replays
// (default DefaultIdempotencyWindow); d must be positive.
func WithIdempotencyWindow(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.window = d
		}
	}
}

// WithClock sets the clock that dates idempotency records (default the
// service's clock).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New returns a server over svc, authenticating with keys, logging to log
// (nil: nowhere).
func New(svc *service.Service, keys *auth.Keys, log *slog.Logger, opts ...Option) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, keys: keys, log: log, mux: http.NewServeMux(), now: svc.Now, window: DefaultIdempotencyWindow}
	for _, o := range opts {
		o(s)
	}
	s.metrics = newMetrics(s)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /metrics", s.metricsHandler())
	s.mux.HandleFunc("GET /v1/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(openapiYAML)
	})
	s.mux.HandleFunc("POST /v1/deposits", s.post(s.deposit, auth.RoleOperator))
	s.mux.HandleFunc("POST /v1/jobs", s.post(s.postJob, auth.RoleClient))
	s.mux.HandleFunc("POST /v1/payouts/runs", s.post(s.payoutRun, auth.RoleOperator))
	s.mux.HandleFunc("POST /v1/keys", s.post(s.issueKey, auth.RoleOperator))
	s.mux.HandleFunc("GET /v1/jobs", s.get(s.listJobs))
	s.mux.HandleFunc("GET /v1/jobs/{id}", s.get(s.getJobProgress))
	s.mux.HandleFunc("POST /v1/jobs/{id}/cancel", s.cancelRoute)
	s.mux.HandleFunc("GET /v1/jobs/{id}/weights", s.weightsRoute)
	s.mux.HandleFunc("GET /v1/jobs/{id}/audit", s.get(s.getAudit))
	s.mux.HandleFunc("GET /v1/jobs/{id}/report", s.get(s.getReport))
	s.mux.HandleFunc("GET /v1/accounts/{id}/statement", s.get(s.statement))
	s.mux.HandleFunc("GET /v1/parties/{id}", s.get(s.getParty))
	s.mux.HandleFunc("POST /v1/quote", s.plain(s.quote, auth.RoleClient, auth.RoleOperator))
	s.mux.HandleFunc("PUT /v1/parties/{id}/bank", s.plain(s.putBank, auth.RoleSolver, auth.RoleVerifier, auth.RoleOperator))
	s.mux.HandleFunc("GET /v1/parties/{id}/bank", s.get(s.getBank))
	s.mux.HandleFunc("GET /v1/payouts/runs/{period}/ach", s.get(s.ach))
	// A client's text corpora, which the daemons fetch peer to peer (data.go).
	s.mux.HandleFunc("PUT /v1/data", s.putData)
	s.mux.HandleFunc("GET /v1/data/{root}", s.get(s.getData))
	// Sign-up and the overviews a person's first minutes need (overview.go).
	s.mux.HandleFunc("POST /v1/signup", s.signupRoute)
	s.mux.HandleFunc("POST /v1/signup/daemon", s.daemonSignupRoute)
	s.mux.HandleFunc("GET /v1/me", s.get(s.me))
	s.mux.HandleFunc("GET /v1/market", s.get(s.market))
	s.mux.HandleFunc("GET /v1/ledger", s.get(s.ledgerView))
	s.mux.HandleFunc("GET /v1/parties", s.get(s.listParties))
	s.mux.HandleFunc("GET /v1/payouts/runs", s.get(s.listRuns))
	s.mux.HandleFunc("GET /v1/disputes", s.get(s.listDisputes))
	return s
}

// ServeHTTP implements http.Handler: it routes r, answers what no route
// takes with a problem (405 with the mux's Allow header for a known path,
// else 404), counts the request in the metrics and logs one "request"
// event per request (the access log).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lw := &logWriter{ResponseWriter: w, path: r.URL.Path}
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.serveRoute(lw, r)
	} else {
		// No route: ask the mux what it would answer (405 and Allow, 404,
		// or a redirect to the clean path) without letting it write.
		probe := &probeWriter{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch {
		case probe.status == http.StatusMethodNotAllowed:
			allow := probe.header.Get("Allow")
			lw.Header().Set("Allow", allow)
			write(lw, errResponse(http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed here; use %s", r.Method, allow)))
		case probe.status/100 == 3:
			h.ServeHTTP(lw, r)
		default:
			write(lw, errResponse(http.StatusNotFound, "not_found", "no such endpoint"))
		}
	}
	if lw.status == 0 {
		lw.status = http.StatusOK // the handler wrote nothing
	}
	d := time.Since(start)
	s.metrics.observe(routeOf(r), lw.status, d)
	s.logRequest(r, lw, d)
}

// serveRoute runs r's route. A handler that panics is answered 500
// internal (a problem, if it had written nothing yet) and logged at ERROR
// with its stack ("handler panicked"), instead of a dropped connection;
// its request event carries the panic as err.
func (s *Server) serveRoute(lw *logWriter, r *http.Request) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v) // net/http's way to abort a response: not a fault
		}
		s.log.LogAttrs(r.Context(), slog.LevelError, "handler panicked", slog.String("route", routeOf(r)),
			slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
		if lw.status == 0 {
			write(lw, errResponse(http.StatusInternalServerError, "internal", "internal error; the operator is told"))
		}
		lw.code, lw.err = "internal", fmt.Errorf("panic: %v", v)
	}()
	s.mux.ServeHTTP(lw, r)
}

// routeOf is r's route pattern, "(none)" for a request no route took.
func routeOf(r *http.Request) string {
	if r.Pattern == "" {
		return "(none)"
	}
	return r.Pattern
}

// quietRoutes are polled by machines (probes, scrapers): their successes
// are logged at DEBUG.
var quietRoutes = map[string]bool{"GET /healthz": true, "GET /metrics": true}

// logRequest logs the "request" event, the access log: method, path,
// route, status, bytes (of the body sent), duration, remote (the peer's
// address: a reverse proxy's, behind one), and the principal, error code
// and error if any. Successes are INFO (DEBUG for health probes and metric
// scrapes), refusals (4xx) INFO, and what the operator must look at (5xx,
// and a ledger that refused the service's own transfers) ERROR; a probe
// that finds the coordinator not ready is WARN.
func (s *Server) logRequest(r *http.Request, lw *logWriter, d time.Duration) {
	route := routeOf(r)
	level := slog.LevelInfo
	switch {
	case quietRoutes[route] && lw.status < 400:
		level = slog.LevelDebug
	case quietRoutes[route]:
		level = slog.LevelWarn // the coordinator is not ready: polled, so not ERROR
	case lw.status >= 500 || lw.code == "ledger_rejected":
		level = slog.LevelError
	}
	ctx := r.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("path", lw.path), slog.String("route", route),
		slog.Int("status", lw.status), slog.Int64("bytes", lw.bytes), slog.Duration("duration", d),
		slog.String("remote", r.RemoteAddr),
	}
	if lw.subject != "" {
		attrs = append(attrs, slog.String("subject", lw.subject))
	}
	if lw.code != "" {
		attrs = append(attrs, slog.String("code", lw.code))
	}
	if lw.err != nil {
		attrs = append(attrs, slog.String("err", lw.err.Error()))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// logWriter notes what a request was answered, for logRequest and the
// metrics.
type logWriter struct {
	http.ResponseWriter
	path    string // the request's path: a problem's instance
	status  int
	bytes   int64  // body bytes written
	code    string // the error code, if the answer was an error
	err     error  // the error answered, if any
	subject string // the authenticated principal, if any
}

func (l *logWriter) WriteHeader(status int) {
	if l.status == 0 {
		l.status = status
	}
	l.ResponseWriter.WriteHeader(status)
}

func (l *logWriter) Write(b []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	n, err := l.ResponseWriter.Write(b)
	l.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer (to
// flush a long download, or extend its deadline).
func (l *logWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// probeWriter takes what a handler writes and keeps only the status and
// headers.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
func (p *probeWriter) Write(b []byte) (int, error) { p.WriteHeader(http.StatusOK); return len(b), nil }

// noteSubject records the authenticated principal for the log.
func noteSubject(w http.ResponseWriter, p auth.Principal) {
	if lw, ok := w.(*logWriter); ok {
		lw.subject = p.Subject
	}
}

// OnJobPosted registers f to be called with the offered spec of every job
// posted (service.Job.Spec: the client's spec with its posting tag, whose
// hash is the job's ID); the coordinator's libp2p node offers it to
// solvers. Set it before serving.
func (s *Server) OnJobPosted(f func(spec []byte)) { s.onJob = f }

// response is a handler's result; stored for idempotent replays.
type response struct {
	Status      int             `json:"status"`
	ContentType string          `json:"content_type,omitempty"`
	Body        json.RawMessage `json:"body"`
	BodyHash    string          `json:"body_hash,omitempty"`
	// At is when the response was recorded (idempotency records only).
	At time.Time `json:"at,omitzero"`
	// redacted, if set, is recorded for replays instead of Body (secrets
	// are not stored).
	redacted json.RawMessage
	// err and code are the error the response answers and its code, for
	// the log.
	err  error
	code string
	// problem is the error's problem details, if it is one (write sets
	// its instance).
	problem *Problem
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return errResponse(http.StatusInternalServerError, "internal", "encode response")
	}
	return response{Status: status, Body: b}
}

func (s *Server) authenticate(r *http.Request) (auth.Principal, *response) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		e := errResponse(http.StatusUnauthorized, "unauthorized", "missing bearer API key")
		return auth.Principal{}, &e
	}
	p, err := s.keys.Authenticate(r.Context(), tok)
	if err != nil {
		// The "request" event carries why (never the secret); the client
		// learns only that the key did not authenticate.
		e := fromErr(err)
		return auth.Principal{}, &e
	}
	return p, nil
}

type postHandler func(ctx context.Context, p auth.Principal, body []byte) response

// post wraps a POST handler: authentication, role, body limit,
// idempotency.
//
// Idempotency: the response to a (principal, route, Idempotency-Key) is
// recorded when it succeeded (2xx), and for the window (default 24 h) a
// request with that key gets it back (with the same body) or 409 (with
// another body) without running again. A failed request records nothing:
// it changed nothing, so its retry (say after a top-up that cures
// insufficient_funds) runs afresh rather than replaying the failure.
func (s *Server) post(h postHandler, roles ...auth.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.admit(w, r, roles)
		if !ok {
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if key == "" || len(key) > MaxIdempotencyKeyLen {
			writeErr(w, http.StatusBadRequest, "idempotency_key_required", fmt.Sprintf("POST needs an Idempotency-Key header of 1..%d characters", MaxIdempotencyKeyLen))
			return
		}
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		sum := sha256.Sum256(body)
		bodyHash := hex.EncodeToString(sum[:])
		ik := sha256.Sum256([]byte(p.Role.String() + "\x00" + p.Subject + "\x00" + r.Pattern + "\x00" + key))
		storeKey := "idem/" + hex.EncodeToString(ik[:])

		s.postMu.Lock()
		defer s.postMu.Unlock()
		now := s.now()
		if b, ok, err := s.svc.Store().GetRaw(storeKey); err != nil {
			write(w, fromErr(err))
			return
		} else if ok {
			var prev response
			if err := json.Unmarshal(b, &prev); err != nil {
				write(w, fromErr(err))
				return
			}
			if now.Sub(prev.At) < s.window {
				if prev.BodyHash != bodyHash {
					writeErr(w, http.StatusConflict, "idempotency_key_reused", "this Idempotency-Key was used with a different request body")
					return
				}
				w.Header().Set("Idempotent-Replayed", "true")
				write(w, prev)
				return
			}
			// Expired: the key is free again.
		}
		resp := h(r.Context(), p, body)
		if resp.Status/100 == 2 {
			rec := resp
			rec.BodyHash, rec.At = bodyHash, now.UTC()
			if rec.redacted != nil {
				rec.Body = rec.redacted
			}
			b, _ := json.Marshal(rec)
			// The store drops the record a while after the window (by the
			// wall clock); until then the recorded time decides.
			if err := s.svc.Store().PutRawTTL(storeKey, b, s.window+time.Hour); err != nil {
				// The request did apply; only its replay protection is
				// lost (a retry of a deposit or payout run is still a no-op
				// by its own ID, a job's by its posting).
				s.log.LogAttrs(r.Context(), slog.LevelError, "idempotency record not stored",
					slog.String("route", r.Pattern), slog.String("subject", p.Subject), slog.String("err", err.Error()))
			}
		}
		write(w, resp)
	}
}

type getHandler func(r *http.Request, p auth.Principal) response

// admit authenticates r and checks its role, answering w when it fails.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, roles []auth.Role) (auth.Principal, bool) {
	p, e := s.authenticate(r)
	if e != nil {
		write(w, *e)
		return p, false
	}
	noteSubject(w, p)
	if err := p.Require(roles...); err != nil {
		write(w, fromErr(err))
		return p, false
	}
	return p, true
}

// readBody reads r's body up to MaxBodyBytes, answering w when it cannot.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body over %d bytes", MaxBodyBytes))
		return nil, false
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "read body")
		return nil, false
	}
	return body, true
}

func (s *Server) get(h getHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, e := s.authenticate(r)
		if e != nil {
			write(w, *e)
			return
		}
		noteSubject(w, p)
		write(w, h(r, p))
	}
}

func (s *Server) deposit(ctx context.Context, _ auth.Principal, body []byte) response {
	d, err := DecodeDeposit(body)
	if err != nil {
		return fromErr(err)
	}
	res, err := s.svc.RecordDeposit(ctx, d)
	if err != nil {
		return fromErr(err)
	}
	s.parties.deposit(d.Account)
	return jsonResponse(http.StatusCreated, res)
}

func (s *Server) postJob(ctx context.Context, p auth.Principal, body []byte) response {
	r, _, err := DecodeJob(body)
	if err != nil {
		return fromErr(err)
	}
	j, err := s.svc.PostJob(ctx, service.PostJobRequest{ClientID: p.Subject, Spec: r.Spec, MaxPriceNanoUSDPerCU: r.MaxPriceNanoUSDPerCU})
	if err != nil {
		return fromErr(err)
	}
	if s.onJob != nil {
		s.onJob(j.Spec) // the spec as offered: its hash is j.ID
	}
	return jsonResponse(http.StatusCreated, jobView(j))
}

func (s *Server) payoutRun(ctx context.Context, _ auth.Principal, body []byte) response {
	r, err := DecodePayoutRun(body)
	if err != nil {
		return fromErr(err)
	}
	run, err := s.svc.RunPayouts(ctx, r.Period)
	if err != nil {
		return fromErr(err)
	}
	return jsonResponse(http.StatusCreated, runView(run))
}

func (s *Server) issueKey(ctx context.Context, _ auth.Principal, body []byte) response {
	r, err := DecodeKey(body)
	if err != nil {
		return fromErr(err)
	}
	role, err := auth.ParseRole(r.Role)
	if err != nil {
		return fromErr(fmt.Errorf("%w: role: %v", errBadRequest, err))
	}
	key, rec, err := s.keys.Issue(ctx, r.Subject, role, 0)
	if err != nil {
		return fromErr(err)
	}
	s.parties.key(rec.Subject, rec.Role)
	// A replay gets the record without the key, which is never stored.
	out := map[string]string{"key": key, "key_id": rec.ID, "subject": rec.Subject, "role": rec.Role.String()}
	resp := jsonResponse(http.StatusCreated, out)
	out["key"] = "[shown once]"
	resp.redacted = jsonResponse(http.StatusCreated, out).Body
	return resp
}

// jobView hides the internal intent.
func jobView(j *service.Job) *service.Job {
	c := *j
	c.Pending = nil
	c.Audit = nil
	return &c
}

type runSummary struct {
	Period     string             `json:"period"`
	Posted     bool               `json:"posted"`
	TotalCents int64              `json:"total_cents"`
	Payees     []service.RunPayee `json:"payees"`
	// Skipped are payees with earnings the run could not pay (bank.go).
	Skipped []service.RunSkip `json:"skipped"`
}

func runView(r *service.Run) runSummary {
	sk := r.Skipped
	if sk == nil {
		sk = []service.RunSkip{}
	}
	return runSummary{Period: r.Period, Posted: r.Posted, TotalCents: r.TotalCents, Payees: r.Payees, Skipped: sk}
}

// jobFor loads the job of the path for p: its client or the operator.
// Anyone else gets the answer a job that does not exist gets, byte for
// byte, so that job IDs say nothing about other clients' jobs.
func (s *Server) jobFor(r *http.Request, p auth.Principal) (*service.Job, *response) {
	id, err := spec.ParseJobID(r.PathValue("id"))
	if err != nil {
		e := errResponse(http.StatusBadRequest, "invalid_request", "job id must be 64 hex digits")
		return nil, &e
	}
	j, err := s.svc.Job(r.Context(), id)
	if err == nil && p.Role != auth.RoleOperator && !(p.Role == auth.RoleClient && j.ClientID == p.Subject) {
		err = service.ErrNotFound
	}
	if errors.Is(err, service.ErrNotFound) {
		e := errResponse(http.StatusNotFound, "not_found", "no such job")
		return nil, &e
	}
	if err != nil {
		e := fromErr(err)
		return nil, &e
	}
	return j, nil
}

func (s *Server) getAudit(r *http.Request, p auth.Principal) response {
	j, e := s.jobFor(r, p)
	if e != nil {
		return *e
	}
	return jsonResponse(http.StatusOK, auditView(j)) // report.go
}

// statementPage is a page of a statement: the balances are the whole
// statement's (its period's), the lines a page of them in journal order.
type statementPage struct {
	*service.Statement
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *Server) statement(r *http.Request, p auth.Principal) response {
	ref, err := service.ParseAccountRef(r.PathValue("id"))
	if err != nil {
		return fromErr(err)
	}
	page, err := ParsePage(r.URL.Query())
	if err != nil {
		return fromErr(err)
	}
	if p.Role != auth.RoleOperator {
		own := map[auth.Role][]service.Kind{
			auth.RoleClient:   {service.KindClientFunds},
			auth.RoleSolver:   {service.KindSolverBond, service.KindSolverEarnings},
			auth.RoleVerifier: {service.KindVerifierBond, service.KindVerifierEarnings},
		}[p.Role]
		ok := ref.Party == p.Subject
		if ok {
			ok = false
			for _, k := range own {
				ok = ok || k == ref.Kind
			}
		}
		if !ok {
			return errResponse(http.StatusNotFound, "not_found", "no such account")
		}
	}
	st, err := s.svc.Statement(r.Context(), ref, r.URL.Query().Get("period"))
	if err != nil {
		return fromErr(err)
	}
	var next string
	st.Lines, next = PageItems(st.Lines, func(l service.StatementLine) string { return SeqKey(l.Seq) }, page)
	return jsonResponse(http.StatusOK, statementPage{Statement: st, NextCursor: next})
}

func (s *Server) ach(r *http.Request, p auth.Principal) response {
	if err := p.Require(auth.RoleOperator); err != nil {
		return fromErr(err)
	}
	run, err := s.svc.PayoutRun(r.Context(), r.PathValue("period"))
	if err != nil {
		return fromErr(err)
	}
	if !run.Posted || len(run.ACH) == 0 {
		return errResponse(http.StatusNotFound, "not_found", "the run has no ACH file (no payees, or not posted)")
	}
	return response{Status: http.StatusOK, ContentType: "text/plain; charset=us-ascii", Body: run.ACH}
}
