package node

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// grantNet is a coordinator with one posted job, a verifier that records
// the replication requests and audit tasks it gets, and solvers that
// record their assignments.
type grantNet struct {
	t     *testing.T
	svc   *service.Service
	cn    *p2p.Node
	coord *Node
	job   spec.JobID
	spec  *spec.Spec
	ver   *p2p.Node
	repl  chan *wire.CheckpointAnnounce
	tasks chan *wire.AuditTask
}

func newGrantNet(t *testing.T, confidential bool) *grantNet {
	t.Helper()
	ctx := context.Background()
	svc, err := service.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	cn, err := p2p.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cn.Close() })
	// Keys are only checked for presence here: nothing is proven.
	c, err := New(cn, Config{Service: svc, Keys: prover.NewKeyring(t.TempDir()), HeartbeatTimeout: 400 * time.Millisecond, AuditTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g := &grantNet{t: t, svc: svc, cn: cn, coord: c, repl: make(chan *wire.CheckpointAnnounce, 8), tasks: make(chan *wire.AuditTask, 8)}
	g.ver = g.peer()
	// The verifier is enrolled and bonded: only such a verifier holds
	// replicas and audits.
	vparty := PartyID(wire.RoleVerifier, g.ver.ID())
	if _, _, err := auth.NewKeys(svc.Store(), rand.Reader, time.Now).Issue(ctx, vparty, auth.RoleVerifier, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordDeposit(ctx, service.Deposit{BankRef: "vbond", Account: service.AccountRef{Kind: service.KindVerifierBond, Party: vparty}, AmountMicroUSD: 100_000_000}); err != nil {
		t.Fatal(err)
	}
	g.ver.Handle(wire.ReplicateProtocol, func(_ context.Context, _ *wire.Envelope, m wire.Message, r *p2p.Responder) error {
		g.repl <- m.(*wire.CheckpointAnnounce)
		return r.Reply(&wire.Ack{OK: true})
	}, wire.TypeCheckpointAnnounce)
	g.ver.Handle(wire.AuditProtocol, func(_ context.Context, _ *wire.Envelope, m wire.Message, r *p2p.Responder) error {
		g.tasks <- m.(*wire.AuditTask)
		return r.Reply(&wire.Ack{OK: true})
	}, wire.TypeAuditTask)
	g.hello(g.ver, wire.RoleVerifier)

	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.CheckpointInterval, s.DigestInterval = 40, 10, 1
	s.Audit.Confidential = confidential
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordDeposit(ctx, service.Deposit{BankRef: "d1", Account: service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}, AmountMicroUSD: 1_000_000_000}); err != nil {
		t.Fatal(err)
	}
	posted, err := svc.PostJob(ctx, service.PostJobRequest{ClientID: "acme", Spec: js})
	if err != nil {
		t.Fatal(err)
	}
	if g.job, err = spec.ParseJobID(posted.ID); err != nil {
		t.Fatal(err)
	}
	if g.spec, err = spec.Decode(posted.Spec); err != nil {
		t.Fatal(err)
	}
	if err := c.Offer(ctx, posted.Spec); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *grantNet) peer() *p2p.Node {
	g.t.Helper()
	n, err := p2p.New(context.Background(), p2p.WithAllow(g.cn.ID()))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { n.Close() })
	if _, err := n.Connect(context.Background(), g.cn.Addrs()[0]); err != nil {
		g.t.Fatal(err)
	}
	return n
}

func (g *grantNet) hello(n *p2p.Node, role wire.Role) {
	g.t.Helper()
	h := &wire.Hello{Role: role}
	if role == wire.RoleSolver {
		h.AskNanoUSDPerCU = 200_000_000
	}
	if _, err := n.Request(context.Background(), g.cn.ID(), wire.ControlProtocol, [32]byte{}, h, wire.TypeAck); err != nil {
		g.t.Fatal(err)
	}
}

// solver joins a bonded solver and returns its assignments.
func (g *grantNet) solver() (*p2p.Node, chan *wire.Assign) {
	g.t.Helper()
	n := g.peer()
	if _, err := g.svc.RecordDeposit(context.Background(), service.Deposit{BankRef: "bond-" + n.ID().String(),
		Account: service.AccountRef{Kind: service.KindSolverBond, Party: PartyID(wire.RoleSolver, n.ID())}, AmountMicroUSD: 100_000_000}); err != nil {
		g.t.Fatal(err)
	}
	got := make(chan *wire.Assign, 4)
	n.Handle(wire.AssignProtocol, func(_ context.Context, _ *wire.Envelope, m wire.Message, r *p2p.Responder) error {
		if a, ok := m.(*wire.Assign); ok {
			got <- a
		}
		return r.Reply(&wire.Ack{OK: true})
	}, wire.TypeAssign, wire.TypeBeacon)
	g.hello(n, wire.RoleSolver)
	return n, got
}

