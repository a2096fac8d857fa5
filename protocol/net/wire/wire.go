// Package wire is Beluga's network encoding: signed envelopes around the
// protobuf messages of protocol/net/pb, length-delimited framing with a
// maximum size per message type, and a replay guard. Past this package
// every message is a native Go value; nothing else imports protocol/net/pb.
//
// # Security
//
// Every envelope is signed by its sender's libp2p key over a
// domain-separated encoding of (version, type, job, sender, seq,
// SHA-256(body)); Open checks the signature against the key the sender's
// peer ID embeds, so a message cannot be forged, moved to another job or
// type, or attributed to another peer. Seq is strictly increasing per
// sender; a Guard rejects a replayed or duplicated envelope without
// trusting any clock. Sizes are bounded before allocation: a frame longer
// than its type's maximum is refused from its length prefix, and every
// count and length inside a message is checked while converting it.
package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/net/pb"
	"github.com/beluga-compute/beluga/spec"
)

// Version is the envelope version this package speaks.
const Version = 1

// Protocol IDs and gossipsub topics.
const (
	ControlProtocol   = "/beluga/control/1.0.0"   // solver/verifier → coordinator: hello, heartbeat, trace, reports
	AssignProtocol    = "/beluga/assign/1.0.0"    // coordinator → solver: a job to run, a confidential job's audit beacon
	AuditProtocol     = "/beluga/audit/1.0.0"     // coordinator → verifier: an audit task
	ExchangeProtocol  = "/beluga/exchange/1.0.0"  // any peer: manifests and chunks
	DisputeProtocol   = "/beluga/dispute/1.0.0"   // referee → party: bisection queries
	ReplicateProtocol = "/beluga/replicate/1.0.0" // coordinator → replica: fetch and hold a checkpoint
	ProofProtocol     = "/beluga/proof/1.0.0"     // verifier or coordinator → solver: zk tile proofs
	JobsTopic         = "beluga/jobs/v1"
	AuditsTopic       = "beluga/audits/v1"
)

// Errors.
var (
	ErrTooLarge     = errors.New("wire: message too large")
	ErrMalformed    = errors.New("wire: malformed message")
	ErrBadSignature = errors.New("wire: bad signature")
	ErrReplay       = errors.New("wire: replayed message")
	ErrWrongType    = errors.New("wire: unexpected message type")
	ErrWrongJob     = errors.New("wire: message for another job")
)

// Type is a message type.
type Type = pb.Type

// Message types.
const (
	TypeHello              = pb.Type_HELLO
	TypeHeartbeat          = pb.Type_HEARTBEAT
	TypeJobOffer           = pb.Type_JOB_OFFER
	TypeAssign             = pb.Type_ASSIGN
	TypeTraceCommit        = pb.Type_TRACE_COMMIT
	TypeCheckpointAnnounce = pb.Type_CHECKPOINT_ANNOUNCE
	TypeAuditTask          = pb.Type_AUDIT_TASK
	TypeAuditReport        = pb.Type_AUDIT_REPORT
	TypeManifestRequest    = pb.Type_MANIFEST_REQUEST
	TypeManifest           = pb.Type_MANIFEST
	TypeChunkRequest       = pb.Type_CHUNK_REQUEST
	TypeChunkResponse      = pb.Type_CHUNK_RESPONSE
	TypeDisputeQuery       = pb.Type_DISPUTE_QUERY
	TypeDisputeAnswer      = pb.Type_DISPUTE_ANSWER
	TypeAck                = pb.Type_ACK
	TypeProofRequest       = pb.Type_PROOF_REQUEST
	TypeProof              = pb.Type_PROOF
	TypeBeacon             = pb.Type_BEACON
	TypeGrant              = pb.Type_GRANT
)

// envelopeOverhead bounds an envelope's bytes besides its body.
const envelopeOverhead = 512

// maxBody is each type's largest body.
var maxBody = map[Type]int{
	TypeHello:              4 << 10,
	TypeHeartbeat:          256,
	TypeJobOffer:           80 << 10, // a spec is at most 64 KiB
	TypeAssign:             96<<10 + MaxTraceEntries*48 + MaxAddrs*520 + MaxGrantBytes,
	TypeTraceCommit:        2*MaxTraceEntries*48 + 256,
	TypeCheckpointAnnounce: MaxTraceEntries*48 + MaxProviders*48 + MaxAddrs*520 + 128 + MaxGrantBytes,
	TypeAuditTask:          2*MaxTraceEntries*48 + 96<<10 + MaxProviders*48 + MaxAddrs*520 + MaxGrantBytes,
	TypeAuditReport:        2<<10 + report.MaxFindingsBytes,
	TypeManifestRequest:    64 + MaxGrantBytes,
	TypeManifest:           MaxManifestBytes + 16,
	TypeChunkRequest:       MaxChunksPerRequest*36 + 32 + MaxGrantBytes,
	TypeChunkResponse:      MaxChunksPerRequest*44 + 16,
	TypeDisputeQuery:       512,
	TypeDisputeAnswer:      MaxDisputePayload + 1<<10,
	TypeAck:                1 << 10,
	TypeProofRequest:       64,
	TypeProof:              MaxProofBytes + 1<<10,
	TypeBeacon:             MaxBeaconBytes + 16,
	TypeGrant:              128,
}

