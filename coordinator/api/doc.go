// Package api is the coordinator's HTTP JSON API (net/http pattern
// routing) over coordinator/service.
//
// Clients authenticate with "Authorization: Bearer <api key>"; keys are
// stored hashed (coordinator/auth). Every POST needs an Idempotency-Key
// header: the first response to a (key holder, idempotency key) pair is
// stored, a replay with the same body gets the same status and body, and a
// replay with a different body gets 409.
//
// # Parsing outside bytes
//
// Bodies are limited (MaxBodyBytes) before reading and decoded by
// spec/strictjson's rules, so one body has one reading: keys match
// exactly (case included) and appear once, every field is required unless
// documented optional, no value is null, the body is one JSON value of
// valid UTF-8; amounts are JSON integers in micro-dollars (floats,
// exponents, negatives, zero and values past int64 are refused). A
// rejected request gets a 4xx with a JSON error body {"error": {"code",
// "message"}} whose code is stable (see openapi.yaml) and changes nothing:
// the decoders run before any service call, and the service validates
// everything before it moves money. The decoders are fuzzed
// (FuzzDecodeDeposit, FuzzDecodeJob, FuzzDecodePayoutRun, FuzzDecodeKey),
// checking that whatever they accept obeys those rules.
package api
