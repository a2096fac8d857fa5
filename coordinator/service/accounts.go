package service

import (
	"context"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/spec"
)

// Kind names an account's purpose; with a party it derives the account ID.
type Kind string

// Account kinds. Per-party kinds need a party ID; platform kinds take none;
// escrow takes a job ID.
const (
	KindClientFunds      Kind = "client"
	KindSolverBond       Kind = "solver_bond"
	KindVerifierBond     Kind = "verifier_bond"
	KindSolverEarnings   Kind = "solver_earnings"
	KindVerifierEarnings Kind = "verifier_earnings"
	KindEscrow           Kind = "escrow"
	KindPlatformFees     Kind = "platform_fees"
	KindPayoutsInTransit Kind = "payouts_in_transit"
	KindBankClearing     Kind = "bank_clearing"
)

var kindCodes = map[Kind]ledger.AccountCode{
	KindClientFunds:      ledger.CodeClientFunds,
	KindSolverBond:       ledger.CodeSolverBond,
	KindVerifierBond:     ledger.CodeVerifierBond,
	KindSolverEarnings:   ledger.CodeSolverEarnings,
	KindVerifierEarnings: ledger.CodeVerifierEarnings,
	KindEscrow:           ledger.CodeJobEscrow,
	KindPlatformFees:     ledger.CodePlatformFees,
	KindPayoutsInTransit: ledger.CodePayoutsInTransit,
	KindBankClearing:     ledger.CodeBankClearing,
}

func (k Kind) platform() bool {
	return k == KindPlatformFees || k == KindPayoutsInTransit || k == KindBankClearing
}

// AccountRef names an account by purpose: kind and party (client, solver
// or verifier ID, or job ID for escrow; empty for platform accounts).
type AccountRef struct {
	Kind  Kind
	Party string
}

// String is "kind:party", or "kind" for platform accounts.
func (r AccountRef) String() string {
	if r.Party == "" {
		return string(r.Kind)
	}
	return string(r.Kind) + ":" + r.Party
}

// ID is the ledger account ID.
func (r AccountRef) ID() ledger.AccountID { return ledger.DeriveAccountID(string(r.Kind), r.Party) }

// Validate checks the kind and the party ID.
func (r AccountRef) Validate() error {
	if _, ok := kindCodes[r.Kind]; !ok {
		return fmt.Errorf("%w: unknown account kind %q", ErrInvalid, r.Kind)
	}
	switch {
	case r.Kind.platform():
		if r.Party != "" {
			return fmt.Errorf("%w: platform account %s takes no party", ErrInvalid, r.Kind)
		}
		return nil
	case r.Kind == KindEscrow:
		if _, err := spec.ParseJobID(r.Party); err != nil {
			return fmt.Errorf("%w: escrow needs a job id: %v", ErrInvalid, err)
		}
		return nil
	}
	return CheckPartyID(r.Party)
}

// ParseAccountRef parses "kind:party" or a platform "kind".
func ParseAccountRef(s string) (AccountRef, error) {
	k, p, _ := strings.Cut(s, ":")
	r := AccountRef{Kind: Kind(k), Party: p}
	return r, r.Validate()
}

// MaxPartyIDLen bounds party IDs: a payee ID in an ACH entry is a one-letter
// role prefix and the party ID, at most 15 characters.
const MaxPartyIDLen = 14

// CheckPartyID accepts 1..MaxPartyIDLen characters of [A-Za-z0-9._-].
func CheckPartyID(id string) error {
	if id == "" || len(id) > MaxPartyIDLen {
		return fmt.Errorf("%w: party id length %d not in 1..%d", ErrInvalid, len(id), MaxPartyIDLen)
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: party id has character %q", ErrInvalid, c)
		}
	}
	return nil
}

// payeeID is the ACH payee ID of an earnings account.
func payeeID(r AccountRef) string {
	if r.Kind == KindSolverEarnings {
		return "S" + r.Party
	}
	return "V" + r.Party
}

// account is the ledger account for ref (ref must be valid).
func account(r AccountRef) ledger.Account {
	a := ledger.Account{ID: r.ID(), Ledger: ledger.LedgerUSD, Code: kindCodes[r.Kind]}
	if r.Kind != KindBankClearing {
		a.Flags = ledger.DebitsMustNotExceedCredits
	}
	copy(a.UserData[:], r.Party)
	return a
}

// ensureAccounts creates the accounts (idempotently), remembering which
// exist so that hot paths skip the call.
func (s *Service) ensureAccounts(ctx context.Context, refs ...AccountRef) error {
	var todo []ledger.Account
	for _, r := range refs {
		if !s.known[r.ID()] {
			todo = append(todo, account(r))
		}
	}
	if len(todo) == 0 {
		return nil
	}
	res, err := s.led.CreateAccounts(ctx, todo)
	if err != nil {
		return fmt.Errorf("create accounts: %w", ledgerError(err))
	}
	for i, r := range res {
		if r.Err != nil {
			return fmt.Errorf("%w: create account %s: %w", ErrLedger, todo[i].ID, r.Err)
		}
		s.known[todo[i].ID] = true
	}
	return nil
}

// Transfer codes: job transfers use the lifecycle action's number.
const (
	CodeDeposit uint16 = 100
	CodePayout  uint16 = 200
)

