package api

import (
	"net/http"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// quote answers POST /v1/quote: what posting the body (a POST /v1/jobs
// body) would escrow, line by line (service.Quote). It changes nothing,
// so it needs no Idempotency-Key (one sent is ignored); the total is
// exactly what POST /v1/jobs then escrows for the same body.
func (s *Server) quote(req *http.Request, p auth.Principal, body []byte) response {
	r, _, err := DecodeJob(body)
	if err != nil {
		return fromErr(err)
	}
	client := p.Subject
	if p.Role == auth.RoleOperator {
		client = "operator" // the terms do not depend on the client
	}
	q, err := s.svc.QuoteJob(req.Context(), service.PostJobRequest{ClientID: client, Spec: r.Spec, MaxPriceNanoUSDPerCU: r.MaxPriceNanoUSDPerCU})
	if err != nil {
		return fromErr(err)
	}
	return jsonResponse(http.StatusOK, q)
}

// bodyHandler handles a request with a body, given the authenticated
// principal.
type bodyHandler func(r *http.Request, p auth.Principal, body []byte) response

// plain wraps a handler of a request that is safe to repeat (a quote, a
// PUT): authentication, role and the body limit, without the
// Idempotency-Key that POSTs which change state need.
func (s *Server) plain(h bodyHandler, roles ...auth.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.admit(w, r, roles)
		if !ok {
			return
		}
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		write(w, h(r, p, body))
	}
}
