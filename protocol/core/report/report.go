// Package report is the audit report of a job: one typed, self-contained
// document that says what was trained (the spec, hence the job ID and the
// dataset commitment), who trained it, what the solver committed (the
// trace root, with an inclusion proof of the final digest), the beacon and
// how it was drawn, which segments (or, for a confidential job, which zk
// tiles) were sampled and how each replay came out, the verifiers' own
// signatures over their findings, the disputes and slashes, the job's
// ledger movements and the times — signed by the coordinator.
//
// The same types serve every party: a verifier produces Findings (its
// audit, verifier/audit and verifier/daemon) and signs them; they travel
// inside the wire's AuditReport; the coordinator checks the signature
// against the assigned verifier's peer ID, assembles the Report when the
// job ends, signs it and serves it; `beluga audit` prints Findings and
// `beluga report verify|show` checks and renders a Report offline.
//
// # Security
//
// Signatures are ed25519 over a domain tag and the canonical encoding
// (RFC 8785 restricted to integers, Canonical) of the signed object, so
// any re-formatting of the file keeps a report valid and any change of a
// value breaks it. A signer is named by its libp2p peer ID, which embeds
// its public key (PeerID): the coordinator's is the one in the multiaddr
// every solver and verifier dials, so a third party pins it from there
// (Verify's pin). Verify also recomputes, from the report alone, what the
// protocol fixes: the job ID from the spec, the sampled segments or tiles
// from the job ID, trace root and beacon (protocol/core/challenge,
// protocol/core/zkchallenge), the sample count from the audit policy
// (protocol/core/plan), the final digest's inclusion in the trace root,
// each verifier's verdict from its per-segment outcomes, and that the
// job's escrow account nets to zero. It cannot recompute a replay: that a
// segment's replay matched is the verifier's signed word, which a
// third party checks by replaying it (`beluga audit`).
//
// SPEC.md §18 specifies all of it.
package report

import (
	"errors"
	"time"

	"github.com/beluga-compute/beluga/spec"
)

// Version is the report format this package writes and reads.
const Version = 1

// Domain tags prefixed (with a 0x00 byte) to the canonical encoding of
// what is signed.
const (
	ReportDomain   = "beluga/report/v1"
	FindingsDomain = "beluga/findings/v1"
)

// Errors.
var (
	// ErrMalformed: the bytes are not a report (or findings) of this
	// format.
	ErrMalformed = errors.New("report: malformed")
	// ErrBadSignature: a signature does not verify, or its key is not
	// the one its peer ID names or the one pinned.
	ErrBadSignature = errors.New("report: bad signature")
	// ErrInconsistent: the report contradicts itself or the protocol's
	// rules.
	ErrInconsistent = errors.New("report: inconsistent")
)

// Audit methods.
const (
	MethodReplay = "replay" // sampled segments replayed (SPEC.md §15)
	MethodZK     = "zk"     // challenged tiles proven in zero knowledge (§17.3)
)

// Verdicts.
const (
	Pass = "pass"
	Fail = "fail"
)

// Outcomes of one sampled segment or challenged tile.
const (
	// Match: the replay reached the committed digest (a tile: its proof
	// is valid).
	Match = "match"
	// Mismatch: the replay did not, or the solver could not open the
	// segment's start (a tile: no valid proof).
	Mismatch = "mismatch"
	// Skipped: not checked, because an earlier sample already failed.
	Skipped = "skipped"
)

// Signature is an ed25519 signature by the key that PeerID names.
type Signature struct {
	// PeerID is the signer's libp2p peer ID; it embeds PublicKey.
	PeerID string `json:"peer_id"`
	// PublicKey is the ed25519 public key, 64 lower-case hex digits.
	PublicKey string `json:"public_key"`
	// Value is the signature, 128 lower-case hex digits.
	Value string `json:"value"`
}

