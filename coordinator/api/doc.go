// Package api is the coordinator's HTTP JSON API (net/http pattern
// routing) over coordinator/service.
//
// Clients authenticate with "Authorization: Bearer <api key>"; keys are
// stored hashed (coordinator/auth). Every POST needs an Idempotency-Key
// header. The first successful (2xx) response to a (key holder, route,
// idempotency key) is stored for DefaultIdempotencyWindow (24 h; see
// WithIdempotencyWindow): within it a replay with the same body gets the
// same status and body without running again, and a replay with a
// different body gets 409. A request that failed stores nothing (it
// changed nothing), so its retry runs afresh: a job refused for want of
// funds posts once the client has topped up.
//
// Routes are method-and-path patterns: a known path with another method
// gets 405 with an Allow header, an unknown path 404, both as problem
// details.
//
// # Conventions
//
// Every error is an RFC 9457 problem (problem.go; Content-Type
// application/problem+json): type (ProblemTypeBase + code), title, status,
// detail (in the client's terms: no Go type names, package prefixes or
// ledger account IDs), instance (the request's path) and the extension
// member code, the stable name clients branch on. List endpoints page with
// limit and an opaque cursor and answer next_cursor (page.go: ParsePage,
// PageItems, List). GET /healthz (no key) is liveness and readiness
// (health.go); GET /metrics (operator key) serves Prometheus metrics
// (metrics.go). Each request is one "request" log event, the access log:
// method, path, route, status, bytes, duration, remote, principal, code.
// openapi_test.go holds the document to the routes: every registered
// route is documented with its method, and every status a probe provokes
// is listed for its operation.
//
// # Parsing outside bytes
//
// Bodies are limited (MaxBodyBytes) before reading and decoded by
// spec/strictjson's rules, so one body has one reading: keys match
// exactly (case included) and appear once, every field is required unless
// documented optional, no value is null, the body is one JSON value of
// valid UTF-8; amounts are JSON integers in micro-dollars (floats,
// exponents, negatives, zero and values past int64 are refused). A
// rejected request gets a 4xx problem whose code is stable (see
// openapi.yaml) and changes nothing:
// the decoders run before any service call, and the service validates
// everything before it moves money. The decoders are fuzzed
// (FuzzDecodeDeposit, FuzzDecodeJob, FuzzDecodePayoutRun, FuzzDecodeKey),
// checking that whatever they accept obeys those rules.
//
// # Final weights
//
// GET /v1/jobs/{id}/weights (client.go) serves a committed job's final
// state. The coordinator fetches it on request from the solver that
// committed the trace, over the checkpoint exchange (protocol/net/exchange)
// with a grant it issues to itself, and re-serves it as a weights file
// (client_weights.go). Why this way: the solver is usually behind NAT and
// never talks to the client, while the client already reaches the
// coordinator over HTTP; the exchange already checks every chunk against
// the committed final digest, so a solver cannot serve other weights; and
// the coordinator keeps no copy (the fetch is bounded by
// MaxWeightFetches at a time). The client does not have to trust the
// coordinator's relay either: `beluga job download` recomputes the state
// digest (protocol/core/commit) and compares it with the committed final
// digest (progress.final_digest of GET /v1/jobs/{id}, the trace's last
// entry), saving nothing on a mismatch. The solver keeps a finished run
// for its RunTTL; later, or when it is offline, the download answers 503.
//
// Confidential jobs are refused (409 confidential): their state must not
// leave the solver except to its client, and this path passes through the
// coordinator in the clear. Doing it properly needs the solver to encrypt
// the state to a key of the client's, which the protocol does not carry
// yet.
package api
