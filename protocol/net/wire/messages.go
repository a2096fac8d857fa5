package wire

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/net/pb"
)

// Message is a native message that can be sealed.
type Message interface {
	Type() Type
	toPB() proto.Message
}

// Role of a peer.
type Role = pb.Role

// Roles.
const (
	RoleSolver      = pb.Role_SOLVER
	RoleVerifier    = pb.Role_VERIFIER
	RoleCoordinator = pb.Role_COORDINATOR
)

// Hello introduces a solver or verifier to the coordinator.
type Hello struct {
	Role             Role
	Backend, GPUName string
	GPUMemoryBytes   uint64
	MACsPerSecond    uint64
	// AskNanoUSDPerCU is the solver's limit price in nano-dollars per
	// compute unit; 0 follows the market.
	AskNanoUSDPerCU int64
	Addrs           []string
}

// Heartbeat reports a solver's progress.
type Heartbeat struct {
	State        RunState
	Step         int64
	LatestDigest [32]byte
	// LossQ16 is the last step's mean batch loss in Q16 nats (0: none
	// yet), shown to the client as progress: the solver's word, not
	// committed or audited.
	LossQ16 int64
	// Backend is where the job in progress trains, once its runner is
	// built: "vulkan (<device>)" or "cpu (<kernel>)" (empty: not said).
	// It differs from the hello's when auto put a job the device cannot
	// take on the CPU.
	Backend string
}

// RunState is a solver's state in a heartbeat.
type RunState = pb.RunState

// Run states.
const (
	StateIdle    = pb.RunState_IDLE
	StateRunning = pb.RunState_RUNNING
	StatePaused  = pb.RunState_PAUSED
	StateDone    = pb.RunState_DONE
)

// JobOffer announces a job on the jobs topic.
type JobOffer struct {
	SpecJSON         []byte
	MaxPriceMicroUSD int64
	BondMicroUSD     int64
	Confidential     bool
}

// Assign gives a solver a job, possibly to resume from a checkpoint.
type Assign struct {
	SpecJSON     []byte
	ResumeStep   int64
	ResumeDigest [32]byte
	Providers    []peer.ID
	Entries      []TraceEntry // the committed trace up to ResumeStep
	// ProviderAddrs are multiaddrs (…/p2p/<id>) at which to reach them.
	ProviderAddrs []string
	// Grant is a sealed grant (SealGrant) that lets the solver fetch the
	// checkpoint from the providers.
	Grant []byte
}

// TraceEntry is one committed digest.
type TraceEntry struct {
	Step   int64
	Digest [32]byte
}

// TraceCommit is a solver's commitment to its run.
type TraceCommit struct {
	Steps       int64
	TraceRoot   [32]byte
	FinalDigest [32]byte
	Entries     []TraceEntry
	// ZKEntries is a confidential job's zk trace (SPEC.md §17.1): Digest
	// holds z_t for t = 0 … Steps.
	ZKEntries []TraceEntry
}

// CheckpointAnnounce says the sender holds a checkpoint (with the trace
// committed up to it), or, sent to a replica, asks it to fetch and hold
// one from Providers.
type CheckpointAnnounce struct {
	Step          int64
	Digest        [32]byte
	Entries       []TraceEntry
	Providers     []peer.ID
	ProviderAddrs []string
	// Grant (coordinator → replica) is a sealed grant that lets the
	// replica fetch the checkpoint from the providers.
	Grant []byte
}

// AuditTask asks a verifier to audit a solver's run.
type AuditTask struct {
	Solver        peer.ID
	TraceRoot     [32]byte
	Beacon        []byte
	SpecJSON      []byte
	Entries       []TraceEntry
	Providers     []peer.ID
	ProviderAddrs []string
	ZKEntries     []TraceEntry // confidential jobs: the committed zk trace
	// Grant is a sealed grant that lets the verifier fetch the job's
	// checkpoints from the holders (none for a confidential job, whose
	// state never leaves its solver).
	Grant []byte
}

// AuditReport is a verifier's signed verdict: its findings, signed with
// its own key (report.SignedFindings, which the coordinator's report
// embeds), and a summary of them (NewAuditReport fills it in; Decode
// refuses a report whose summary contradicts its findings, or that has
// none).
type AuditReport struct {
	Solver        peer.ID
	Pass          bool
	StepsChecked  int64
	FirstBadStep  int64 // −1: none
	ConfidencePPM uint32
	Reason        string
	Findings      *report.SignedFindings
	raw           []byte // Findings' canonical encoding
}

