package api

import (
	"fmt"
	"net/http"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/payout"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// Bank details: a solver or verifier registers where its earnings are
// paid (PUT /v1/parties/{id}/bank) with its own API key, and reads back
// what is registered, the account number masked (GET). The coordinator
// seals them with its vault (coordinator/vault) before they are stored.

// BankRequest is PUT /v1/parties/{id}/bank.
type BankRequest struct {
	// HolderName is the account holder's name as the bank knows it (1..22
	// printable ASCII characters).
	HolderName string `json:"holder_name"`
	// RoutingNumber is the bank's nine-digit ABA routing number.
	RoutingNumber string `json:"routing_number"`
	// AccountNumber is 1..17 letters, digits or '-'.
	AccountNumber string `json:"account_number"`
	// AccountType is "checking" or "savings".
	AccountType string `json:"account_type"`
}

// DecodeBank parses and checks a bank details request. Its errors never
// contain the account number.
func DecodeBank(body []byte) (payout.BankAccount, error) {
	var r BankRequest
	if err := decodeStrict(body, &r); err != nil {
		return payout.BankAccount{}, err
	}
	t, err := payout.ParseAccountType(r.AccountType)
	if err != nil {
		return payout.BankAccount{}, fmt.Errorf("%w: account_type must be \"checking\" or \"savings\"", errBadRequest)
	}
	a := payout.BankAccount{HolderName: r.HolderName, RoutingNumber: r.RoutingNumber, AccountNumber: r.AccountNumber, Type: t}
	if err := a.Validate(); err != nil {
		return payout.BankAccount{}, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return a, nil
}

// BankView is what the API shows of registered bank details: never the
// whole account number.
type BankView struct {
	Party string `json:"party"`
	// Account is the earnings account paid into this bank account
	// ("solver_earnings:<id>" or "verifier_earnings:<id>").
	Account       string `json:"account"`
	HolderName    string `json:"holder_name"`
	RoutingNumber string `json:"routing_number"`
	// AccountNumberLast4 is the account number's last four characters.
	AccountNumberLast4 string `json:"account_number_last4"`
	AccountType        string `json:"account_type"`
}

func bankView(ref service.AccountRef, a payout.BankAccount) BankView {
	last := a.AccountNumber
	if len(last) > 4 {
		last = last[len(last)-4:]
	}
	return BankView{Party: ref.Party, Account: ref.String(), HolderName: a.HolderName, RoutingNumber: a.RoutingNumber,
		AccountNumberLast4: last, AccountType: a.Type.String()}
}

// bankAccountFor returns the earnings account of the path's party for p:
// a solver's or verifier's own (any other party gets the 404 of a party
// that does not exist), or for the operator the one ?role=solver|verifier
// names.
func bankAccountFor(r *http.Request, p auth.Principal) (service.AccountRef, *response) {
	id := r.PathValue("id")
	if err := service.CheckPartyID(id); err != nil {
		e := fromErr(err)
		return service.AccountRef{}, &e
	}
	var kind service.Kind
	switch p.Role {
	case auth.RoleSolver:
		kind = service.KindSolverEarnings
	case auth.RoleVerifier:
		kind = service.KindVerifierEarnings
	case auth.RoleOperator:
		switch r.URL.Query().Get("role") {
		case "solver":
			kind = service.KindSolverEarnings
		case "verifier":
			kind = service.KindVerifierEarnings
		default:
			e := errResponse(http.StatusBadRequest, "invalid_request", "an operator names the party's role: ?role=solver or ?role=verifier")
			return service.AccountRef{}, &e
		}
	default:
		e := errResponse(http.StatusForbidden, "forbidden", "bank details belong to solvers and verifiers")
		return service.AccountRef{}, &e
	}
	if p.Role != auth.RoleOperator && p.Subject != id {
		e := errResponse(http.StatusNotFound, "not_found", "no such party")
		return service.AccountRef{}, &e
	}
	return service.AccountRef{Kind: kind, Party: id}, nil
}

// putBank answers PUT /v1/parties/{id}/bank: the details are validated,
// sealed with the vault and stored, replacing any earlier ones; the
// answer shows them masked.
func (s *Server) putBank(r *http.Request, p auth.Principal, body []byte) response {
	ref, e := bankAccountFor(r, p)
	if e != nil {
		return *e
	}
	a, err := DecodeBank(body)
	if err != nil {
		return fromErr(err)
	}
	if err := s.svc.SetBankDetails(r.Context(), ref, a); err != nil {
		return fromErr(err)
	}
	s.log.InfoContext(r.Context(), "bank details registered", "party", ref.Party, "account", ref.String())
	return jsonResponse(http.StatusOK, bankView(ref, a))
}

// getBank answers GET /v1/parties/{id}/bank: the registered details,
// masked, or 404 when there are none.
func (s *Server) getBank(r *http.Request, p auth.Principal) response {
	ref, e := bankAccountFor(r, p)
	if e != nil {
		return *e
	}
	a, ok, err := s.svc.BankDetails(r.Context(), ref)
	if err != nil {
		return fromErr(err)
	}
	if !ok {
		return errResponse(http.StatusNotFound, "not_found", fmt.Sprintf("no bank details registered for %s: PUT them to /v1/parties/%s/bank (beluga solver bank)", ref, ref.Party))
	}
	return jsonResponse(http.StatusOK, bankView(ref, a))
}
