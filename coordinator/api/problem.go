package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// ProblemTypeBase prefixes a problem's code to make its type URI: the
// type of code "insufficient_funds" is
// "https://beluga.dev/problems/insufficient_funds". The URI names the
// problem (RFC 9457 §3.1.1: a client compares it, it need not fetch it);
// openapi.yaml documents every code.
const ProblemTypeBase = "https://beluga.dev/problems/"

// Problem is an error response: RFC 9457 problem details with the
// extension member code, the stable name of the error that clients branch
// on (the type URI ends with it too). Detail is written for the person
// who made the request; it never holds the coordinator's internal names.
type Problem struct {
	// Type is ProblemTypeBase + Code.
	Type string `json:"type"`
	// Title is the code's summary: the same for every occurrence.
	Title string `json:"title"`
	// Status is the HTTP status.
	Status int `json:"status"`
	// Detail says what went wrong with this request and, where it can,
	// what to do.
	Detail string `json:"detail"`
	// Instance is the path of the request that failed.
	Instance string `json:"instance,omitempty"`
	// Code is the stable error code (openapi.yaml lists them).
	Code string `json:"code"`
}

// problemTitles are the codes' titles; a code missing here gets one made
// from its name.
var problemTitles = map[string]string{
	"invalid_request":          "Invalid request",
	"invalid_spec":             "Invalid job spec",
	"idempotency_key_required": "Idempotency-Key header required",
	"unauthorized":             "Not authenticated",
	"forbidden":                "Not allowed for this key",
	"not_found":                "Not found",
	"method_not_allowed":       "Method not allowed",
	"conflict":                 "Conflicts with an existing record",
	"idempotency_key_reused":   "Idempotency-Key reused with another body",
	"illegal_state":            "Not allowed in the job's state",
	"period_not_due":           "Payout period not over",
	"no_bank_details":          "No bank details",
	"too_large":                "Request body too large",
	"insufficient_funds":       "Insufficient funds",
	"amount_overflow":          "Amount too large",
	"ledger_rejected":          "Ledger refused the request",
	"busy":                     "Busy",
	"unavailable":              "Temporarily unavailable",
	"internal":                 "Internal error",
	"confidential":             "Confidential job",
	"signup_closed":            "Sign-up closed",
	"rate_limited":             "Too many requests",
	"bad_signature":            "Signature refused",
	"replayed":                 "Signed statement already used",
	"already_signed_up":        "Already signed up",
}

// problemTitle is code's title.
func problemTitle(code string) string {
	if t, ok := problemTitles[code]; ok {
		return t
	}
	t := strings.ReplaceAll(code, "_", " ")
	if t == "" {
		return "Error"
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// newProblem is the problem of one error.
func newProblem(status int, code, detail string) *Problem {
	return &Problem{Type: ProblemTypeBase + code, Title: problemTitle(code), Status: status, Detail: detail, Code: code}
}

// errResponse is the problem response of an error the handler states
// itself (msg in user terms).
func errResponse(status int, code, msg string) response {
	p := newProblem(status, code, msg)
	b, _ := json.Marshal(p)
	return response{Status: status, ContentType: ProblemContentType, Body: b, code: code, problem: p}
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	write(w, errResponse(status, code, msg))
}

// write sends r; a problem gets the request's path as its instance.
func write(w http.ResponseWriter, r response) {
	lw, _ := w.(*logWriter)
	if lw != nil {
		lw.code, lw.err = r.code, r.err
		if r.problem != nil && lw.path != "" {
			p := *r.problem
			p.Instance = lw.path
			if b, err := json.Marshal(&p); err == nil {
				r.Body = b
			}
		}
	}
	ct := r.ContentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	if r.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "10")
	}
	w.WriteHeader(r.Status)
	w.Write(r.Body)
}

// errorClass is how the API answers errors wrapping one sentinel.
type errorClass struct {
	err    error
	status int
	code   string
	// message, if set, replaces the error's text (which then says more
	// about the coordinator's insides than a client should read).
	message string
}