// ManifestRequest asks for the manifest of a checkpoint.
type ManifestRequest struct {
	Digest [32]byte
	Step   int64
	Grant  []byte // the sealed grant naming the requester
}

// Manifest carries a checkpoint manifest (protocol/store encoding).
type Manifest struct{ Data []byte }

// ChunkRequest asks for chunks by hash, of the checkpoint at Step.
type ChunkRequest struct {
	Step   int64
	Hashes [][32]byte
	Grant  []byte // the sealed grant naming the requester
}

// ChunkResponse announces the raw chunk frames that follow it.
type ChunkResponse struct {
	Hashes [][32]byte
	Sizes  []uint32
}

// DisputeQuery is a referee's question to a party.
type DisputeQuery struct {
	Kind pb.DisputeKind
	Step int64
	Name string
}

// Dispute query kinds.
const (
	DisputeDigestAt  = pb.DisputeKind_DIGEST_AT
	DisputeClaim     = pb.DisputeKind_CLAIM
	DisputeOpen      = pb.DisputeKind_OPEN
	DisputeOpenBatch = pb.DisputeKind_OPEN_BATCH
)

// DisputeAnswer is a party's answer.
type DisputeAnswer struct {
	Payload []byte
	Error   string
}

// ProofRequest asks a confidential job's solver for the zk proof of weight
// tile (Row, Col) of linear layer Layer at step Step (SPEC.md §17.2).
type ProofRequest struct {
	Step            int64
	Layer, Row, Col int
}

// ProofNotReady is Proof.Error while the solver is still proving the tile:
// ask again.
const ProofNotReady = "the proof is not ready yet"

// Beacon gives a confidential job's solver its audit beacon.
type Beacon struct{ Beacon []byte }

// Proof answers a ProofRequest with a Groth16 proof, or why there is none.
type Proof struct {
	Proof []byte
	Error string
}

// Ack acknowledges a request.
type Ack struct {
	OK    bool
	Error string
}

func (*Hello) Type() Type              { return TypeHello }
func (*Heartbeat) Type() Type          { return TypeHeartbeat }
func (*JobOffer) Type() Type           { return TypeJobOffer }
func (*Assign) Type() Type             { return TypeAssign }
func (*TraceCommit) Type() Type        { return TypeTraceCommit }
func (*CheckpointAnnounce) Type() Type { return TypeCheckpointAnnounce }
func (*AuditTask) Type() Type          { return TypeAuditTask }
func (*AuditReport) Type() Type        { return TypeAuditReport }
func (*ManifestRequest) Type() Type    { return TypeManifestRequest }
func (*Manifest) Type() Type           { return TypeManifest }
func (*ChunkRequest) Type() Type       { return TypeChunkRequest }
func (*ChunkResponse) Type() Type      { return TypeChunkResponse }
func (*DisputeQuery) Type() Type       { return TypeDisputeQuery }
func (*DisputeAnswer) Type() Type      { return TypeDisputeAnswer }
func (*Ack) Type() Type                { return TypeAck }
func (*ProofRequest) Type() Type       { return TypeProofRequest }
func (*Proof) Type() Type              { return TypeProof }
func (*Beacon) Type() Type             { return TypeBeacon }
func (*Grant) Type() Type              { return TypeGrant }