// Limits inside messages.
const (
	MaxTraceEntries     = spec.MaxDigests
	MaxManifestBytes    = 4 << 20
	MaxChunksPerRequest = 64
	MaxChunkBytes       = 64 << 10
	MaxDisputePayload   = 64 << 20
	MaxProviders        = 64
	MaxProofBytes       = 4 << 10 // a Groth16 proof is 196 bytes, PLONK 584
	MaxBeaconBytes      = 256
	MaxLayers           = 1 << 10
	MaxTiles            = 1 << 20
	// MaxGrantBytes bounds a sealed grant (an ed25519-signed envelope of
	// ~250 bytes).
	MaxGrantBytes = 1 << 10
)

// MaxFrame returns the largest envelope frame of type t.
func MaxFrame(t Type) int {
	if n, ok := maxBody[t]; ok {
		return n + envelopeOverhead
	}
	return 0
}

// Envelope is an opened (verified) envelope.
type Envelope struct {
	Type   Type
	Job    [32]byte
	Sender peer.ID
	Seq    uint64
	Body   []byte
}

func signedBytes(version uint32, t Type, job []byte, sender []byte, seq uint64, body []byte) []byte {
	h := sha256.Sum256(body)
	b := make([]byte, 0, 64+len(job)+len(sender)+32)
	b = append(b, "beluga/wire/v1"...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, version)
	b = binary.BigEndian.AppendUint32(b, uint32(t))
	b = append(b, job...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(sender)))
	b = append(b, sender...)
	b = binary.BigEndian.AppendUint64(b, seq)
	return append(b, h[:]...)
}

// Seal signs msg as type t for job with key and sequence number seq.
func Seal(key crypto.PrivKey, job [32]byte, seq uint64, msg Message) (*pb.Envelope, error) {
	t := msg.Type()
	body, err := proto.Marshal(msg.toPB())
	if err != nil {
		return nil, err
	}
	if len(body) > maxBody[t] {
		return nil, fmt.Errorf("%w: %v body of %d bytes (max %d)", ErrTooLarge, t, len(body), maxBody[t])
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	sender := []byte(id)
	sig, err := key.Sign(signedBytes(Version, t, job[:], sender, seq, body))
	if err != nil {
		return nil, err
	}
	return &pb.Envelope{Version: Version, Type: t, JobId: job[:], Sender: sender, Seq: seq, Body: body, Signature: sig}, nil
}

// Open verifies e: its version, that its type is one of want (any if
// want is empty), the body size for the type, the sender's ID and the
// signature by the key that ID names.
func Open(e *pb.Envelope, want ...Type) (*Envelope, error) {
	if e.GetVersion() != Version {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, e.GetVersion())
	}
	t := e.GetType()
	if _, known := maxBody[t]; !known {
		return nil, fmt.Errorf("%w: type %d", ErrMalformed, t)
	}
	if len(want) > 0 && !contains(want, t) {
		return nil, fmt.Errorf("%w: %v, want %v", ErrWrongType, t, want)
	}
	if len(e.GetBody()) > maxBody[t] {
		return nil, fmt.Errorf("%w: %v body of %d bytes", ErrTooLarge, t, len(e.GetBody()))
	}
	if len(e.GetJobId()) != 32 {
		return nil, fmt.Errorf("%w: job ID of %d bytes", ErrMalformed, len(e.GetJobId()))
	}
	id, err := peer.IDFromBytes(e.GetSender())
	if err != nil {
		return nil, fmt.Errorf("%w: sender: %v", ErrMalformed, err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: sender %s embeds no key: %v", ErrBadSignature, id, err)
	}
	ok, err := pub.Verify(signedBytes(e.GetVersion(), t, e.GetJobId(), e.GetSender(), e.GetSeq(), e.GetBody()), e.GetSignature())
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: from %s", ErrBadSignature, id)
	}
	out := &Envelope{Type: t, Sender: id, Seq: e.GetSeq(), Body: e.GetBody()}
	copy(out.Job[:], e.GetJobId())
	return out, nil
}

func contains(ts []Type, t Type) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}