// Findings are one verifier's audit of a committed run, as it signs them.
type Findings struct {
	JobID string `json:"job_id"`
	// Solver is the audited solver's peer ID (empty for an audit of a
	// local run directory).
	Solver    string `json:"solver,omitempty"`
	TraceRoot string `json:"trace_root"`
	// ZKTraceRoot is a confidential job's zk trace root (§17.1).
	ZKTraceRoot string `json:"zk_trace_root,omitempty"`
	Beacon      string `json:"beacon"`
	Method      string `json:"method"`
	// Population is what was sampled from: the trace's segments (replay)
	// or the run's steps (zk).
	Population int64 `json:"population"`
	// Segments (replay) are the sampled segments in the order drawn
	// (ascending), each with its outcome.
	Segments []SegmentCheck `json:"segments,omitempty"`
	// Tiles (zk) are the challenged tiles in the order drawn.
	Tiles   []TileCheck `json:"tiles,omitempty"`
	Verdict string      `json:"verdict"`
	// StepsChecked counts the steps replayed and found right (zk: the
	// tiles proven).
	StepsChecked int64 `json:"steps_checked"`
	// FirstBadStep is the first step of the failing sample; absent on a
	// pass.
	FirstBadStep *int64 `json:"first_bad_step,omitempty"`
	Reason       string `json:"reason,omitempty"`
	// ConfidencePPM is the probability, in millionths, that this many
	// samples catch a solver cheating on the policy's fraction of steps
	// (worst-case placement; informative).
	ConfidencePPM int64 `json:"confidence_ppm"`
	// ReplayedPPM is the fraction of the run's steps replayed, in
	// millionths (informative).
	ReplayedPPM int64 `json:"replayed_ppm"`
}

// SegmentCheck is one sampled segment: [FromStep, ToStep) in steps.
type SegmentCheck struct {
	Segment  int64  `json:"segment"`
	FromStep int64  `json:"from_step"`
	ToStep   int64  `json:"to_step"`
	Outcome  string `json:"outcome"`
}

// TileCheck is one challenged tile of a confidential job (§17.3).
type TileCheck struct {
	Step    int64  `json:"step"`
	Layer   int64  `json:"layer"`
	Row     int64  `json:"row"`
	Col     int64  `json:"col"`
	Outcome string `json:"outcome"`
	// ProofSHA256 is the hash of the proof bytes checked, if any.
	ProofSHA256 string `json:"proof_sha256,omitempty"`
}

// SignedFindings are findings with their verifier's signature.
type SignedFindings struct {
	Findings  Findings  `json:"findings"`
	Signature Signature `json:"signature"`
}

// Report is the audit report of a job.
type Report struct {
	Version int    `json:"version"`
	JobID   string `json:"job_id"`
	// Spec is the job's spec; JobID is its ID (SPEC.md §4).
	Spec *spec.Spec `json:"spec"`
	// Client is the client's party ID.
	Client       string  `json:"client"`
	Confidential bool    `json:"confidential"`
	Dataset      Dataset `json:"dataset"`
	// Solvers are the solvers that trained the job, in order.
	Solvers []Party `json:"solvers"`
	// Trace is the committed run; absent if the job ended uncommitted.
	Trace *Trace `json:"trace,omitempty"`
	// Beacon is the audit's public randomness; absent if none was drawn.
	Beacon *Beacon `json:"beacon,omitempty"`
	Policy Policy  `json:"policy"`
	// Audits are the verifiers' signed findings, in the order received.
	Audits   []Audit    `json:"audits"`
	Disputes []Dispute  `json:"disputes"`
	Slashes  []Slash    `json:"slashes"`
	Ledger   []Movement `json:"ledger"`
	Outcome  Outcome    `json:"outcome"`
	Times    Times      `json:"times"`
	// Signature is the coordinator's, over everything else.
	Signature *Signature `json:"signature,omitempty"`
}

// Dataset is the data's commitment (the spec's Merkle roots, §6.4).
type Dataset struct {
	Source    string `json:"source"`
	TrainRoot string `json:"train_root"`
	TestRoot  string `json:"test_root,omitempty"`
}

// Party is a solver or verifier: its peer ID and ledger party ID.
type Party struct {
	PeerID string `json:"peer_id"`
	Party  string `json:"party"`
	// Steps a solver committed (its share of the work).
	Steps int64 `json:"steps,omitempty"`
}

// Trace is the run the solver committed (§12).
type Trace struct {
	Root           string `json:"root"`
	Steps          int64  `json:"steps"`
	DigestInterval int64  `json:"digest_interval"`
	Entries        int64  `json:"entries"`
	// FinalDigest is the state digest after the last step, and
	// FinalProof its inclusion proof in Root (entry Entries−1): the
	// digest of the weights the client downloads.
	FinalDigest string   `json:"final_digest"`
	FinalProof  []string `json:"final_proof"`
	ZKRoot      string   `json:"zk_root,omitempty"`
}