func (m *Hello) toPB() proto.Message {
	return &pb.Hello{Role: m.Role, Backend: m.Backend, GpuName: m.GPUName, GpuMemoryBytes: m.GPUMemoryBytes,
		MacsPerSecond: m.MACsPerSecond, AskNanoUsdPerCu: m.AskNanoUSDPerCU, Addrs: m.Addrs}
}
func (m *Heartbeat) toPB() proto.Message {
	return &pb.Heartbeat{State: m.State, Step: m.Step, LatestDigest: m.LatestDigest[:], LossQ16: m.LossQ16, Backend: m.Backend}
}
func (m *JobOffer) toPB() proto.Message {
	return &pb.JobOffer{SpecJson: m.SpecJSON, MaxPriceMicroUsd: m.MaxPriceMicroUSD, BondMicroUsd: m.BondMicroUSD, Confidential: m.Confidential}
}
func (m *Assign) toPB() proto.Message {
	return &pb.Assign{SpecJson: m.SpecJSON, ResumeStep: m.ResumeStep, ResumeDigest: m.ResumeDigest[:], Providers: idsToBytes(m.Providers),
		Entries: entriesToPB(m.Entries), ProviderAddrs: m.ProviderAddrs, Grant: m.Grant}
}
func entriesToPB(es []TraceEntry) []*pb.TraceEntry {
	out := make([]*pb.TraceEntry, len(es))
	for i, e := range es {
		out[i] = &pb.TraceEntry{Step: e.Step, Digest: append([]byte(nil), e.Digest[:]...)}
	}
	return out
}
func (m *TraceCommit) toPB() proto.Message {
	return &pb.TraceCommit{Steps: m.Steps, TraceRoot: m.TraceRoot[:], FinalDigest: m.FinalDigest[:], Entries: entriesToPB(m.Entries),
		ZkEntries: entriesToPB(m.ZKEntries)}
}
func (m *CheckpointAnnounce) toPB() proto.Message {
	return &pb.CheckpointAnnounce{Step: m.Step, Digest: m.Digest[:], Entries: entriesToPB(m.Entries), Providers: idsToBytes(m.Providers),
		ProviderAddrs: m.ProviderAddrs, Grant: m.Grant}
}
func (m *AuditTask) toPB() proto.Message {
	return &pb.AuditTask{Solver: []byte(m.Solver), TraceRoot: m.TraceRoot[:], Beacon: m.Beacon, SpecJson: m.SpecJSON,
		Entries: entriesToPB(m.Entries), Providers: idsToBytes(m.Providers), ProviderAddrs: m.ProviderAddrs, ZkEntries: entriesToPB(m.ZKEntries),
		Grant: m.Grant}
}
func (m *AuditReport) toPB() proto.Message {
	v := pb.Verdict_FAIL
	if m.Pass {
		v = pb.Verdict_PASS
	}
	return &pb.AuditReport{Solver: []byte(m.Solver), Verdict: v, StepsChecked: m.StepsChecked, FirstBadStep: m.FirstBadStep,
		ConfidencePpm: m.ConfidencePPM, Reason: m.Reason, Findings: m.findingsBytes()}
}
func (m *ManifestRequest) toPB() proto.Message {
	return &pb.ManifestRequest{Digest: m.Digest[:], Step: m.Step, Grant: m.Grant}
}
func (m *Manifest) toPB() proto.Message { return &pb.Manifest{Data: m.Data} }
func hashesToPB(hs [][32]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = append([]byte(nil), hs[i][:]...)
	}
	return out
}
func (m *ChunkRequest) toPB() proto.Message {
	return &pb.ChunkRequest{Step: m.Step, Hashes: hashesToPB(m.Hashes), Grant: m.Grant}
}
func (m *ChunkResponse) toPB() proto.Message {
	return &pb.ChunkResponse{Hashes: hashesToPB(m.Hashes), Sizes: m.Sizes}
}
func (m *DisputeQuery) toPB() proto.Message {
	return &pb.DisputeQuery{Kind: m.Kind, Step: m.Step, Name: m.Name}
}
func (m *DisputeAnswer) toPB() proto.Message {
	return &pb.DisputeAnswer{Payload: m.Payload, Error: m.Error}
}
func (m *Ack) toPB() proto.Message { return &pb.Ack{Ok: m.OK, Error: m.Error} }
func (m *ProofRequest) toPB() proto.Message {
	return &pb.ProofRequest{Step: m.Step, Layer: uint32(m.Layer), Row: uint32(m.Row), Col: uint32(m.Col)}
}
func (m *Proof) toPB() proto.Message  { return &pb.Proof{Proof: m.Proof, Error: m.Error} }
func (m *Beacon) toPB() proto.Message { return &pb.Beacon{Beacon: m.Beacon} }
func (m *Grant) toPB() proto.Message {
	return &pb.Grant{Grantee: []byte(m.Grantee), ExpiresUnixMs: m.Expires.UnixMilli()}
}

func idsToBytes(ids []peer.ID) [][]byte {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = []byte(id)
	}
	return out
}