// errorClasses are tried in order; the first sentinel the error wraps
// decides. Codes are stable API: clients branch on them.
var errorClasses = []errorClass{
	{err: errInvalidSpec, status: http.StatusBadRequest, code: "invalid_spec"},
	{err: errBadRequest, status: http.StatusBadRequest, code: "invalid_request"},
	{err: service.ErrInvalid, status: http.StatusBadRequest, code: "invalid_request"},
	{err: auth.ErrInvalidRole, status: http.StatusBadRequest, code: "invalid_request"},
	{err: auth.ErrInvalidSubject, status: http.StatusBadRequest, code: "invalid_request"},
	{err: auth.ErrUnauthorized, status: http.StatusUnauthorized, code: "unauthorized", message: "invalid API key"},
	{err: auth.ErrMalformedToken, status: http.StatusUnauthorized, code: "unauthorized", message: "invalid API key"},
	{err: auth.ErrForbidden, status: http.StatusForbidden, code: "forbidden", message: "this key may not do this"},
	{err: service.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{err: service.ErrConflict, status: http.StatusConflict, code: "conflict"},
	{err: service.ErrIllegalState, status: http.StatusConflict, code: "illegal_state"},
	{err: service.ErrPeriodNotDue, status: http.StatusConflict, code: "period_not_due"},
	{err: service.ErrNoBankDetails, status: http.StatusConflict, code: "no_bank_details"},
	{err: service.ErrInsufficientFunds, status: http.StatusUnprocessableEntity, code: "insufficient_funds"},
	{err: service.ErrOverflow, status: http.StatusUnprocessableEntity, code: "amount_overflow"},
	{err: service.ErrLedger, status: http.StatusUnprocessableEntity, code: "ledger_rejected",
		message: "the ledger refused, or disagrees with, what this request needs; nothing changed, and the operator is told"},
	{err: service.ErrBusy, status: http.StatusServiceUnavailable, code: "busy", message: "the order book is full; retry later"},
	{err: service.ErrUnavailable, status: http.StatusServiceUnavailable, code: "unavailable", message: "the ledger is unavailable; retry later"},
}

// fromErr maps an error to a response: the class of the first sentinel it
// wraps, else 500 "internal" with a message that says nothing of the
// cause. The error travels in the response for the log.
func fromErr(err error) response {
	for _, c := range errorClasses {
		if errors.Is(err, c.err) {
			msg := c.message
			if msg == "" {
				msg = userDetail(err)
			}
			if msg == "" {
				msg = problemTitle(c.code)
			}
			r := errResponse(c.status, c.code, msg)
			r.err = err
			return r
		}
	}
	r := errResponse(http.StatusInternalServerError, "internal", "internal error; the operator is told")
	r.err = err
	return r
}

var (
	// packagePrefix is a Go package's "name: " at the start of an error's
	// text or after another's ": ".
	packagePrefix = regexp.MustCompile(`(^|: )(service|auth|payout|spec|market|lifecycle|vault|strictjson|api|node): `)
	// ledgerAccount is a ledger account's internal ID (128 bits in hex),
	// which means nothing to a client.
	ledgerAccount = regexp.MustCompile(`(: )?\baccount [0-9a-f]{32}\b`)
	// goStructField is encoding/json's name for a field.
	goStructField = regexp.MustCompile(`json: cannot unmarshal (\w+) into Go (?:struct field|value) (?:[\w.]*\.)?(\w*)(?: of type ([\w.\[\]*]+))?`)
)

// categories are sentinel texts that repeat what the problem's title
// says; they are dropped from the detail.
var categories = []string{
	errBadRequest.Error(), errInvalidSpec.Error(), "invalid request", "malformed",
}

// userDetail is err's text in the client's terms: what the ledger said
// (its internal account IDs and transfer codes) is cut, package prefixes
// and category words the title already says are dropped, and a type error
// of encoding/json names the JSON field, not the Go struct.
func userDetail(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		field := ute.Field
		if field == "" {
			field = "the body"
		}
		return fmt.Sprintf("%s is a JSON %s, which is not the %s it must be", field, ute.Value, jsonKind(ute.Type.Kind().String()))
	}
	msg := err.Error()
	if i := strings.Index(msg, "ledger: "); i >= 0 {
		msg = msg[:i]
	}
	msg = goStructField.ReplaceAllStringFunc(msg, func(m string) string {
		s := goStructField.FindStringSubmatch(m)
		field := s[2]
		if field == "" {
			field = "a value"
		}
		return fmt.Sprintf("%s is a JSON %s, which is not the %s it must be", field, s[1], jsonKind(s[3]))
	})
	msg = ledgerAccount.ReplaceAllString(msg, "")
	for {
		next := packagePrefix.ReplaceAllString(msg, "$1")
		for _, c := range categories {
			next = strings.ReplaceAll(next, c+": ", "")
		}
		if next == msg {
			break
		}
		msg = next
	}
	msg = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(msg), ":"))
	for _, c := range categories {
		if msg == c {
			return ""
		}
	}
	return msg
}

// jsonKind names a Go type (or kind) as the JSON value it reads.
func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "integer"
	case strings.Contains(goType, "float"):
		return "number"
	case goType == "string":
		return "string"
	case goType == "bool":
		return "boolean"
	case strings.HasPrefix(goType, "[]"), goType == "slice", goType == "array":
		return "array"
	default:
		return "object"
	}
}
