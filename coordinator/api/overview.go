package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// Self-serve sign-up and the read-only views a person's first minutes
// need, for the CLI and the web console (coordinator/console) alike:
//
//	POST /v1/signup          no key: a new client party and its API key, with the deposit reference
//	GET  /v1/me              any key: who the key acts for, and a client's funds
//	GET  /v1/market          any key: best ask, going rate (median recent trade), the book's cap
//	GET  /v1/ledger          operator: every account's balances and whether the invariants hold
//	GET  /v1/parties         operator: every party the ledger knows, with its balances by kind
//	GET  /v1/payouts/runs    operator: the payout runs, newest first
//	GET  /v1/disputes        operator: the jobs that were disputed, newest first

// Sign-up limits.
const (
	// SignupsPerMinute bounds self-serve sign-ups (over the whole
	// coordinator): each writes a key record, so an unbounded stream would
	// fill the store.
	SignupsPerMinute = 30
	// maxSignupBody bounds the sign-up request body.
	maxSignupBody = 1024
)

// Signup configures self-serve sign-up (WithSignup).
type Signup struct {
	// Instructions tell a new client where to send money: the operator's
	// bank account, say, to which a transfer quoting the reference is
	// recorded as a deposit (POST /v1/deposits with that bank_ref). Empty:
	// "ask the operator".
	Instructions string
}

// WithSignup enables POST /v1/signup (off by default: it answers 403).
func WithSignup(cfg Signup) Option {
	return func(s *Server) { s.signup = &signupState{cfg: cfg} }
}

// signupState is the Server's sign-up configuration and rate window.
type signupState struct {
	cfg         Signup
	mu          sync.Mutex
	windowStart time.Time
	count       int
}

// allow admits one sign-up in the current minute's window.
func (st *signupState) allow(now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if now.Sub(st.windowStart) >= time.Minute || now.Before(st.windowStart) {
		st.windowStart, st.count = now, 0
	}
	if st.count >= SignupsPerMinute {
		return false
	}
	st.count++
	return true
}

// SignupRequest is POST /v1/signup: nothing is required; the body may be
// empty or {}.
type SignupRequest struct{}

// Funding says how a client puts money in: instructions and the reference
// its transfers quote, so that the operator records them to its account.
type Funding struct {
	Account      string `json:"account"`
	Reference    string `json:"reference"`
	Instructions string `json:"instructions"`
}

// SignupResult is the answer to POST /v1/signup: the key, shown once.
type SignupResult struct {
	Key     string  `json:"key"`
	KeyID   string  `json:"key_id"`
	Subject string  `json:"subject"`
	Role    string  `json:"role"`
	Funding Funding `json:"funding"`
}

// FundingReference is the reference a client quotes on its transfers
// (the bank_ref prefix the operator records its deposits under).
func FundingReference(client string) string { return "BELUGA-" + strings.ToUpper(client) }

// funding is the funding block of client.
func (s *Server) funding(client string) Funding {
	f := Funding{Account: service.AccountRef{Kind: service.KindClientFunds, Party: client}.String(), Reference: FundingReference(client)}
	if s.signup != nil {
		f.Instructions = s.signup.cfg.Instructions
	}
	if f.Instructions == "" {
		f.Instructions = "Ask the operator of this coordinator where to send funds; quote the reference so the deposit is recorded to your account."
	}
	return f
}

var partyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newClientID is "c" and 13 random base32 letters and digits (65 bits):
// a party ID nobody chose.
func newClientID() (string, error) {
	var b [9]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "c" + partyEncoding.EncodeToString(b[:])[:service.MaxPartyIDLen-1], nil
}

// signupRoute is POST /v1/signup: no key, no Idempotency-Key (a repeated
// sign-up is a second, unfunded client), a body of nothing or {}.
func (s *Server) signupRoute(w http.ResponseWriter, r *http.Request) {
	if s.signup == nil {
		writeErr(w, http.StatusForbidden, "signup_closed", "this coordinator does not take sign-ups: ask its operator for an API key")
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if len(body) > maxSignupBody {
		writeErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("a sign-up body is at most %d bytes", maxSignupBody))
		return
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		if err := decodeStrict(body, &SignupRequest{}); err != nil {
			write(w, fromErr(err))
			return
		}
	}
	if !s.signup.allow(time.Now()) {
		w.Header().Set("Retry-After", "60")
		writeErr(w, http.StatusTooManyRequests, "rate_limited", "too many sign-ups this minute; try again in a minute")
		return
	}
	id, err := newClientID()
	if err != nil {
		write(w, fromErr(err))
		return
	}
	key, rec, err := s.keys.Issue(r.Context(), id, auth.RoleClient, 0)
	if err != nil {
		write(w, fromErr(err))
		return
	}
	s.log.InfoContext(r.Context(), "client signed up", "subject", id, "key_id", rec.ID)
	write(w, jsonResponse(http.StatusCreated, SignupResult{Key: key, KeyID: rec.ID, Subject: id, Role: auth.RoleClient.String(), Funding: s.funding(id)}))
}

