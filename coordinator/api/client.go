package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/node"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
)

// The client's job endpoints: GET /v1/jobs (the caller's jobs, newest
// first), progress on GET /v1/jobs/{id}, POST /v1/jobs/{id}/cancel and
// GET /v1/jobs/{id}/weights (see the package doc, "Final weights").

// JobNode is what the client endpoints need of the coordinator node
// (coordinator/node.Node implements it).
type JobNode interface {
	// Progress is what the node knows of a job's training.
	Progress(id spec.JobID) node.Progress
	// FinalState fetches a committed job's final checkpoint, checked
	// against the committed final digest, which it returns too.
	FinalState(ctx context.Context, id spec.JobID) (*spec.State, [32]byte, error)
	// JobEnded tells the node that the API ended the job (cancelled it).
	JobEnded(ctx context.Context, id spec.JobID)
}

var _ JobNode = (*node.Node)(nil)

// Limits of the weights endpoint.
const (
	// MaxWeightFetches is how many final checkpoints the coordinator
	// fetches for clients at once; more get 503 busy.
	MaxWeightFetches = 2
	// WeightsFetchTimeout bounds one fetch from the solver.
	WeightsFetchTimeout = 2 * time.Minute
	// etaMarks is how many of the newest checkpoint times the ETA's rate
	// is measured over.
	etaMarks = 8
)

// clientState is the Server's part for the client endpoints.
type clientState struct {
	mu   sync.Mutex
	node JobNode
	// fetches counts weights fetches in flight (at most MaxWeightFetches).
	fetches int
}

// AttachNode lets the client endpoints ask n for progress and final
// weights, and tell it of cancellations. Without a node, GET
// /v1/jobs/{id} shows the service's committed step only and the weights
// endpoint answers 503. Call it before serving.
func (s *Server) AttachNode(n JobNode) {
	s.client.mu.Lock()
	defer s.client.mu.Unlock()
	s.client.node = n
}

func (s *Server) jobNode() JobNode {
	s.client.mu.Lock()
	defer s.client.mu.Unlock()
	return s.client.node
}