// CodeName names a transfer code for statements.
func CodeName(code uint16) string {
	switch code {
	case CodeDeposit:
		return "deposit"
	case CodePayout:
		return "payout"
	}
	return lifecycle.Action(code).String()
}

// jobTransferID derives the ID of a job transfer from the job, the
// transition's sequence number, the action and a party (or sub-purpose).
func jobTransferID(job string, seq uint64, a lifecycle.Action, party string) ledger.TransferID {
	return ledger.DeriveTransferID("job", job, strconv.FormatUint(seq, 10), a.String(), party)
}

// MACsPerCU is the size of a compute unit: 10^12 integer
// multiply-accumulates, counted from the spec, never measured, so that
// every machine agrees on a job's size.
const MACsPerCU = 1_000_000_000_000

// DataMACsPerByte prices a job's data: each byte of spec.Data.Bytes()
// (Σ count × (features + 5) over the training and test splits, what
// spec.MaxDatasetBytes bounds) counts as 2^10 multiply-accumulates.
//
// A solver fetches or generates every byte, hashes it into the commitment
// (SPEC.md §6.4) and holds it for the whole job, however few steps it
// trains. On the reference machine of BENCHMARKS.md (one core trains at
// ≈74 GMAC/s) 2^10 MACs are ≈14 ns of a core: generating a synthetic
// byte takes ≈4 ns, hashing it ≈1 ns, which leaves ≈9 ns, receiving it at
// ≈110 MB/s. The largest dataset, 2^28 bytes, adds 2^38 MACs ≈ 0.27 CU.
const DataMACsPerByte = 1 << 10

// ComputeUnits counts a spec's compute units:
//
//	CU = max(1, ⌈(MACs per step × steps + DataMACsPerByte × Data.Bytes()) / MACsPerCU⌉)
//
// MACs per step are those of internal/bench.MACs: forward and weight
// gradient for every linear layer, plus the input gradient for all but
// the first. The data is counted once, for the solver: price × CU pays the
// solver alone (settlement pays it pro rata by committed steps), while
// verifiers, who load the same data, are paid per audit from the audit
// budget, and the referee is the coordinator. Integer arithmetic only,
// without overflow (math/big); a spec whose data exceeds
// spec.MaxDatasetBytes, or whose count does not fit an int64, is refused.
func ComputeUnits(s *spec.Spec) (int64, error) {
	per := new(big.Int)
	if s.IsGPT() {
		c, err := s.GPT()
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		per.SetInt64(c.StepMACs()) // < 2^63: N ≤ 2^20, D ≤ 2^12, F ≤ 2^14, L ≤ 64
	}
	for _, l := range s.Plan().Linear {
		m := new(big.Int).Mul(big.NewInt(int64(l.In)), big.NewInt(int64(l.Out)))
		m.Mul(m, big.NewInt(int64(s.BatchSize)))
		k := int64(2)
		if !l.First {
			k = 3
		}
		per.Add(per, m.Mul(m, big.NewInt(k)))
	}
	total := per.Mul(per, big.NewInt(s.Steps))
	data, err := dataBytes(&s.Data)
	if err != nil {
		return 0, err
	}
	total.Add(total, big.NewInt(data*DataMACsPerByte)) // ≤ 2^38
	unit := big.NewInt(MACsPerCU)
	total.Add(total, new(big.Int).Sub(unit, big.NewInt(1)))
	total.Quo(total, unit)
	if !total.IsInt64() {
		return 0, fmt.Errorf("%w: compute units overflow", ErrInvalid)
	}
	return max(total.Int64(), 1), nil
}

// dataBytes is d.Bytes(), computed without overflow for any d (validated
// or not) and refused above spec.MaxDatasetBytes.
func dataBytes(d *spec.Data) (int64, error) {
	b := new(big.Int)
	for _, r := range []*spec.DatasetRef{&d.Train, d.Test} {
		if r == nil {
			continue
		}
		if r.Count < 0 || r.Features < 0 {
			return 0, fmt.Errorf("%w: negative dataset size", ErrInvalid)
		}
		b.Add(b, new(big.Int).Mul(big.NewInt(int64(r.Count)), big.NewInt(int64(r.Features)+5)))
	}
	if d.Text != nil {
		if d.Text.Bytes < 0 {
			return 0, fmt.Errorf("%w: negative text size", ErrInvalid)
		}
		b.Add(b, big.NewInt(int64(d.Text.Bytes)))
	}
	if b.Cmp(big.NewInt(spec.MaxDatasetBytes)) > 0 {
		return 0, fmt.Errorf("%w: the data takes %s bytes, more than %d", ErrInvalid, b, spec.MaxDatasetBytes)
	}
	return b.Int64(), nil
}

// mulPPM returns x × ppm / 10^6, rounded down (0 ≤ ppm ≤ 10^6, x ≥ 0).
func mulPPM(x, ppm int64) int64 {
	hi, lo := bits.Mul64(uint64(x), uint64(ppm))
	q, _ := bits.Div64(hi, lo, 1_000_000)
	return int64(q)
}

// addAll sums amounts, or fails on overflow.
func addAll(xs ...int64) (int64, error) {
	var s int64
	for _, x := range xs {
		if x < 0 || s > (1<<63-1)-x {
			return 0, fmt.Errorf("%w: amount overflow", ErrInvalid)
		}
		s += x
	}
	return s, nil
}
