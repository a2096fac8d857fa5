package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// announcer opens an announce stream (protocol pid) from h to the
// gateway's host gh; each call of the returned function sends one
// announcement of model digest with slots free.
func announcer(t *testing.T, h, gh host.Host, pid string, digest merkle.Digest, slots int) func() {
	t.Helper()
	ctx := context.Background()
	if err := h.Connect(ctx, peer.AddrInfo{ID: gh.ID(), Addrs: gh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	st, err := h.NewStream(ctx, gh.ID(), protocol.ID(pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Reset() })
	return func() {
		a := &infer.Announce{Models: []infer.AnnouncedModel{{Digest: fmt.Sprintf("%x", digest[:]), Context: 32}}, Slots: slots}
		if err := infer.WriteFrame(st, infer.FrameAnnounce, a.Encode()); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestOnlyBondedPeersServe: a solver announcing a model is routed nothing
// until its bond covers the minimum, a verifier nothing until it is
// enrolled and bonded (each refusal logged with the reason and what to
// deposit where); a party banned by a lost dispute stays refused by a
// restarted coordinator (a new gateway on the same store).
func TestOnlyBondedPeersServe(t *testing.T) {
	t.Parallel()
	_, _, job, canon, digest := tinyModel(t)
	g, gh, ev, _ := refereeGateway(t, job, canon, digest, "tiny", 32)
	refusal := func(event string, p peer.ID) string {
		e := ev.last(event)
		if e == nil || (e["solver"] != p.String() && e["verifier"] != p.String()) {
			return ""
		}
		return e["why"]
	}

	sh, _ := testHost(t)
	solver := announcer(t, sh, gh, infer.AnnounceProtocol, digest, 1)
	solver()
	waitFor(t, "the unbonded solver's refusal", func() bool { return refusal(EventSolverRefused, sh.ID()) != "" })
	party := join.PartyID(wire.RoleSolver, sh.ID())
	if why := refusal(EventSolverRefused, sh.ID()); !strings.Contains(why, "no bond: the operator deposits at least $10.00 to account solver_bond:"+party) {
		t.Fatalf("the unbonded solver's refusal says %q", why)
	}
	if n := g.Router().Serving(digest); n != 0 {
		t.Fatalf("an unbonded solver is routed to: %d serving", n)
	}
	bonded(t, g, wire.RoleSolver, sh.ID())
	solver()
	waitFor(t, "the bonded solver routed to", func() bool { return g.Router().Serving(digest) == 1 })

	vh, _ := testHost(t)
	verifier := announcer(t, vh, gh, infer.VerifierAnnounceProtocol, digest, 1)
	verifier()
	waitFor(t, "the unenrolled verifier's refusal", func() bool { return refusal(EventVerifierRefused, vh.ID()) != "" })
	if why := refusal(EventVerifierRefused, vh.ID()); !strings.Contains(why, "not enrolled") || !strings.Contains(why, "at least $20.00 to account verifier_bond:") {
		t.Fatalf("the unenrolled verifier's refusal says %q", why)
	}
	bonded(t, g, wire.RoleVerifier, vh.ID())
	verifier()
	waitFor(t, "the enrolled verifier checking", func() bool { return g.VerifiersOf(digest) == 1 })

	// The solver loses a dispute: banned now and after a restart.
	g.router.Ban(sh.ID())
	g.ban(party, "r1", "solver loses (inconsistent claim)")
	if !g.Slashed(party) || g.Router().Serving(digest) != 0 {
		t.Fatal("the banned solver is still routed to")
	}
	ev2 := &events{}
	gh2, _ := testHost(t)
	g2 := New(g.svc, nil, gh2, slog.New(ev2))
	t.Cleanup(g2.Close)
	again := announcer(t, sh, gh2, infer.AnnounceProtocol, digest, 1)
	again()
	waitFor(t, "the banned solver's refusal after a restart", func() bool {
		e := ev2.last(EventSolverRefused)
		return e != nil && strings.Contains(e["why"], "banned over request r1: solver loses")
	})
	if g2.Router().Serving(digest) != 0 {
		t.Fatal("a restarted gateway routes to a banned solver")
	}
}

// TestVerifierPickIsUniform: a verifier announcing the most slots does
// not get every check (one colluding with a cheating solver would pass
// all its frauds): checks are drawn uniformly among the verifiers with
// room. Of 400 checks between a verifier announcing 1024 slots and one
// announcing 512 (most-free-first gives the first all 400), each gets at
// least 30% (a fair draw falls outside that with probability < 10⁻¹⁵).
func TestVerifierPickIsUniform(t *testing.T) {
	t.Parallel()
	_, _, job, canon, digest := tinyModel(t)
	g, gh, _, _ := refereeGateway(t, job, canon, digest, "tiny", 32)
	hosts := make([]host.Host, 2)
	for i, slots := range []int{1024, 512} {
		hosts[i], _ = testHost(t)
		bonded(t, g, wire.RoleVerifier, hosts[i].ID())
		announcer(t, hosts[i], gh, infer.VerifierAnnounceProtocol, digest, slots)()
	}
	waitFor(t, "both verifiers", func() bool { return g.VerifiersOf(digest) == 2 })
	got := map[peer.ID]int{}
	for range 400 {
		p, done, ok := g.ver.verifiers.Pick(digest, nil)
		if !ok {
			t.Fatal("no verifier picked")
		}
		done(0)
		got[p]++
	}
	for _, h := range hosts {
		if got[h.ID()] < 120 {
			t.Fatalf("picks %v: %s got %d of 400", got, h.ID(), got[h.ID()])
		}
	}
}
