// Package gateway is the coordinator's OpenAI-compatible inference API:
// GET /v1/models, POST /v1/completions and /v1/chat/completions (with
// stream: true as server-sent events ending in `data: [DONE]`), and
// GET /v1/receipts/{id}, the signed receipt (SPEC.md §21) of a response.
//
// # Why the coordinator serves it
//
// A request is paid from the client's funds in the coordinator's ledger
// and authenticated by the coordinator's API keys, and it is routed over
// the libp2p sessions the coordinator already holds with every solver. A
// separate gateway role would need all three through another API — a
// ledger hold and settlement protocol between two processes, with its own
// failure modes for "billed exactly once" — and would add a hop to every
// streamed byte. Serving from the coordinator keeps the hold, the call
// and the settlement in one process, with the ledger's idempotent
// transfer IDs making every step safe to retry. The gateway is a separate
// package with its own handler, so it can move to its own process later
// behind the same API.
//
// # Billing
//
// Before a request runs, its worst case (prompt tokens at the input price
// plus max_tokens at the output price, rounded up per 1,000) is held from
// the client's funds; after the solver's receipt arrives the hold is
// posted at the actual cost (the rest released) and the solver's share
// paid, once; a request that fails is voided and costs nothing. Tokens
// are bytes (the GPT is byte-level).
//
// # Routing
//
// Solvers announce the models they serve, their slots and their load
// (protocol/net/infer). A request goes to the solver serving the model
// with the most free capacity, then the lowest measured time to first
// byte; a solver that refuses (busy) or dies mid-request is skipped and
// the request retried on another — generation is deterministic, so bytes
// already streamed to the client are regenerated identically and not
// sent twice. With no solver free the answer is 429 with Retry-After.
// Only solvers whose free bond covers the minimum are routed to, and only
// enrolled, bonded verifiers check receipts; a party that lost an
// inference dispute is banned, durably (standing.go).
package gateway
