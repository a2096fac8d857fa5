package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
)

// healthTimeout bounds one /healthz check.
const healthTimeout = 2 * time.Second

// Health is the body of GET /healthz. The endpoint answering at all is
// liveness (the process serves HTTP); its status is readiness: 200 with
// status "ok" when every check passes, 503 with status "unavailable"
// (and which check failed) when one does. It needs no API key and says
// nothing beyond this.
type Health struct {
	Status string        `json:"status"`
	Checks []CheckResult `json:"checks"`
}

// CheckResult is one readiness check's outcome.
type CheckResult struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Error says why the check failed, in an operator's terms.
	Error string `json:"error,omitempty"`
}

// healthCheck is a named readiness check: nil when ready.
type healthCheck struct {
	name  string
	check func(context.Context) error
}

// WithHealthCheck adds a readiness check to GET /healthz (the ledger's is
// built in; the coordinator adds its node's). check returns nil when
// ready, else an error whose text an operator can act on (it is served
// without authentication: no secrets).
func WithHealthCheck(name string, check func(context.Context) error) Option {
	return func(s *Server) { s.checks = append(s.checks, healthCheck{name: name, check: check}) }
}

// checkLedger passes when the ledger answers a lookup (an account that
// does not exist is an answer).
func (s *Server) checkLedger(ctx context.Context) error {
	_, err := s.svc.Ledger().Account(ctx, ledger.AccountID{})
	switch {
	case err == nil, errors.Is(err, ledger.ErrAccountNotFound):
		return nil
	case errors.Is(err, ledger.ErrClosed):
		return errors.New("the ledger is closed")
	default:
		return errors.New("the ledger does not answer; see the coordinator's log")
	}
}

// checkHealth runs every check, each bounded by healthTimeout.
func (s *Server) checkHealth(ctx context.Context) []CheckResult {
	checks := append([]healthCheck{{name: "ledger", check: s.checkLedger}}, s.checks...)
	out := make([]CheckResult, 0, len(checks))
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, healthTimeout)
		err := c.check(cctx)
		cancel()
		r := CheckResult{Name: c.name, OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	return out
}

// healthz serves GET /healthz.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: "ok", Checks: s.checkHealth(r.Context())}
	status := http.StatusOK
	for _, c := range h.Checks {
		if !c.OK {
			h.Status, status = "unavailable", http.StatusServiceUnavailable
		}
	}
	b, _ := json.Marshal(h)
	w.Header().Set("Cache-Control", "no-store")
	write(w, response{Status: status, Body: b})
}

// jobStates are the lifecycle's states by name, for beluga_jobs.
func jobStates() []string {
	var out []string
	for _, st := range lifecycle.States() {
		out = append(out, st.String())
	}
	return out
}
