package join

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/wire"
)

func signupKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// TestSignupStatement: a statement signed by the peer's key verifies
// within SignupSkew; another role, coordinator, time or peer, another
// key, a stale or future time and malformed hex are each refused with
// ErrSignup; a key that is not the peer's does not sign.
func TestSignupStatement(t *testing.T) {
	t.Parallel()
	k, id := signupKey(t)
	other, otherID := signupKey(t)
	_, coord := signupKey(t)
	now := time.Unix(1_800_000_000, 0)
	st := SignupStatement{Role: wire.RoleSolver, Peer: id, Coordinator: coord, Time: now}
	pub, sig, err := st.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Verify(pub, sig, now.Add(SignupSkew)); err != nil {
		t.Fatalf("good statement: %v", err)
	}
	if !strings.HasPrefix(string(st.Bytes()), SignupDomain+"\x00solver\x00") {
		t.Fatalf("signed bytes %q", st.Bytes())
	}
	otherPub, otherSig, _ := SignupStatement{Role: wire.RoleSolver, Peer: otherID, Coordinator: coord, Time: now}.Sign(other)
	bad := map[string]func() error{
		"verifier role": func() error {
			s := st
			s.Role = wire.RoleVerifier
			return s.Verify(pub, sig, now)
		},
		"coordinator role": func() error {
			s := st
			s.Role = wire.RoleCoordinator
			return s.Verify(pub, sig, now)
		},
		"other coordinator": func() error { s := st; s.Coordinator = otherID; return s.Verify(pub, sig, now) },
		"other time":        func() error { s := st; s.Time = now.Add(time.Second); return s.Verify(pub, sig, now) },
		"other key":         func() error { return st.Verify(otherPub, otherSig, now) },
		"other peer's sig":  func() error { return st.Verify(pub, otherSig, now) },
		"stale":             func() error { return st.Verify(pub, sig, now.Add(SignupSkew+time.Second)) },
		"future":            func() error { return st.Verify(pub, sig, now.Add(-SignupSkew-time.Second)) },
		"upper-case key":    func() error { return st.Verify(strings.ToUpper(pub), sig, now) },
		"short sig":         func() error { return st.Verify(pub, sig[:126], now) },
		"not hex":           func() error { return st.Verify("zz"+pub[2:], sig, now) },
	}
	for name, f := range bad {
		if err := f(); !errors.Is(err, ErrSignup) {
			t.Errorf("%s: %v, want ErrSignup", name, err)
		}
	}
	if _, _, err := (SignupStatement{Role: wire.RoleSolver, Peer: otherID, Coordinator: coord, Time: now}).Sign(k); !errors.Is(err, ErrSignup) {
		t.Errorf("signing for another peer: %v", err)
	}
}

func TestParseRoleName(t *testing.T) {
	t.Parallel()
	for _, r := range []wire.Role{wire.RoleSolver, wire.RoleVerifier} {
		if got, err := ParseRoleName(RoleName(r)); err != nil || got != r {
			t.Errorf("%v: %v %v", r, got, err)
		}
	}
	for _, s := range []string{"client", "operator", "", "Solver"} {
		if _, err := ParseRoleName(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}