// Me is GET /v1/me.
type Me struct {
	Role    string `json:"role"`
	Subject string `json:"subject"`
	KeyID   string `json:"key_id"`
	// Funds (clients only): available and held (escrowed in jobs under
	// way) micro-dollars of the client's account, and how to add to it.
	FundsMicroUSD     *int64   `json:"funds_micro_usd,omitempty"`
	FundsHeldMicroUSD *int64   `json:"funds_held_micro_usd,omitempty"`
	Funding           *Funding `json:"funding,omitempty"`
}

func (s *Server) me(r *http.Request, p auth.Principal) response {
	m := Me{Role: p.Role.String(), Subject: p.Subject, KeyID: p.KeyID}
	if p.Role == auth.RoleClient {
		b, err := s.accountBalances(r.Context(), service.AccountRef{Kind: service.KindClientFunds, Party: p.Subject})
		if err != nil {
			return fromErr(err)
		}
		avail, held := b.AvailableMicroUSD(), b.DebitsPendingMicroUSD
		f := s.funding(p.Subject)
		m.FundsMicroUSD, m.FundsHeldMicroUSD, m.Funding = &avail, &held, &f
	}
	return jsonResponse(http.StatusOK, m)
}

// accountBalances are ref's balances, zero for an account not opened yet.
func (s *Server) accountBalances(ctx context.Context, ref service.AccountRef) (ledger.Balances, error) {
	a, err := s.svc.Ledger().Account(ctx, ref.ID())
	if errors.Is(err, ledger.ErrAccountNotFound) {
		return ledger.Balances{}, nil
	}
	return a.Balances, err
}

func (s *Server) market(r *http.Request, _ auth.Principal) response {
	m, err := s.svc.Market(r.Context())
	if err != nil {
		return fromErr(err)
	}
	return jsonResponse(http.StatusOK, m)
}

// KindTotal sums the accounts of one kind.
type KindTotal struct {
	Kind            service.Kind `json:"kind"`
	Accounts        int          `json:"accounts"`
	BalanceMicroUSD int64        `json:"balance_micro_usd"`
	PendingMicroUSD int64        `json:"pending_micro_usd"`
}