func digest(b []byte, what string) ([32]byte, error) {
	var d [32]byte
	if len(b) != 32 {
		return d, fmt.Errorf("%w: %s of %d bytes", ErrMalformed, what, len(b))
	}
	copy(d[:], b)
	return d, nil
}

func optDigest(b []byte, what string) ([32]byte, error) {
	if len(b) == 0 {
		return [32]byte{}, nil
	}
	return digest(b, what)
}

func peerID(b []byte, what string) (peer.ID, error) {
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	return id, nil
}

func peerIDs(bs [][]byte, what string) ([]peer.ID, error) {
	if len(bs) > MaxProviders {
		return nil, fmt.Errorf("%w: %d %s", ErrMalformed, len(bs), what)
	}
	out := make([]peer.ID, len(bs))
	for i, b := range bs {
		id, err := peerID(b, what)
		if err != nil {
			return nil, err
		}
		out[i] = id
	}
	return out, nil
}

func entries(es []*pb.TraceEntry) ([]TraceEntry, error) {
	if len(es) > MaxTraceEntries {
		return nil, fmt.Errorf("%w: %d trace entries", ErrMalformed, len(es))
	}
	out := make([]TraceEntry, len(es))
	for i, e := range es {
		d, err := digest(e.GetDigest(), "trace digest")
		if err != nil {
			return nil, err
		}
		if e.GetStep() < 0 || (i > 0 && e.GetStep() <= out[i-1].Step) {
			return nil, fmt.Errorf("%w: trace entry %d at step %d", ErrMalformed, i, e.GetStep())
		}
		out[i] = TraceEntry{Step: e.GetStep(), Digest: d}
	}
	return out, nil
}