// entries is a made-up trace of the job up to step to.
func (g *grantNet) entries(to int64) []wire.TraceEntry {
	var es []trace.Entry
	for i := int64(0); ; i++ {
		step, ok := trace.StepAt(g.spec, i)
		if !ok || step > to {
			break
		}
		es = append(es, trace.Entry{Step: step, Digest: [32]byte{byte(step + 1)}})
	}
	return wire.TraceEntries(es)
}

func assigned(t *testing.T, ch chan *wire.Assign) *wire.Assign {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no assignment")
		return nil
	}
}

// granted checks that raw is the coordinator's grant of job to who.
func (g *grantNet) granted(raw []byte, who *p2p.Node, what string) {
	g.t.Helper()
	if err := exchange.CheckGrant(raw, g.cn.ID(), g.job, who.ID(), time.Now()); err != nil {
		g.t.Fatalf("%s: %v", what, err)
	}
}

// TestReplicationAuditAndResumeCarryGrants: the coordinator grants the
// replica it asks, the solver that resumes and the verifier that audits
// the checkpoints of an open job, each to that peer alone.
func TestReplicationAuditAndResumeCarryGrants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrantNet(t, false)
	s1, a1 := g.solver()
	if a := assigned(t, a1); a.ResumeStep != 0 {
		t.Fatalf("first assignment resumes from %d", a.ResumeStep)
	}
	es := g.entries(10)
	if _, err := s1.Request(ctx, g.cn.ID(), wire.ControlProtocol, g.job, &wire.CheckpointAnnounce{Step: 10, Digest: es[len(es)-1].Digest, Entries: es}, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	var req *wire.CheckpointAnnounce
	select {
	case req = <-g.repl:
	case <-time.After(5 * time.Second):
		t.Fatal("no replication request for an open job")
	}
	g.granted(req.Grant, g.ver, "the replication request's grant")
	if exchange.CheckGrant(req.Grant, g.cn.ID(), g.job, s1.ID(), time.Now()) == nil {
		t.Fatal("the replica's grant opens the checkpoint to another peer")
	}
	// The replica confirms; the solver vanishes; another resumes.
	if _, err := g.ver.Request(ctx, g.cn.ID(), wire.ControlProtocol, g.job, &wire.CheckpointAnnounce{Step: 10, Digest: req.Digest}, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	s2, a2 := g.solver()
	a := assigned(t, a2)
	if a.ResumeStep != 10 {
		t.Fatalf("resumed from %d, want 10", a.ResumeStep)
	}
	g.granted(a.Grant, s2, "the resuming solver's grant")
	full := g.entries(g.spec.Steps)
	tr := wire.Trace(g.job, full)
	if _, err := s2.Request(ctx, g.cn.ID(), wire.ControlProtocol, g.job, &wire.TraceCommit{Steps: g.spec.Steps, TraceRoot: tr.Root(),
		FinalDigest: full[len(full)-1].Digest, Entries: full}, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	select {
	case task := <-g.tasks:
		g.granted(task.Grant, g.ver, "the audit task's grant")
	case <-time.After(5 * time.Second):
		t.Fatal("no audit task")
	}
}

// TestConfidentialJobIsNeverReplicated: no peer but its solver ever holds
// a confidential job's state: the coordinator asks no replica to fetch its
// checkpoints, grants no one its checkpoints, and a job whose solver
// vanished restarts from step 0 elsewhere.
func TestConfidentialJobIsNeverReplicated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrantNet(t, true)
	s1, a1 := g.solver()
	assigned(t, a1)
	for _, step := range []int64{10, 20} {
		es := g.entries(step)
		if _, err := s1.Request(ctx, g.cn.ID(), wire.ControlProtocol, g.job, &wire.CheckpointAnnounce{Step: step, Digest: es[len(es)-1].Digest, Entries: es}, wire.TypeAck); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case req := <-g.repl:
		t.Fatalf("replication of a confidential job's checkpoint at step %d requested", req.Step)
	case <-time.After(time.Second):
	}
	// The first solver stays registered (connected) but goes silent; the
	// job goes to another solver, from the start and with no grant.
	s2, a2 := g.solver()
	a := assigned(t, a2)
	if a.ResumeStep != 0 || len(a.Providers) != 0 || len(a.Grant) != 0 {
		t.Fatalf("a confidential job resumed from step %d held by %d peer(s), grant of %d bytes", a.ResumeStep, len(a.Providers), len(a.Grant))
	}
	_ = s2
}