// JobSummary is one job in GET /v1/jobs.
type JobSummary struct {
	ID                string          `json:"id"`
	SpecID            string          `json:"spec_id,omitempty"`
	Name              string          `json:"name"`
	State             lifecycle.State `json:"state"`
	Steps             int64           `json:"steps"`
	CommittedStep     int64           `json:"committed_step"`
	ComputeUnits      int64           `json:"compute_units"`
	EscrowMicroUSD    int64           `json:"escrow_micro_usd"`
	PriceNanoUSDPerCU int64           `json:"price_nano_usd_per_cu,omitempty"`
	PostedAt          time.Time       `json:"posted_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
}

func summarize(j *service.Job) JobSummary {
	v := JobSummary{ID: j.ID, SpecID: j.SpecID, State: j.State, Steps: j.Steps, CommittedStep: j.CommittedStep,
		ComputeUnits: j.CU, EscrowMicroUSD: j.EscrowMicroUSD}
	var named struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(j.Spec, &named) == nil { // the name only: no need to validate a stored spec per row
		v.Name = named.Name
	}
	if n := len(j.History); n > 0 {
		v.PostedAt, v.UpdatedAt = j.History[0].At, j.History[n-1].At
	}
	return v
}

// listKey orders jobs newest first: the inverted posting time, then the
// ID (unique), so that a cursor stays put as jobs are posted.
func listKey(j JobSummary) string {
	return fmt.Sprintf("%019d/%s", math.MaxInt64-j.PostedAt.UnixNano(), j.ID)
}

// listJobs is GET /v1/jobs: the caller's jobs (a client's own; the
// operator's: everyone's), newest first, paginated by the package's
// convention (page.go).
func (s *Server) listJobs(r *http.Request, p auth.Principal) response {
	if err := p.Require(auth.RoleClient, auth.RoleOperator); err != nil {
		return fromErr(err)
	}
	pg, err := ParsePage(r.URL.Query())
	if err != nil {
		return fromErr(err)
	}
	client := p.Subject
	if p.Role == auth.RoleOperator {
		client = ""
	}
	jobs, err := s.svc.Jobs(r.Context(), client)
	if err != nil {
		return fromErr(err)
	}
	items := make([]JobSummary, len(jobs))
	for i, j := range jobs {
		items[i] = summarize(j)
	}
	slices.SortFunc(items, func(a, b JobSummary) int {
		ka, kb := listKey(a), listKey(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	page, next := PageItems(items, listKey, pg)
	if page == nil {
		page = []JobSummary{}
	}
	return jsonResponse(http.StatusOK, List[JobSummary]{Items: page, NextCursor: next})
}

// ProgressView is the progress member of GET /v1/jobs/{id}.
type ProgressView struct {
	Steps int64 `json:"steps"`
	// CommittedStep: every step up to it is committed (replicated, or the
	// final trace); a solver that vanishes is paid up to here.
	CommittedStep int64 `json:"committed_step"`
	// ReportedStep is the step the solver last reported (its word, not
	// committed), when a node runs the job.
	ReportedStep int64 `json:"reported_step,omitempty"`
	// LastLoss is the training loss (nats, the mean over a step's batch)
	// the solver last reported, while it runs: its word, not audited.
	LastLoss *float64 `json:"last_loss,omitempty"`
	// LastCheckpointStep and LastCheckpointAt: the newest checkpoint the
	// solver announced.
	LastCheckpointStep int64      `json:"last_checkpoint_step,omitempty"`
	LastCheckpointAt   *time.Time `json:"last_checkpoint_at,omitempty"`
	// StepsPerSecond is measured over the newest checkpoint times.
	StepsPerSecond float64 `json:"steps_per_second,omitempty"`
	// ETA is when training should end at that rate (absent when unknown
	// or over).
	ETA        *time.Time `json:"eta,omitempty"`
	ETASeconds *int64     `json:"eta_seconds,omitempty"`
	// TraceRoot and FinalDigest: the committed trace's root and last entry
	// (the final state digest), once committed.
	TraceRoot   string `json:"trace_root,omitempty"`
	FinalDigest string `json:"final_digest,omitempty"`
	// Losses is the loss curve the solver reported (its word, not
	// audited), oldest first, thinned to at most a few hundred points;
	// kept while the node remembers the job (--retention after it ends).
	Losses []LossPoint `json:"losses,omitempty"`
}

// LossPoint is one point of a job's loss curve: the training loss (nats)
// the solver reported at a step.
type LossPoint struct {
	Step int64   `json:"step"`
	Loss float64 `json:"loss"`
}

// JobView is GET /v1/jobs/{id}: the job's record and its progress.
type JobView struct {
	*service.Job
	Progress ProgressView `json:"progress"`
}

// progress builds j's progress from the service's record and what the
// node knows.
func (s *Server) progress(j *service.Job) ProgressView {
	v := ProgressView{Steps: j.Steps, CommittedStep: j.CommittedStep}
	n := s.jobNode()
	id, err := spec.ParseJobID(j.ID)
	if n == nil || err != nil {
		return v
	}
	p := n.Progress(id)
	if p.Final != nil {
		v.TraceRoot, v.FinalDigest = hex.EncodeToString(p.Final.TraceRoot[:]), hex.EncodeToString(p.Final.FinalDigest[:])
	}
	for _, l := range p.Losses {
		v.Losses = append(v.Losses, LossPoint{Step: l.Step, Loss: float64(l.LossQ16) / 65536})
	}
	if j.State.Terminal() || p.Final != nil {
		return v
	}
	v.ReportedStep = p.ReportedStep
	if p.LossQ16 > 0 {
		loss := float64(p.LossQ16) / 65536
		v.LastLoss = &loss
	}
	ms := p.Checkpoints
	if len(ms) == 0 {
		return v
	}
	last := ms[len(ms)-1]
	at := last.At.UTC()
	v.LastCheckpointStep, v.LastCheckpointAt = last.Step, &at
	if len(ms) > etaMarks {
		ms = ms[len(ms)-etaMarks:]
	}
	first := ms[0]
	dt := last.At.Sub(first.At).Seconds()
	if dt <= 0 || last.Step <= first.Step {
		return v
	}
	v.StepsPerSecond = float64(last.Step-first.Step) / dt
	left := float64(j.Steps - last.Step)
	eta := last.At.Add(time.Duration(left / v.StepsPerSecond * float64(time.Second))).UTC().Truncate(time.Second)
	secs := max(0, int64(eta.Sub(s.now()).Seconds()))
	v.ETA, v.ETASeconds = &eta, &secs
	return v
}

func (s *Server) getJobProgress(r *http.Request, p auth.Principal) response {
	j, e := s.jobFor(r, p)
	if e != nil {
		return *e
	}
	return jsonResponse(http.StatusOK, JobView{Job: jobView(j), Progress: s.progress(j)})
}

// cancelRoute is POST /v1/jobs/{id}/cancel. Idempotency records are keyed
// by route pattern; this one's is the job's own path, so that one
// Idempotency-Key used to cancel two jobs cancels both instead of
// replaying the first job's answer for the second.
func (s *Server) cancelRoute(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rr := r.WithContext(r.Context())
	rr.Pattern = "POST /v1/jobs/" + id + "/cancel"
	s.post(func(ctx context.Context, p auth.Principal, body []byte) response {
		return s.cancelJob(ctx, rr, p, body)
	}, auth.RoleClient, auth.RoleOperator)(w, rr)
}

// CancelResult is the answer to POST /v1/jobs/{id}/cancel.
type CancelResult struct {
	Job *service.Job `json:"job"`
	// RefundedMicroUSD is the escrow released back to the client's funds.
	RefundedMicroUSD int64 `json:"refunded_micro_usd"`
}

func (s *Server) cancelJob(ctx context.Context, r *http.Request, p auth.Principal, body []byte) response {
	if len(body) > 0 && string(body) != "{}" {
		return errResponse(http.StatusBadRequest, "invalid_request", "the cancel request takes no body (or {})")
	}
	j, e := s.jobFor(r, p)
	if e != nil {
		return *e
	}
	if j.State == lifecycle.Cancelled {
		return jsonResponse(http.StatusOK, CancelResult{Job: jobView(j), RefundedMicroUSD: 0})
	}
	if j.State != lifecycle.Posted && j.State != lifecycle.Resumable {
		r := errResponse(http.StatusConflict, "illegal_state",
			fmt.Sprintf("job %s is %s: only a job waiting for a solver (posted, or resumable after its solver left) can be cancelled; a job that is running or audited ends by itself, and any job not over by its deadline expires with its escrow refunded", j.ID, j.State))
		return r
	}
	n, err := s.svc.Cancel(ctx, j.ID)
	if err != nil {
		return fromErr(err)
	}
	if nd := s.jobNode(); nd != nil {
		if id, err := spec.ParseJobID(j.ID); err == nil {
			nd.JobEnded(ctx, id)
		}
	}
	return jsonResponse(http.StatusOK, CancelResult{Job: jobView(n), RefundedMicroUSD: n.EscrowMicroUSD})
}

// weightsRoute is GET /v1/jobs/{id}/weights: the job's final state as a
// weights file (client_weights.go), fetched from the solver that committed
// it and checked against the committed final digest on the way.
func (s *Server) weightsRoute(w http.ResponseWriter, r *http.Request) {
	p, e := s.authenticate(r)
	if e != nil {
		write(w, *e)
		return
	}
	noteSubject(w, p)
	j, e := s.jobFor(r, p)
	if e != nil {
		write(w, *e)
		return
	}
	b, resp := s.weights(r.Context(), j)
	if b == nil {
		write(w, resp)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", j.ID[:16]+".safetensors"))
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Beluga-Job-State", j.State.String())
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func (s *Server) weights(ctx context.Context, j *service.Job) ([]byte, response) {
	sp, err := spec.Decode(j.Spec)
	if err != nil {
		return nil, fromErr(err)
	}
	if sp.Audit.Confidential {
		return nil, errResponse(http.StatusConflict, "confidential",
			"this job is confidential: its weights never leave the solver that trained them, and the coordinator cannot pass them on without seeing them; there is no download for confidential jobs yet")
	}
	switch j.State {
	case lifecycle.AdjudicatedCheat:
		return nil, errResponse(http.StatusConflict, "illegal_state", "the solver of this job was found cheating: its weights are not what the spec trains, and are not served")
	case lifecycle.Posted, lifecycle.Matched, lifecycle.Running, lifecycle.Resumable, lifecycle.Cancelled, lifecycle.Expired:
		return nil, errResponse(http.StatusConflict, "illegal_state", fmt.Sprintf("job %s is %s: it has no final weights", j.ID, j.State))
	}
	n := s.jobNode()
	if n == nil {
		return nil, errResponse(http.StatusServiceUnavailable, "unavailable", "this coordinator runs without its network node, so it cannot fetch weights from solvers")
	}
	s.client.mu.Lock()
	if s.client.fetches >= MaxWeightFetches {
		s.client.mu.Unlock()
		return nil, errResponse(http.StatusServiceUnavailable, "busy", "other downloads are being fetched; retry shortly")
	}
	s.client.fetches++
	s.client.mu.Unlock()
	defer func() {
		s.client.mu.Lock()
		s.client.fetches--
		s.client.mu.Unlock()
	}()
	id, _ := spec.ParseJobID(j.ID)
	ctx, cancel := context.WithTimeout(ctx, WeightsFetchTimeout)
	defer cancel()
	st, digest, err := n.FinalState(ctx, id)
	switch {
	case errors.Is(err, node.ErrNoFinal):
		return nil, errResponse(http.StatusConflict, "illegal_state", fmt.Sprintf("job %s is %s but this coordinator has no record of its final digest", j.ID, j.State))
	case errors.Is(err, node.ErrConfidential):
		return nil, errResponse(http.StatusConflict, "confidential", "this job is confidential: its weights never leave the solver")
	case err != nil:
		r := errResponse(http.StatusServiceUnavailable, "unavailable", "the solver holding the final weights did not serve them (it may be offline, or have dropped the run); retry later")
		r.err = err
		return nil, r
	}
	frac := sp.Numeric.MasterFrac
	if sp.IsGPT() {
		frac = gpt.MasterFrac
	}
	b, err := EncodeWeights(&Weights{Job: id, StateDigest: digest, MasterFrac: frac, State: st})
	if err != nil {
		return nil, fromErr(err)
	}
	return b, response{}
}