func hashes(bs [][]byte) ([][32]byte, error) {
	if len(bs) > MaxChunksPerRequest {
		return nil, fmt.Errorf("%w: %d chunk hashes (max %d)", ErrMalformed, len(bs), MaxChunksPerRequest)
	}
	out := make([][32]byte, len(bs))
	for i, b := range bs {
		d, err := digest(b, "chunk hash")
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// Decode converts an opened envelope's body to its native message,
// validating every field.
func Decode(e *Envelope) (Message, error) {
	bad := func(err error) (Message, error) { return nil, fmt.Errorf("%w: %v body: %v", ErrMalformed, e.Type, err) }
	switch e.Type {
	case TypeHello:
		var m pb.Hello
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		if m.Role != pb.Role_SOLVER && m.Role != pb.Role_VERIFIER || len(m.Addrs) > 16 || m.AskNanoUsdPerCu < 0 {
			return bad(fmt.Errorf("role %v, %d addrs, ask %d", m.Role, len(m.Addrs), m.AskNanoUsdPerCu))
		}
		return &Hello{Role: m.Role, Backend: m.Backend, GPUName: m.GpuName, GPUMemoryBytes: m.GpuMemoryBytes,
			MACsPerSecond: m.MacsPerSecond, AskNanoUSDPerCU: m.AskNanoUsdPerCu, Addrs: m.Addrs}, nil
	case TypeHeartbeat:
		var m pb.Heartbeat
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		d, err := optDigest(m.LatestDigest, "digest")
		if err != nil || m.Step < 0 || m.State == pb.RunState_RUN_STATE_UNSPECIFIED || m.State > pb.RunState_DONE || m.LossQ16 < 0 {
			return bad(fmt.Errorf("state %v, step %d, loss %d, %v", m.State, m.Step, m.LossQ16, err))
		}
		return &Heartbeat{State: m.State, Step: m.Step, LatestDigest: d, LossQ16: m.LossQ16, Backend: m.Backend}, nil
	case TypeJobOffer:
		var m pb.JobOffer
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		if len(m.SpecJson) == 0 || m.MaxPriceMicroUsd < 0 || m.BondMicroUsd < 0 {
			return bad(fmt.Errorf("empty spec or negative amount"))
		}
		return &JobOffer{SpecJSON: m.SpecJson, MaxPriceMicroUSD: m.MaxPriceMicroUsd, BondMicroUSD: m.BondMicroUsd, Confidential: m.Confidential}, nil
	case TypeAssign:
		var m pb.Assign
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		d, err := optDigest(m.ResumeDigest, "resume digest")
		if err != nil || len(m.SpecJson) == 0 || m.ResumeStep < 0 {
			return bad(fmt.Errorf("spec of %d bytes, resume step %d, %v", len(m.SpecJson), m.ResumeStep, err))
		}
		ps, err := peerIDs(m.Providers, "providers")
		if err != nil {
			return nil, err
		}
		es, err := entries(m.Entries)
		if err != nil {
			return bad(err)
		}
		if err := checkAddrs(m.ProviderAddrs); err != nil {
			return bad(err)
		}
		if err := checkGrant(m.Grant); err != nil {
			return bad(err)
		}
		return &Assign{SpecJSON: m.SpecJson, ResumeStep: m.ResumeStep, ResumeDigest: d, Providers: ps, Entries: es, ProviderAddrs: m.ProviderAddrs,
			Grant: m.Grant}, nil
	case TypeTraceCommit:
		var m pb.TraceCommit
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		root, err1 := digest(m.TraceRoot, "trace root")
		fin, err2 := digest(m.FinalDigest, "final digest")
		es, err3 := entries(m.Entries)
		zs, err4 := entries(m.ZkEntries)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || m.Steps < 1 {
			return bad(fmt.Errorf("steps %d: %v %v %v %v", m.Steps, err1, err2, err3, err4))
		}
		return &TraceCommit{Steps: m.Steps, TraceRoot: root, FinalDigest: fin, Entries: es, ZKEntries: zs}, nil
	case TypeCheckpointAnnounce:
		var m pb.CheckpointAnnounce
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		d, err := digest(m.Digest, "digest")
		if err != nil || m.Step < 0 {
			return bad(fmt.Errorf("step %d, %v", m.Step, err))
		}
		es, err := entries(m.Entries)
		if err != nil {
			return bad(err)
		}
		ps, err := peerIDs(m.Providers, "providers")
		if err != nil {
			return nil, err
		}
		if err := checkAddrs(m.ProviderAddrs); err != nil {
			return bad(err)
		}
		if err := checkGrant(m.Grant); err != nil {
			return bad(err)
		}
		return &CheckpointAnnounce{Step: m.Step, Digest: d, Entries: es, Providers: ps, ProviderAddrs: m.ProviderAddrs, Grant: m.Grant}, nil
	case TypeAuditTask:
		var m pb.AuditTask
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		s, err := peerID(m.Solver, "solver")
		if err != nil {
			return nil, err
		}
		root, err1 := digest(m.TraceRoot, "trace root")
		es, err2 := entries(m.Entries)
		ps, err3 := peerIDs(m.Providers, "providers")
		zs, err4 := entries(m.ZkEntries)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || len(m.Beacon) == 0 || len(m.Beacon) > MaxBeaconBytes || len(m.SpecJson) == 0 {
			return bad(fmt.Errorf("beacon of %d bytes: %v %v %v %v", len(m.Beacon), err1, err2, err3, err4))
		}
		if err := checkAddrs(m.ProviderAddrs); err != nil {
			return bad(err)
		}
		if err := checkGrant(m.Grant); err != nil {
			return bad(err)
		}
		return &AuditTask{Solver: s, TraceRoot: root, Beacon: m.Beacon, SpecJSON: m.SpecJson, Entries: es, Providers: ps, ProviderAddrs: m.ProviderAddrs,
			ZKEntries: zs, Grant: m.Grant}, nil
	case TypeAuditReport:
		var m pb.AuditReport
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		s, err := peerID(m.Solver, "solver")
		if err != nil {
			return nil, err
		}
		if m.Verdict != pb.Verdict_PASS && m.Verdict != pb.Verdict_FAIL || m.FirstBadStep < -1 || m.StepsChecked < 0 || m.ConfidencePpm > 1_000_000 {
			return bad(fmt.Errorf("verdict %v, first bad step %d", m.Verdict, m.FirstBadStep))
		}
		out := &AuditReport{Solver: s, Pass: m.Verdict == pb.Verdict_PASS, StepsChecked: m.StepsChecked, FirstBadStep: m.FirstBadStep,
			ConfidencePPM: m.ConfidencePpm, Reason: m.Reason}
		if err := checkFindings(out, m.Findings); err != nil {
			return bad(err)
		}
		return out, nil
	case TypeManifestRequest:
		var m pb.ManifestRequest
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		d, err := digest(m.Digest, "digest")
		if err != nil || m.Step < 0 {
			return bad(fmt.Errorf("step %d, %v", m.Step, err))
		}
		if err := checkGrant(m.Grant); err != nil {
			return bad(err)
		}
		return &ManifestRequest{Digest: d, Step: m.Step, Grant: m.Grant}, nil
	case TypeManifest:
		var m pb.Manifest
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		return &Manifest{Data: m.Data}, nil
	case TypeChunkRequest:
		var m pb.ChunkRequest
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		hs, err := hashes(m.Hashes)
		if err != nil {
			return nil, err
		}
		if m.Step < 0 {
			return bad(fmt.Errorf("step %d", m.Step))
		}
		if err := checkGrant(m.Grant); err != nil {
			return bad(err)
		}
		return &ChunkRequest{Step: m.Step, Hashes: hs, Grant: m.Grant}, nil
	case TypeChunkResponse:
		var m pb.ChunkResponse
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		hs, err := hashes(m.Hashes)
		if err != nil {
			return nil, err
		}
		if len(m.Sizes) != len(hs) {
			return bad(fmt.Errorf("%d sizes for %d hashes", len(m.Sizes), len(hs)))
		}
		for _, s := range m.Sizes {
			if s > MaxChunkBytes {
				return bad(fmt.Errorf("chunk of %d bytes", s))
			}
		}
		return &ChunkResponse{Hashes: hs, Sizes: m.Sizes}, nil
	case TypeDisputeQuery:
		var m pb.DisputeQuery
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		if m.Kind == pb.DisputeKind_DISPUTE_KIND_UNSPECIFIED || m.Kind > pb.DisputeKind_OPEN_BATCH || m.Step < 0 || len(m.Name) > 128 {
			return bad(fmt.Errorf("kind %v, step %d", m.Kind, m.Step))
		}
		return &DisputeQuery{Kind: m.Kind, Step: m.Step, Name: m.Name}, nil
	case TypeDisputeAnswer:
		var m pb.DisputeAnswer
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		return &DisputeAnswer{Payload: m.Payload, Error: m.Error}, nil
	case TypeAck:
		var m pb.Ack
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		return &Ack{OK: m.Ok, Error: m.Error}, nil
	case TypeProofRequest:
		var m pb.ProofRequest
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		if m.Step < 0 || m.Layer > MaxLayers || m.Row > MaxTiles || m.Col > MaxTiles {
			return bad(fmt.Errorf("step %d, layer %d, tile (%d, %d)", m.Step, m.Layer, m.Row, m.Col))
		}
		return &ProofRequest{Step: m.Step, Layer: int(m.Layer), Row: int(m.Row), Col: int(m.Col)}, nil
	case TypeProof:
		var m pb.Proof
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		if len(m.Proof) > MaxProofBytes {
			return bad(fmt.Errorf("proof of %d bytes", len(m.Proof)))
		}
		return &Proof{Proof: m.Proof, Error: m.Error}, nil
	case TypeBeacon:
		var m pb.Beacon
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		if len(m.Beacon) == 0 || len(m.Beacon) > MaxBeaconBytes {
			return bad(fmt.Errorf("beacon of %d bytes", len(m.Beacon)))
		}
		return &Beacon{Beacon: m.Beacon}, nil
	case TypeGrant:
		var m pb.Grant
		if err := proto.Unmarshal(e.Body, &m); err != nil {
			return bad(err)
		}
		g, err := peerID(m.Grantee, "grantee")
		if err != nil {
			return nil, err
		}
		return &Grant{Grantee: g, Expires: time.UnixMilli(m.ExpiresUnixMs)}, nil
	}
	return nil, fmt.Errorf("%w: type %v", ErrMalformed, e.Type)
}

// MaxAddrs bounds the multiaddrs a message carries.
const MaxAddrs = 4 * MaxProviders

func checkAddrs(as []string) error {
	if len(as) > MaxAddrs {
		return fmt.Errorf("%d addresses (max %d)", len(as), MaxAddrs)
	}
	for _, a := range as {
		if len(a) > 512 {
			return fmt.Errorf("address of %d bytes", len(a))
		}
	}
	return nil
}
