package api

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// daemonKey is a daemon's libp2p identity.
type daemonKey struct {
	key crypto.PrivKey
	id  peer.ID
}

func newDaemonKey(t testing.TB) daemonKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return daemonKey{k, id}
}

// signupBody is the POST /v1/signup/daemon body of d's statement for
// role, coordinator and time, with edit applied before encoding.
func signupBody(t testing.TB, d daemonKey, role wire.Role, coord peer.ID, at time.Time, edit func(*DaemonSignupRequest)) string {
	t.Helper()
	st := join.SignupStatement{Role: role, Peer: d.id, Coordinator: coord, Time: at}
	pub, sig, err := st.Sign(d.key)
	if err != nil {
		t.Fatal(err)
	}
	r := DaemonSignupRequest{Role: join.RoleName(role), PeerID: d.id.String(), PublicKey: pub, Coordinator: coord.String(), SignedAt: at.Unix(), Signature: sig}
	if edit != nil {
		edit(&r)
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// TestDaemonSignup: a statement signed by the daemon's identity key gets
// a key of its role for its party (join.PartyID) that works at once (GET
// /v1/me, /v1/parties/{id}), the bond account and its deposit reference;
// a verifier's key is announced to the node (OnKeyIssued: enrolment).
// Refused, with nothing issued: another key, another peer, the other
// role, a client role, another coordinator, a stale time, bad bytes, a
// replay (replayed once the key is revoked), a second sign-up of the same
// party and role, and any sign-up at a coordinator that takes none.
func TestDaemonSignup(t *testing.T) {
	t.Parallel()
	coord := newDaemonKey(t).id
	e := newEnv(t, WithSignup(Signup{Instructions: "Wire to ACME Bank"}), WithPeerID(coord))
	var mu sync.Mutex
	var issued []string
	e.server.OnKeyIssued(func(subject string, role auth.Role) {
		mu.Lock()
		issued = append(issued, role.String()+":"+subject)
		mu.Unlock()
	})
	now := e.clk.now()
	solver, verifier, other := newDaemonKey(t), newDaemonKey(t), newDaemonKey(t)
	sParty, vParty, oParty := join.PartyID(wire.RoleSolver, solver.id), join.PartyID(wire.RoleVerifier, verifier.id), join.PartyID(wire.RoleSolver, other.id)
	ctx := context.Background()

	good := signupBody(t, solver, wire.RoleSolver, coord, now, nil)
	c, b := e.do("POST", "/v1/signup/daemon", "", "", good)
	if c != 201 {
		t.Fatalf("sign-up: %d %s", c, b)
	}
	var res DaemonSignupResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Subject != sParty || res.Role != "solver" || res.PeerID != solver.id.String() || res.Bond.Account != "solver_bond:"+sParty ||
		res.Bond.Reference != FundingReference(sParty) || !strings.Contains(res.Bond.Instructions, "ACME Bank") || res.MinBondMicroUSD <= 0 {
		t.Fatalf("result %+v", res)
	}
	var me Me
	if c, b := e.do("GET", "/v1/me", res.Key, "", ""); c != 200 || json.Unmarshal(b, &me) != nil || me.Role != "solver" || me.Subject != sParty {
		t.Fatalf("me with the new key: %d %s", c, b)
	}
	if c, b := e.do("GET", "/v1/parties/"+sParty, res.Key, "", ""); c != 200 {
		t.Fatalf("own party with the new key: %d %s", c, b)
	}

	refused := []struct {
		name, body, code string
		status           int
	}{
		{"another key", signupBody(t, other, wire.RoleSolver, coord, now, func(r *DaemonSignupRequest) {
			o := signupBody(t, solver, wire.RoleSolver, coord, now.Add(time.Second), nil)
			var or DaemonSignupRequest
			json.Unmarshal([]byte(o), &or)
			r.Signature = or.Signature
		}), "bad_signature", 401},
		{"another peer's public key", signupBody(t, other, wire.RoleSolver, coord, now, func(r *DaemonSignupRequest) {
			r.PeerID = verifier.id.String()
		}), "bad_signature", 401},
		{"signed as solver, sent as verifier", signupBody(t, other, wire.RoleSolver, coord, now, func(r *DaemonSignupRequest) { r.Role = "verifier" }), "bad_signature", 401},
		{"client role", signupBody(t, other, wire.RoleSolver, coord, now, func(r *DaemonSignupRequest) { r.Role = "client" }), "invalid_request", 400},
		{"another coordinator", signupBody(t, other, wire.RoleSolver, verifier.id, now, nil), "bad_signature", 401},
		{"stale", signupBody(t, other, wire.RoleSolver, coord, now.Add(-join.SignupSkew-time.Second), nil), "bad_signature", 401},
		{"future", signupBody(t, other, wire.RoleSolver, coord, now.Add(join.SignupSkew+time.Minute), nil), "bad_signature", 401},
		{"not a peer ID", signupBody(t, other, wire.RoleSolver, coord, now, func(r *DaemonSignupRequest) { r.PeerID = "not a peer" }), "invalid_request", 400},
		{"zero time", signupBody(t, other, wire.RoleSolver, coord, now, func(r *DaemonSignupRequest) { r.SignedAt = 0 }), "invalid_request", 400},
		{"not JSON", "nope", "invalid_request", 400},
		{"empty", "", "invalid_request", 400},
		{"empty object", "{}", "invalid_request", 400},
		{"unknown field", strings.Replace(signupBody(t, other, wire.RoleSolver, coord, now, nil), `{`, `{"party":"x",`, 1), "invalid_request", 400},
		{"null", strings.Replace(signupBody(t, other, wire.RoleSolver, coord, now, nil), `"role":"solver"`, `"role":null`, 1), "invalid_request", 400},
		{"too large", `{"role":"` + strings.Repeat("s", 2000) + `"}`, "too_large", 413},
		{"replay while the key is usable", good, "already_signed_up", 409},
		{"second sign-up", signupBody(t, solver, wire.RoleSolver, coord, now.Add(2*time.Second), nil), "already_signed_up", 409},
	}
	for _, tc := range refused {
		c, b := e.do("POST", "/v1/signup/daemon", "", "", tc.body)
		var p Problem
		if c != tc.status || json.Unmarshal(b, &p) != nil || p.Code != tc.code || p.Detail == "" {
			t.Errorf("%s: %d %s, want %d %s", tc.name, c, b, tc.status, tc.code)
		}
	}
	for _, who := range []string{oParty, join.PartyID(wire.RoleVerifier, other.id)} {
		for _, r := range []auth.Role{auth.RoleSolver, auth.RoleVerifier} {
			if has, err := e.svc.HasKey(ctx, who, r); err != nil || has {
				t.Errorf("a refused sign-up left a %s key for %s (%v)", r, who, err)
			}
		}
	}
	// A replay stays refused once the key is revoked.
	if err := e.keys.Revoke(ctx, res.KeyID); err != nil {
		t.Fatal(err)
	}
	if c, b := e.do("POST", "/v1/signup/daemon", "", "", good); c != 409 || !strings.Contains(string(b), "replayed") {
		t.Fatalf("replay after revocation: %d %s", c, b)
	}

	// A verifier: its key is issued and the node told (enrolment).
	if c, b := e.do("POST", "/v1/signup/daemon", "", "", signupBody(t, verifier, wire.RoleVerifier, coord, now, nil)); c != 201 || !strings.Contains(string(b), `"verifier_bond:`+vParty+`"`) {
		t.Fatalf("verifier sign-up: %d %s", c, b)
	}
	if ok, err := e.svc.Enrolled(ctx, vParty); err != nil || !ok {
		t.Fatalf("verifier not enrolled: %v", err)
	}
	mu.Lock()
	got := strings.Join(issued, ",")
	mu.Unlock()
	if got != "solver:"+sParty+",verifier:"+vParty {
		t.Fatalf("keys announced: %s", got)
	}

	// Closed: no sign-up, or no peer identity.
	for name, env := range map[string]*env{"no sign-up": newEnv(t, WithPeerID(coord)), "no peer ID": newEnv(t, WithSignup(Signup{}))} {
		body := signupBody(t, other, wire.RoleSolver, coord, env.clk.now(), nil)
		if c, b := env.do("POST", "/v1/signup/daemon", "", "", body); c != 403 || !strings.Contains(string(b), "signup_closed") {
			t.Errorf("%s: %d %s", name, c, b)
		}
	}
}

func FuzzDecodeDaemonSignup(f *testing.F) {
	d, coord := newDaemonKey(f), newDaemonKey(f).id
	at := time.Unix(1_800_000_000, 0)
	good := signupBody(f, d, wire.RoleSolver, coord, at, nil)
	f.Add([]byte(good))
	f.Add([]byte(strings.Replace(good, `"solver"`, `"verifier"`, 1)))
	f.Add([]byte(strings.Replace(good, `"solver"`, `"client"`, 1)))
	f.Add([]byte(strings.Replace(good, `"signed_at":1800000000`, `"signed_at":-1`, 1)))
	f.Add([]byte(strings.Replace(good, `"signed_at":1800000000`, `"signed_at":1.8e9`, 1)))
	f.Add([]byte(strings.Replace(good, `"role"`, `"Role"`, 1)))
	f.Add([]byte(strings.Replace(good, `{`, `{"role":"solver",`, 1)))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte("{\"role\":\"s\xff\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, st, err := DecodeDaemonSignup(b)
		if err != nil {
			return
		}
		if join.RoleName(st.Role) != r.Role || st.Peer.String() != r.PeerID || st.Coordinator.String() != r.Coordinator || st.Time.Unix() != r.SignedAt || r.SignedAt <= 0 {
			t.Fatalf("accepted %q as %+v", b, st)
		}
		if len(b) > maxSignupBody {
			t.Fatalf("accepted %d bytes", len(b))
		}
		checkStrict(t, b, []string{"role", "peer_id", "public_key", "coordinator", "signed_at", "signature"}, nil)
	})
}

// TestDaemonSignupRateLimited: daemon sign-ups share client sign-up's
// limit: past SignupsPerMinute in a minute a good statement gets 429
// with Retry-After and no key.
func TestDaemonSignupRateLimited(t *testing.T) {
	t.Parallel()
	coord := newDaemonKey(t).id
	e := newEnv(t, WithSignup(Signup{}), WithPeerID(coord))
	for i := range SignupsPerMinute {
		if c, b := e.do("POST", "/v1/signup", "", "", ""); c != 201 {
			t.Fatalf("client sign-up %d: %d %s", i, c, b)
		}
	}
	d := newDaemonKey(t)
	if c, b := e.do("POST", "/v1/signup/daemon", "", "", signupBody(t, d, wire.RoleSolver, coord, e.clk.now(), nil)); c != 429 || !strings.Contains(string(b), "rate_limited") {
		t.Fatalf("daemon sign-up past the limit: %d %s", c, b)
	}
	if has, err := e.svc.HasKey(context.Background(), join.PartyID(wire.RoleSolver, d.id), auth.RoleSolver); err != nil || has {
		t.Fatalf("a refused sign-up issued a key (%v)", err)
	}
}