// Beacon is the audit's randomness and how it was drawn.
type Beacon struct {
	Value string `json:"value"`
	// Source says who drew it and when in the protocol.
	Source  string    `json:"source"`
	DrawnAt time.Time `json:"drawn_at"`
}

// BeaconSource is how the coordinator draws beacons.
const BeaconSource = "coordinator crypto/rand, 32 bytes, drawn after the solver's trace root was received"

// Policy is the client's audit policy (the spec's audit block) and the
// sample count it requires.
type Policy struct {
	CheatFractionPPM int64 `json:"cheat_fraction_ppm"`
	ConfidencePPM    int64 `json:"confidence_ppm"`
	// RequiredSamples: segments (replay, §15 "Sample count", at most the
	// segments there are) or tiles (zk, §17.3) an audit must check.
	RequiredSamples int64 `json:"required_samples"`
}

// Audit is one verifier's signed findings as the coordinator received
// them.
type Audit struct {
	Verifier   Party          `json:"verifier"`
	ReportedAt time.Time      `json:"reported_at"`
	Signed     SignedFindings `json:"signed"`
}

// Losers of a dispute.
const (
	LoserSolver   = "solver"
	LoserVerifier = "verifier"
)

// Dispute is a failed audit the coordinator refereed.
type Dispute struct {
	Verifier     string `json:"verifier"` // peer ID
	Solver       string `json:"solver"`   // peer ID
	FirstBadStep int64  `json:"first_bad_step"`
	// Loser is LoserSolver or LoserVerifier.
	Loser string `json:"loser"`
	Why   string `json:"why,omitempty"`
}

// Slash is a bond taken over the job.
type Slash struct {
	Role           string `json:"role"` // "solver" or "verifier"
	PeerID         string `json:"peer_id"`
	AmountMicroUSD int64  `json:"amount_micro_usd"`
}

// Movement kinds (a transfer's flags, as statements show them).
const (
	Posted      = "posted"
	Pending     = "pending"
	PostPending = "post_pending"
	VoidPending = "void_pending"
)

// Movement is one ledger transfer of the job.
type Movement struct {
	TransferID string    `json:"transfer_id"`
	Seq        int64     `json:"seq"`
	At         time.Time `json:"at"`
	// Code is what the transfer is for (lock_client_escrow, …).
	Code string `json:"code"`
	// Kind is Posted, Pending, PostPending or VoidPending.
	Kind string `json:"kind"`
	// Debit and Credit name the accounts ("kind:party").
	Debit          string `json:"debit"`
	Credit         string `json:"credit"`
	AmountMicroUSD int64  `json:"amount_micro_usd"`
	// PendingID is the reservation a PostPending or VoidPending resolves.
	PendingID string `json:"pending_id,omitempty"`
}

// Job end states.
const (
	StateSettled          = "settled"
	StateAdjudicatedCheat = "adjudicated_cheat"
	StateCancelled        = "cancelled"
	StateExpired          = "expired"
)

// Outcome is where the job ended.
type Outcome struct {
	State string `json:"state"`
	// Verdict of the audit that ended the job ("" if none did).
	Verdict string `json:"verdict,omitempty"`
	// ConfidencePPM is that audit's confidence.
	ConfidencePPM int64  `json:"confidence_ppm"`
	Reason        string `json:"reason,omitempty"`
}

// Times are the job's timestamps (UTC).
type Times struct {
	PostedAt    time.Time  `json:"posted_at"`
	CommittedAt *time.Time `json:"committed_at,omitempty"`
	EndedAt     time.Time  `json:"ended_at"`
	IssuedAt    time.Time  `json:"issued_at"`
}

// Log is what a job's audit has produced so far: the verifiers' signed
// findings as the coordinator received them and the disputes it refereed
// (GET /v1/jobs/{id}/audit serves it while the job runs; the Report
// embeds both when it ends).
type Log struct {
	Audits   []Audit   `json:"audits"`
	Disputes []Dispute `json:"disputes"`
}

// EscrowAccount names the job's escrow account in Movement.Debit/Credit.
func EscrowAccount(job string) string { return "escrow:" + job }
