package api

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/strictjson"
)

// MaxBodyBytes bounds a request body: a spec (spec.MaxSpecBytes) and its
// envelope.
const MaxBodyBytes = spec.MaxSpecBytes + 4096

var (
	// errBadRequest marks a body that is not a well-formed request.
	errBadRequest = errors.New("bad request")
	// errInvalidSpec marks a job whose spec does not decode or validate
	// (spec.Decode); the message says which rule it breaks.
	errInvalidSpec = errors.New("invalid spec")
)

// decodeStrict decodes exactly one JSON value into v by spec/strictjson's
// rules: keys match v's fields exactly (case included) and appear once,
// fields without omitempty are required, no value is null, integers fit
// their field exactly (no fraction, exponent or overflow), and the bytes
// are valid UTF-8. One body thus has one reading, the one the client's
// JSON library most likely meant.
func decodeStrict(body []byte, v any) error {
	if len(body) > MaxBodyBytes {
		return fmt.Errorf("%w: body over %d bytes", errBadRequest, MaxBodyBytes)
	}
	if err := strictjson.Decode(body, v); err != nil {
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return nil
}

func positive(name string, v int64) error {
	if v <= 0 {
		return fmt.Errorf("%w: %s must be a positive integer number of micro-dollars", errBadRequest, name)
	}
	return nil
}

// DepositRequest is POST /v1/deposits.
type DepositRequest struct {
	BankRef string `json:"bank_ref"`
	// Account is "client:<id>", "solver_bond:<id>" or "verifier_bond:<id>".
	Account        string `json:"account"`
	AmountMicroUSD int64  `json:"amount_micro_usd"`
}

// DecodeDeposit parses and checks a deposit request.
func DecodeDeposit(body []byte) (service.Deposit, error) {
	var r DepositRequest
	if err := decodeStrict(body, &r); err != nil {
		return service.Deposit{}, err
	}
	if err := positive("amount_micro_usd", r.AmountMicroUSD); err != nil {
		return service.Deposit{}, err
	}
	ref, err := service.ParseAccountRef(r.Account)
	if err != nil {
		return service.Deposit{}, fmt.Errorf("%w: account: %v", errBadRequest, err)
	}
	if r.BankRef == "" || len(r.BankRef) > service.MaxBankRefLen {
		return service.Deposit{}, fmt.Errorf("%w: bank_ref must have 1..%d characters", errBadRequest, service.MaxBankRefLen)
	}
	return service.Deposit{BankRef: r.BankRef, Account: ref, AmountMicroUSD: r.AmountMicroUSD}, nil
}

// JobRequest is POST /v1/jobs.
type JobRequest struct {
	// Spec is the job spec object (spec.Decode's JSON form).
	Spec json.RawMessage `json:"spec"`
	// MaxPriceNanoUSDPerCU caps the price, in nano-dollars per compute
	// unit; omitted or 0 takes the market price.
	MaxPriceNanoUSDPerCU int64 `json:"max_price_nano_usd_per_cu,omitempty"`
}

// jobEnvelope is JobRequest as strictjson checks it: the spec an object
// (strictjson reads json.RawMessage as an array of bytes), whose own rules
// spec.Decode then applies.
type jobEnvelope struct {
	Spec                 map[string]any `json:"spec"`
	MaxPriceNanoUSDPerCU int64          `json:"max_price_nano_usd_per_cu,omitempty"`
}

// legacyPriceField is the job request's price field before prices moved
// to nano-dollars; a body that still sends it gets an error saying so.
const legacyPriceField = "max_price_micro_usd_per_cu"

// DecodeJob parses a job request; the spec is decoded and validated.
func DecodeJob(body []byte) (JobRequest, *spec.Spec, error) {
	var keys map[string]json.RawMessage
	if json.Unmarshal(body, &keys) == nil {
		if _, old := keys[legacyPriceField]; old {
			return JobRequest{}, nil, fmt.Errorf("%w: %s is no longer accepted: prices are nano-dollars per compute unit now; send max_price_nano_usd_per_cu (1 micro-dollar = 1000 nano-dollars)", errBadRequest, legacyPriceField)
		}
	}
	if err := decodeStrict(body, new(jobEnvelope)); err != nil {
		return JobRequest{}, nil, err
	}
	// The body is now known to be one object with exactly these keys, so
	// encoding/json reads it the same way, the spec's bytes as they came.
	var r JobRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return JobRequest{}, nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if r.MaxPriceNanoUSDPerCU < 0 {
		return JobRequest{}, nil, fmt.Errorf("%w: max_price_nano_usd_per_cu is negative", errBadRequest)
	}
	s, err := spec.Decode(r.Spec)
	if err == nil {
		err = s.CheckTrainable() // GPT-2 blocks (SPEC.md §22) are served, not trained
	}
	if err != nil {
		return JobRequest{}, nil, fmt.Errorf("%w: %w", errInvalidSpec, err)
	}
	return r, s, nil
}

// PayoutRunRequest is POST /v1/payouts/runs.
type PayoutRunRequest struct {
	Period string `json:"period"` // YYYY-MM-DD, a run day
}

// DecodePayoutRun parses a payout run request.
func DecodePayoutRun(body []byte) (PayoutRunRequest, error) {
	var r PayoutRunRequest
	if err := decodeStrict(body, &r); err != nil {
		return r, err
	}
	if len(r.Period) != 10 {
		return r, fmt.Errorf("%w: period must be YYYY-MM-DD", errBadRequest)
	}
	return r, nil
}

// KeyRequest is POST /v1/keys.
type KeyRequest struct {
	Subject string `json:"subject"`
	Role    string `json:"role"`
}

// DecodeKey parses a key request.
func DecodeKey(body []byte) (KeyRequest, error) {
	var r KeyRequest
	if err := decodeStrict(body, &r); err != nil {
		return r, err
	}
	if err := service.CheckPartyID(r.Subject); err != nil {
		return r, fmt.Errorf("%w: subject: %v", errBadRequest, err)
	}
	if _, err := auth.ParseRole(r.Role); err != nil {
		return r, fmt.Errorf("%w: role: %v", errBadRequest, err)
	}
	return r, nil
}
