package join

import (
	"crypto/ed25519"
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

// TestSignupVector: the SPEC's vector (§18.2): the key of seed 32 × 00
// signing up as a solver with itself as coordinator at Unix time
// 1800000000.
func TestSignupVector(t *testing.T) {
	t.Parallel()
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	st := SignupStatement{Role: wire.RoleSolver, Peer: id, Coordinator: id, Time: time.Unix(1_800_000_000, 0)}
	pub, sig, err := st.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	const want = "01413377a7194e20299eef93c7284daf4d4a820942cf358d0b9869dcb8553e7466c34a17101cac77152ecb85b48e18500cf1b85b3c883457236795da0e10c703"
	if id.String() != "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN" || pub != "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29" || sig != want {
		t.Fatalf("vector: %s %s %s", id, pub, sig)
	}
	if got := string(st.Bytes()); got != "beluga/signup/v1\x00solver\x00"+id.String()+"\x00"+id.String()+"\x001800000000\x00" {
		t.Fatalf("signed bytes %q", got)
	}
}

// FuzzSignupVerify: any public key and signature strings from outside
// are refused with ErrSignup (or accepted only when they verify), never a
// panic.
func FuzzSignupVerify(f *testing.F) {
	k, _ := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	id, _ := peer.IDFromPrivateKey(k)
	st := SignupStatement{Role: wire.RoleVerifier, Peer: id, Coordinator: id, Time: time.Unix(1_800_000_000, 0)}
	pub, sig, _ := st.Sign(k)
	f.Add(pub, sig)
	f.Add("", "")
	f.Add(pub[:62], sig)
	f.Add(strings.ToUpper(pub), sig+"00")
	f.Fuzz(func(t *testing.T, pub, sig string) {
		err := st.Verify(pub, sig, st.Time)
		if err != nil && !errors.Is(err, ErrSignup) {
			t.Fatalf("error without ErrSignup: %v", err)
		}
	})
}
