package api

import (
	"net/http"
	"strings"
	"sync"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// The parties' endpoint: what a solver or verifier has with the
// coordinator (GET /v1/parties/{id}), read with its own API key, and the
// hooks through which the coordinator node hears of what the API changed
// for a party (a bond deposited, a key issued).

// partyHooks are the functions told of deposits and issued keys.
type partyHooks struct {
	mu        sync.Mutex
	deposited func(service.AccountRef)
	issued    func(subject string, role auth.Role)
}

// OnDeposit registers f to be called with the account of every deposit
// recorded (the coordinator node asks a solver waiting for its bond for
// work). Set it before serving.
func (s *Server) OnDeposit(f func(account service.AccountRef)) {
	s.parties.mu.Lock()
	defer s.parties.mu.Unlock()
	s.parties.deposited = f
}

// OnKeyIssued registers f to be called with the subject and role of every
// API key issued (the node enrols a verifier at once). Set it before
// serving.
func (s *Server) OnKeyIssued(f func(subject string, role auth.Role)) {
	s.parties.mu.Lock()
	defer s.parties.mu.Unlock()
	s.parties.issued = f
}

func (h *partyHooks) deposit(a service.AccountRef) {
	h.mu.Lock()
	f := h.deposited
	h.mu.Unlock()
	if f != nil {
		f(a)
	}
}

func (h *partyHooks) key(subject string, role auth.Role) {
	h.mu.Lock()
	f := h.issued
	h.mu.Unlock()
	if f != nil {
		f(subject, role)
	}
}

// getParty answers GET /v1/parties/{id}: a solver's or verifier's bond,
// jobs, earnings and next payout (service.PartyStatus). A solver or
// verifier key reads its own party only (anything else is the 404 of a
// party that does not exist); the operator reads any, as a solver unless
// ?role=verifier or the party ID starts with "v" (the coordinator node's
// party IDs: "s…" for solvers, "v…" for verifiers).
func (s *Server) getParty(r *http.Request, p auth.Principal) response {
	id := r.PathValue("id")
	if err := service.CheckPartyID(id); err != nil {
		return fromErr(err)
	}
	var role service.PartyRole
	switch p.Role {
	case auth.RoleSolver:
		role = service.PartySolver
	case auth.RoleVerifier:
		role = service.PartyVerifier
	case auth.RoleOperator:
		switch q := r.URL.Query().Get("role"); q {
		case "solver", "verifier":
			role = service.PartyRole(q)
		case "":
			role = service.PartySolver
			if strings.HasPrefix(id, "v") {
				role = service.PartyVerifier
			}
		default:
			return errResponse(http.StatusBadRequest, "invalid_request", "role must be solver or verifier")
		}
	}
	if role == "" || (p.Role != auth.RoleOperator && p.Subject != id) {
		return errResponse(http.StatusNotFound, "not_found", "no such party")
	}
	st, err := s.svc.Party(r.Context(), id, role)
	if err != nil {
		return fromErr(err)
	}
	return jsonResponse(http.StatusOK, st)
}
