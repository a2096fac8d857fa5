package join

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// Self-serve sign-up of a daemon: a solver or verifier proves that it
// holds the libp2p identity key of its peer ID by signing a statement
// that names its role, its peer, the coordinator it signs up with and the
// time; the coordinator (POST /v1/signup/daemon) checks it and issues an
// API key of that role for the peer's party (PartyID).

// SignupDomain tags a sign-up statement: no other signature a daemon
// makes (reports, findings, libp2p's handshakes) starts with it.
const SignupDomain = "beluga/signup/v1"

// SignupSkew is how far a statement's time may be from the coordinator's
// clock, either way.
const SignupSkew = 5 * time.Minute

// ErrSignup marks a sign-up statement that does not verify: a key that is
// not the peer's, a bad signature, a time outside SignupSkew.
var ErrSignup = errors.New("sign-up statement refused")

// SignupStatement is what a daemon signs to sign up.
type SignupStatement struct {
	// Role is RoleSolver or RoleVerifier.
	Role wire.Role
	// Peer is the daemon's peer ID (the key's).
	Peer peer.ID
	// Coordinator is the coordinator's peer ID (a statement for one
	// coordinator is worth nothing at another).
	Coordinator peer.ID
	// Time is when it was signed (whole seconds count).
	Time time.Time
}

// RoleName is "solver" or "verifier", the name a sign-up uses for role;
// "" for any other role.
func RoleName(role wire.Role) string {
	switch role {
	case wire.RoleSolver:
		return "solver"
	case wire.RoleVerifier:
		return "verifier"
	}
	return ""
}

// ParseRoleName is RoleName's inverse.
func ParseRoleName(s string) (wire.Role, error) {
	switch s {
	case "solver":
		return wire.RoleSolver, nil
	case "verifier":
		return wire.RoleVerifier, nil
	}
	return 0, fmt.Errorf("role %q: a daemon signs up as solver or verifier", s)
}

// Bytes is what is signed: SignupDomain, the role's name, the peer ID,
// the coordinator's peer ID and the Unix time in seconds (decimal), each
// followed by a 0x00 byte (none of them holds one).
func (s SignupStatement) Bytes() []byte {
	var b []byte
	for _, f := range []string{SignupDomain, RoleName(s.Role), s.Peer.String(), s.Coordinator.String(), strconv.FormatInt(s.Time.Unix(), 10)} {
		b = append(append(b, f...), 0)
	}
	return b
}

// check refuses a statement no key may sign: a role other than solver
// or verifier, or an empty peer.
func (s SignupStatement) check() error {
	if RoleName(s.Role) == "" {
		return fmt.Errorf("%w: role %v: a daemon signs up as solver or verifier", ErrSignup, s.Role)
	}
	if s.Peer == "" || s.Coordinator == "" {
		return fmt.Errorf("%w: no peer or no coordinator", ErrSignup)
	}
	return nil
}

// Sign signs s with key, which must be the ed25519 key of s.Peer. It
// returns the public key (32 bytes of hex) and the signature (hex).
func (s SignupStatement) Sign(key crypto.PrivKey) (pubHex, sigHex string, err error) {
	if err := s.check(); err != nil {
		return "", "", err
	}
	if key.Type() != crypto.Ed25519 {
		return "", "", fmt.Errorf("%w: the identity key is %v, not ed25519", ErrSignup, key.Type())
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if id != s.Peer {
		return "", "", fmt.Errorf("%w: the key is peer %s's, not %s's", ErrSignup, id, s.Peer)
	}
	raw, err := key.GetPublic().Raw()
	if err != nil {
		return "", "", err
	}
	sig, err := key.Sign(s.Bytes())
	if err != nil {
		return "", "", err
	}
	return hex.EncodeToString(raw), hex.EncodeToString(sig), nil
}

// Verify checks that pubHex (32 bytes of lower-case hex) is the ed25519
// key of s.Peer, that sigHex is its signature of s, and that s.Time is
// within SignupSkew of now. Every refusal wraps ErrSignup and says why in
// the signer's terms.
func (s SignupStatement) Verify(pubHex, sigHex string, now time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	raw, err := hex.DecodeString(pubHex)
	if err != nil || len(raw) != 32 || hex.EncodeToString(raw) != pubHex {
		return fmt.Errorf("%w: public_key is not 64 lower-case hex digits (the raw ed25519 key)", ErrSignup)
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(raw)
	if err != nil {
		return fmt.Errorf("%w: public_key: %v", ErrSignup, err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil || id != s.Peer {
		return fmt.Errorf("%w: public_key is the key of peer %s, not of %s", ErrSignup, id, s.Peer)
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) != 64 || hex.EncodeToString(sig) != sigHex {
		return fmt.Errorf("%w: signature is not 128 lower-case hex digits", ErrSignup)
	}
	if ok, err := pub.Verify(s.Bytes(), sig); err != nil || !ok {
		return fmt.Errorf("%w: the signature does not verify with peer %s's key over this role, coordinator and time", ErrSignup, s.Peer)
	}
	if d := now.Sub(s.Time); d > SignupSkew || d < -SignupSkew {
		return fmt.Errorf("%w: signed at %s, more than %v from the coordinator's clock (%s): check this machine's clock and sign again",
			ErrSignup, s.Time.UTC().Format(time.RFC3339), SignupSkew, now.UTC().Format(time.RFC3339))
	}
	return nil
}
