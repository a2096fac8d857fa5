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
// Bodies are limited (MaxBodyBytes) before reading, decoded with unknown
// fields refused and exactly one JSON value allowed; amounts are JSON
// integers in micro-dollars (floats, exponents, negatives, zero and values
// past int64 are refused). A rejected request gets a 4xx with a JSON
// error body {"error": {"code", "message"}} and changes nothing: the
// decoders run before any service call, and the service validates
// everything before it moves money. The decoders are fuzzed
// (FuzzDecodeDeposit, FuzzDecodeJob, FuzzDecodePayoutRun, FuzzDecodeKey).
package api
