package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/net/disputenet"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// tinyJob is the "tiny" conformance vector (linear 8 → relu → linear 3,
// batch 5, 12 steps, a digest every step) and its data: small enough that
// an honest party replays it in milliseconds.
func tinyJob(t testing.TB) (*spec.Spec, *dataset.Dataset) {
	t.Helper()
	js, err := os.ReadFile(filepath.Join("..", "..", "spec", "testdata", "vectors", "tiny", "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	ds, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	return s, ds
}

// harness is a coordinator (service over badger in a temporary directory,
// libp2p node, coordinator node) and the peers that join it. restart
// reopens the same directory under the same libp2p key.
type harness struct {
	t    *testing.T
	dir  string
	key  crypto.PrivKey
	cfg  Config
	svc  *service.Service
	keys *auth.Keys
	cn   *p2p.Node
	node *Node
	rec  *recorder
	ds   *dataset.Dataset
	base *spec.Spec
	seed uint64
	// funded: the client's deposit is recorded.
	funded bool
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, ds := tinyJob(t)
	h := &harness{t: t, dir: t.TempDir(), key: key, cfg: cfg, base: s, ds: ds}
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	t := h.t
	ctx := context.Background()
	svc, err := service.Open(ctx, h.dir)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := p2p.New(ctx, p2p.WithKey(h.key), p2p.WithPubSub())
	if err != nil {
		svc.Close()
		t.Fatal(err)
	}
	h.rec = &recorder{}
	cfg := h.cfg
	cfg.Service = svc
	applyTestConfig(&cfg, h.rec)
	n, err := New(cn, cfg)
	if err != nil {
		cn.Close()
		svc.Close()
		t.Fatal(err)
	}
	h.svc, h.cn, h.node = svc, cn, n
	h.keys = auth.NewKeys(svc.Store(), rand.Reader, time.Now)
}

func (h *harness) close() {
	if h.node == nil {
		return
	}
	closeNode(h.node)
	h.cn.Close()
	h.svc.Close()
	h.node = nil
}

// restart stops the coordinator and starts it again over the same
// directory and key; peers must connect and say hello again.
func (h *harness) restart() {
	h.close()
	h.open()
}

// post deposits the client's funds (once), posts a job (a new seed each
// time) and offers it on the node.
func (h *harness) post() (spec.JobID, *spec.Spec) {
	t := h.t
	ctx := context.Background()
	if !h.funded {
		if _, err := h.svc.RecordDeposit(ctx, service.Deposit{BankRef: "client", Account: service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}, AmountMicroUSD: 100_000_000_000}); err != nil {
			t.Fatal(err)
		}
		h.funded = true
	}
	s := *h.base
	h.seed++
	s.Seed = h.base.Seed + h.seed
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	posted, err := h.svc.PostJob(ctx, service.PostJobRequest{ClientID: "acme", Spec: js})
	if err != nil {
		t.Fatal(err)
	}
	offered, err := spec.Decode(posted.Spec)
	if err != nil {
		t.Fatal(err)
	}
	id, err := offered.ID()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.node.Offer(ctx, posted.Spec); err != nil {
		t.Fatal(err)
	}
	return id, offered
}

// job returns the service's record of id.
func (h *harness) job(id spec.JobID) *service.Job {
	h.t.Helper()
	j, err := h.svc.Job(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

// waitState waits up to within for job id to reach a terminal state and
// returns it.
func (h *harness) waitTerminal(id spec.JobID, within time.Duration) *service.Job {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		j := h.job(id)
		if j.State.Terminal() {
			return j
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("job %s still %s after %v (history %+v)", short(id), j.State, within, j.History)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitState waits for job id to be in state st.
func (h *harness) waitState(id spec.JobID, st lifecycle.State, within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for h.job(id).State != st {
		if time.Now().After(deadline) {
			h.t.Fatalf("job %s is %s, not %s, after %v", short(id), h.job(id).State, st, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkMoney checks the ledger's invariants, that every terminal job's
// escrow is empty with nothing reserved, and that no bond of the given
// parties is still reserved once every job is over.
func (h *harness) checkMoney(parties ...service.AccountRef) {
	h.t.Helper()
	ctx := context.Background()
	led := h.svc.Ledger()
	if err := ledger.CheckInvariants(ctx, led); err != nil {
		h.t.Fatal(err)
	}
	jobs, err := h.svc.Jobs(ctx, "")
	if err != nil {
		h.t.Fatal(err)
	}
	all := true
	for _, j := range jobs {
		if !j.State.Terminal() {
			all = false
			continue
		}
		a, err := led.Account(ctx, service.AccountRef{Kind: service.KindEscrow, Party: j.ID}.ID())
		if err != nil {
			h.t.Fatal(err)
		}
		if a.CreditBalanceMicroUSD() != 0 || a.CreditsPendingMicroUSD != 0 || a.DebitsPendingMicroUSD != 0 {
			h.t.Errorf("job %s is %s but its escrow holds %+v", j.ID[:12], j.State, a.Balances)
		}
	}
	if !all {
		return
	}
	for _, p := range parties {
		a, err := led.Account(ctx, p.ID())
		if errors.Is(err, ledger.ErrAccountNotFound) {
			continue
		}
		if err != nil {
			h.t.Fatal(err)
		}
		if a.DebitsPendingMicroUSD != 0 {
			h.t.Errorf("%s still has %d reserved with every job over", p, a.DebitsPendingMicroUSD)
		}
	}
}

// balance is the posted balance of an account (0 when it does not exist).
func (h *harness) balance(ref service.AccountRef) int64 {
	h.t.Helper()
	a, err := h.svc.Ledger().Account(context.Background(), ref.ID())
	if errors.Is(err, ledger.ErrAccountNotFound) {
		return 0
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return a.CreditBalanceMicroUSD()
}

// peerNode is a solver or verifier speaking the wire protocol directly,
// as any libp2p peer can.
type peerNode struct {
	h       *harness
	key     crypto.PrivKey
	n       *p2p.Node
	role    wire.Role
	party   string
	ask     int64 // micro-dollars per compute unit (sent in nano-dollars)
	assigns chan assignment
	tasks   chan auditTask
	// hold: the peer takes audit tasks and never acknowledges them
	// (until the test ends).
	hold chan struct{}
	// dispute answers dispute queries when set (an honest party).
	mu      sync.Mutex
	parties map[spec.JobID]dispute.Party
}

// newKey returns a fresh libp2p key.
func newKey(t testing.TB) crypto.PrivKey {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyBefore grinds a key whose party ID, for role, sorts before party.
func keyBefore(t testing.TB, role wire.Role, party string) crypto.PrivKey {
	for {
		k := newKey(t)
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if PartyID(role, id) < party {
			return k
		}
	}
}

func partyOf(t testing.TB, role wire.Role, k crypto.PrivKey) string {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return PartyID(role, id)
}

// deposit credits a party's bond account.
func (h *harness) deposit(ref service.AccountRef, amount int64) {
	h.t.Helper()
	if _, err := h.svc.RecordDeposit(context.Background(), service.Deposit{BankRef: "bond-" + ref.Party, Account: ref, AmountMicroUSD: amount}); err != nil {
		h.t.Fatal(err)
	}
}

// enrol issues a verifier API key for party, as an operator does with
// POST /v1/keys.
func (h *harness) enrol(party string) {
	h.t.Helper()
	if _, _, err := h.keys.Issue(context.Background(), party, auth.RoleVerifier, 0); err != nil {
		h.t.Fatal(err)
	}
}

// solver joins a solver with a $100 bond asking ask µ$/CU.
func (h *harness) solver(ask int64) *peerNode {
	k := newKey(h.t)
	p := &peerNode{h: h, key: k, role: wire.RoleSolver, party: partyOf(h.t, wire.RoleSolver, k), ask: ask}
	h.deposit(service.AccountRef{Kind: service.KindSolverBond, Party: p.party}, 100_000_000)
	p.join()
	return p
}

// verifier joins a verifier with key k (nil: a fresh one); enrolled and
// bonded say whether it holds a verifier key and a $100 bond.
func (h *harness) verifier(k crypto.PrivKey, enrolled, bonded bool) *peerNode {
	return h.verifierWith(&peerNode{key: k}, enrolled, bonded)
}

// verifierWith joins p (its key and hold set, or not) as a verifier.
func (h *harness) verifierWith(p *peerNode, enrolled, bonded bool) *peerNode {
	k := p.key
	if k == nil {
		k = newKey(h.t)
	}
	p.h, p.key, p.role, p.party = h, k, wire.RoleVerifier, partyOf(h.t, wire.RoleVerifier, k)
	if bonded {
		h.deposit(service.AccountRef{Kind: service.KindVerifierBond, Party: p.party}, 100_000_000)
	}
	if enrolled {
		h.enrol(p.party)
	}
	p.join()
	return p
}

// join starts the peer's host, connects it to the coordinator and says
// hello (again, after a coordinator restart).
func (p *peerNode) join() {
	t := p.h.t
	ctx := context.Background()
	if p.n == nil {
		n, err := p2p.New(ctx, p2p.WithKey(p.key), p2p.WithAllow(p.h.cn.ID()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if p.hold != nil {
			t.Cleanup(func() { close(p.hold) })
		}
		p.n = n
		p.assigns = make(chan assignment, 128)
		p.tasks = make(chan auditTask, 128)
		p.parties = map[spec.JobID]dispute.Party{}
		n.Handle(wire.AssignProtocol, func(_ context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
			if a, ok := m.(*wire.Assign); ok {
				p.assigns <- assignment{spec.JobID(e.Job), a}
			}
			return r.Reply(&wire.Ack{OK: true})
		}, wire.TypeAssign, wire.TypeBeacon)
		n.Handle(wire.AuditProtocol, func(_ context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
			p.tasks <- auditTask{spec.JobID(e.Job), m.(*wire.AuditTask)}
			if p.hold != nil {
				<-p.hold
			}
			return r.Reply(&wire.Ack{OK: true})
		}, wire.TypeAuditTask)
		disputenet.Serve(n, func(job spec.JobID) (dispute.Party, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if d := p.parties[job]; d != nil {
				return d, nil
			}
			return nil, disputenet.ErrNoParty
		})
	}
	if _, err := p.n.Connect(ctx, p.h.cn.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	p.hello()
}

func (p *peerNode) hello() {
	p.h.t.Helper()
	if _, err := p.n.Request(context.Background(), p.h.cn.ID(), wire.ControlProtocol, [32]byte{}, &wire.Hello{Role: p.role, AskNanoUSDPerCU: p.ask * 1000}, wire.TypeAck); err != nil {
		p.h.t.Fatal(err)
	}
}

// honest makes the peer answer disputes over job as an honest party.
func (p *peerNode) honest(id spec.JobID, s *spec.Spec) *dispute.Replayer {
	r, err := dispute.NewReplayer(s, p.h.ds, s.Init())
	if err != nil {
		p.h.t.Fatal(err)
	}
	p.mu.Lock()
	p.parties[id] = r
	p.mu.Unlock()
	return r
}

// assignment is a job the coordinator gave a solver.
type assignment struct {
	job spec.JobID
	msg *wire.Assign
}

// auditTask is an audit the coordinator gave a verifier.
type auditTask struct {
	job spec.JobID
	msg *wire.AuditTask
}

// assigned waits for the coordinator to assign the peer a job.
func (p *peerNode) assigned(within time.Duration) assignment {
	p.h.t.Helper()
	select {
	case a := <-p.assigns:
		return a
	case <-time.After(within):
		p.h.t.Fatalf("solver %s was assigned nothing in %v", p.party, within)
		return assignment{}
	}
}

// task waits up to within for an audit task; ok is false if none came.
func (p *peerNode) task(within time.Duration) (auditTask, bool) {
	select {
	case a := <-p.tasks:
		return a, true
	case <-time.After(within):
		return auditTask{}, false
	}
}

// entries is the trace of job s: honest digests up to and including step
// honestTo, arbitrary ones after it.
func (p *peerNode) entries(s *spec.Spec, honestTo int64) []wire.TraceEntry {
	t := p.h.t
	r, err := dispute.NewReplayer(s, p.h.ds, s.Init())
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.TraceEntry
	for i := int64(0); ; i++ {
		st, ok := trace.StepAt(s, i)
		if !ok {
			break
		}
		var d [32]byte
		if st <= honestTo {
			dd, err := r.DigestAt(context.Background(), st)
			if err != nil {
				t.Fatal(err)
			}
			d = dd
		} else {
			copy(d[:], fmt.Sprintf("lie at step %d of %s", st, p.party))
		}
		out = append(out, wire.TraceEntry{Step: st, Digest: d})
	}
	return out
}

// commit sends the job's trace (see entries).
func (p *peerNode) commit(id spec.JobID, s *spec.Spec, honestTo int64) error {
	es := p.entries(s, honestTo)
	tr := &trace.Trace{Job: id}
	for _, e := range es {
		tr.Entries = append(tr.Entries, trace.Entry{Step: e.Step, Digest: e.Digest})
	}
	msg := &wire.TraceCommit{Steps: s.Steps, TraceRoot: tr.Root(), FinalDigest: es[len(es)-1].Digest, Entries: es}
	_, err := p.n.Request(context.Background(), p.h.cn.ID(), wire.ControlProtocol, id, msg, wire.TypeAck)
	return err
}

// report sends an audit report for job id.
func (p *peerNode) report(id spec.JobID, solver peer.ID, pass bool, firstBad int64) error {
	msg := p.signedReport(id, solver, pass, firstBad, p.key) // report_test.go
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.n.Request(ctx, p.h.cn.ID(), wire.ControlProtocol, id, msg, wire.TypeAck)
	return err
}

// bondRef and earnings name the peer's accounts.
func (p *peerNode) bondRef() service.AccountRef {
	if p.role == wire.RoleSolver {
		return service.AccountRef{Kind: service.KindSolverBond, Party: p.party}
	}
	return service.AccountRef{Kind: service.KindVerifierBond, Party: p.party}
}

func (p *peerNode) earnings() service.AccountRef {
	if p.role == wire.RoleSolver {
		return service.AccountRef{Kind: service.KindSolverEarnings, Party: p.party}
	}
	return service.AccountRef{Kind: service.KindVerifierEarnings, Party: p.party}
}

// specOf decodes an offered spec.
func (h *harness) specOf(js []byte) *spec.Spec {
	s, err := spec.Decode(js)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}