// Invariants says whether the ledger's invariants held when checked.
type Invariants struct {
	OK        bool      `json:"ok"`
	Violation string    `json:"violation,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// LedgerView is GET /v1/ledger: totals by kind, a page of accounts (in
// account order) and the invariants' status.
type LedgerView struct {
	Totals     []KindTotal              `json:"totals"`
	Invariants Invariants               `json:"invariants"`
	Items      []service.AccountBalance `json:"items"`
	NextCursor string                   `json:"next_cursor,omitempty"`
}

func (s *Server) ledgerView(r *http.Request, p auth.Principal) response {
	if err := p.Require(auth.RoleOperator); err != nil {
		return fromErr(err)
	}
	pg, err := ParsePage(r.URL.Query())
	if err != nil {
		return fromErr(err)
	}
	accts, err := s.svc.Accounts(r.Context())
	if err != nil {
		return fromErr(err)
	}
	v := LedgerView{Invariants: Invariants{OK: true, CheckedAt: s.now().UTC()}}
	byKind := map[service.Kind]*KindTotal{}
	for _, a := range accts {
		t := byKind[a.Kind]
		if t == nil {
			t = &KindTotal{Kind: a.Kind}
			byKind[a.Kind] = t
		}
		t.Accounts++
		t.BalanceMicroUSD += a.BalanceMicroUSD
		t.PendingMicroUSD += a.PendingMicroUSD
	}
	for _, t := range byKind {
		v.Totals = append(v.Totals, *t)
	}
	slices.SortFunc(v.Totals, func(a, b KindTotal) int { return strings.Compare(string(a.Kind), string(b.Kind)) })
	if err := s.svc.CheckLedger(r.Context()); err != nil {
		if r.Context().Err() != nil {
			return fromErr(err)
		}
		v.Invariants = Invariants{OK: false, Violation: err.Error(), CheckedAt: s.now().UTC()}
		s.log.ErrorContext(r.Context(), "ledger invariants violated", "err", err)
	}
	slices.SortFunc(accts, func(a, b service.AccountBalance) int { return strings.Compare(a.Account, b.Account) })
	v.Items, v.NextCursor = PageItems(accts, func(a service.AccountBalance) string { return a.Account }, pg)
	if v.Items == nil {
		v.Items = []service.AccountBalance{}
	}
	return jsonResponse(http.StatusOK, v)
}

// PartyView is one party in GET /v1/parties: its roles and its balances
// by account kind (micro-dollars, credits − debits posted).
type PartyView struct {
	Party    string                 `json:"party"`
	Roles    []string               `json:"roles"`
	Balances map[service.Kind]int64 `json:"balances_micro_usd"`
}

var partyRoles = map[service.Kind]string{
	service.KindClientFunds: "client", service.KindSolverBond: "solver", service.KindSolverEarnings: "solver",
	service.KindVerifierBond: "verifier", service.KindVerifierEarnings: "verifier",
}

func (s *Server) listParties(r *http.Request, p auth.Principal) response {
	if err := p.Require(auth.RoleOperator); err != nil {
		return fromErr(err)
	}
	pg, err := ParsePage(r.URL.Query())
	if err != nil {
		return fromErr(err)
	}
	accts, err := s.svc.Accounts(r.Context())
	if err != nil {
		return fromErr(err)
	}
	byParty := map[string]*PartyView{}
	for _, a := range accts {
		role, ok := partyRoles[a.Kind]
		if !ok || a.Party == "" {
			continue
		}
		v := byParty[a.Party]
		if v == nil {
			v = &PartyView{Party: a.Party, Balances: map[service.Kind]int64{}}
			byParty[a.Party] = v
		}
		if !slices.Contains(v.Roles, role) {
			v.Roles = append(v.Roles, role)
		}
		v.Balances[a.Kind] = a.BalanceMicroUSD
	}
	items := make([]PartyView, 0, len(byParty))
	for _, v := range byParty {
		slices.Sort(v.Roles)
		items = append(items, *v)
	}
	slices.SortFunc(items, func(a, b PartyView) int { return strings.Compare(a.Party, b.Party) })
	page, next := PageItems(items, func(v PartyView) string { return v.Party }, pg)
	if page == nil {
		page = []PartyView{}
	}
	return jsonResponse(http.StatusOK, List[PartyView]{Items: page, NextCursor: next})
}

// RunView is one payout run in GET /v1/payouts/runs.
type RunView struct {
	Period     string             `json:"period"`
	CreatedAt  time.Time          `json:"created_at"`
	Posted     bool               `json:"posted"`
	TotalCents int64              `json:"total_cents"`
	Payees     []service.RunPayee `json:"payees"`
	Skipped    []service.RunSkip  `json:"skipped"`
	// ACH is the path of the run's NACHA file, when it has one.
	ACH string `json:"ach,omitempty"`
}

func (s *Server) listRuns(r *http.Request, p auth.Principal) response {
	if err := p.Require(auth.RoleOperator); err != nil {
		return fromErr(err)
	}
	pg, err := ParsePage(r.URL.Query())
	if err != nil {
		return fromErr(err)
	}
	runs, err := s.svc.PayoutRuns(r.Context())
	if err != nil {
		return fromErr(err)
	}
	items := make([]RunView, len(runs))
	for i, run := range runs {
		v := RunView{Period: run.Period, CreatedAt: run.CreatedAt, Posted: run.Posted, TotalCents: run.TotalCents, Payees: run.Payees, Skipped: run.Skipped}
		if v.Payees == nil {
			v.Payees = []service.RunPayee{}
		}
		if v.Skipped == nil {
			v.Skipped = []service.RunSkip{}
		}
		if run.Posted && len(run.Payees) > 0 {
			v.ACH = "/v1/payouts/runs/" + run.Period + "/ach"
		}
		items[i] = v
	}
	// Newest first: the inverted period orders the keys.
	key := func(v RunView) string { return invert(v.Period) }
	page, next := PageItems(items, key, pg)
	if page == nil {
		page = []RunView{}
	}
	return jsonResponse(http.StatusOK, List[RunView]{Items: page, NextCursor: next})
}

// invert maps a YYYY-MM-DD period to a key that sorts newest first.
func invert(period string) string {
	b := []byte(period)
	for i, c := range b {
		if c >= '0' && c <= '9' {
			b[i] = '9' - c + '0'
		}
	}
	return string(b)
}

// DisputeView is one disputed job in GET /v1/disputes.
type DisputeView struct {
	JobID        string    `json:"job_id"`
	Client       string    `json:"client"`
	State        string    `json:"state"`
	VerifierID   string    `json:"verifier_id"`
	SolverID     string    `json:"solver_id"`
	BondMicroUSD int64     `json:"bond_micro_usd"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func (s *Server) listDisputes(r *http.Request, p auth.Principal) response {
	if err := p.Require(auth.RoleOperator); err != nil {
		return fromErr(err)
	}
	pg, err := ParsePage(r.URL.Query())
	if err != nil {
		return fromErr(err)
	}
	jobs, err := s.svc.Jobs(r.Context(), "")
	if err != nil {
		return fromErr(err)
	}
	var items []DisputeView
	for _, j := range jobs {
		if j.Dispute == nil {
			continue
		}
		v := DisputeView{JobID: j.ID, Client: j.ClientID, State: j.State.String(), VerifierID: j.Dispute.VerifierID,
			SolverID: j.Dispute.SolverID, BondMicroUSD: j.Dispute.BondMicroUSD}
		if n := len(j.History); n > 0 {
			v.UpdatedAt = j.History[n-1].At
		}
		items = append(items, v)
	}
	key := func(v DisputeView) string { return listKey(JobSummary{ID: v.JobID, PostedAt: v.UpdatedAt}) }
	slices.SortFunc(items, func(a, b DisputeView) int { return strings.Compare(key(a), key(b)) })
	page, next := PageItems(items, key, pg)
	if page == nil {
		page = []DisputeView{}
	}
	return jsonResponse(http.StatusOK, List[DisputeView]{Items: page, NextCursor: next})
}
