package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/join"
)

// Self-serve sign-up of a solver or verifier daemon:
//
//	POST /v1/signup/daemon   no key: an API key of the daemon's role for its party, with the bond's deposit reference
//
// The daemon proves it holds the libp2p identity key of its peer ID by
// signing a join.SignupStatement (role, peer, this coordinator's peer ID,
// time) with it; the key is issued for the party that peer ID stands for
// (join.PartyID), the party the coordinator books the daemon's bond, jobs
// and earnings under. A statement counts once (replays within its time
// window are refused) and only within join.SignupSkew of the
// coordinator's clock; a party that already holds a usable key of the
// role is refused (the operator revokes and reissues a lost key). It is
// open when client sign-up is (WithSignup) and the coordinator has a peer
// identity (WithPeerID), and shares client sign-up's rate limit.

// signupSeenPrefix keys the store's records of statements already used
// (the SHA-256 of the signed bytes), kept past their time window.
const signupSeenPrefix = "signup/seen/"

// WithPeerID gives the API the coordinator's libp2p peer ID: daemons sign
// their sign-up statements for it (POST /v1/signup/daemon is closed
// without it).
func WithPeerID(id peer.ID) Option { return func(s *Server) { s.daemon.peerID = id } }

// daemonSignup is the Server's daemon sign-up state.
type daemonSignup struct {
	// peerID is the coordinator's (WithPeerID); "" closes the route.
	peerID peer.ID
	// mu makes one sign-up's replay check, one-key check and issue
	// atomic.
	mu sync.Mutex
}

// DaemonSignupRequest is POST /v1/signup/daemon: a signed
// join.SignupStatement.
type DaemonSignupRequest struct {
	// Role is "solver" or "verifier".
	Role string `json:"role"`
	// PeerID is the daemon's libp2p peer ID ("12D3KooW…").
	PeerID string `json:"peer_id"`
	// PublicKey is the peer's ed25519 public key, 64 lower-case hex digits.
	PublicKey string `json:"public_key"`
	// Coordinator is this coordinator's peer ID, as the daemon was told
	// it (the /p2p/ part of its --coordinator address).
	Coordinator string `json:"coordinator"`
	// SignedAt is when the statement was signed, in Unix seconds.
	SignedAt int64 `json:"signed_at"`
	// Signature is the ed25519 signature of the statement, 128 lower-case
	// hex digits.
	Signature string `json:"signature"`
}

// DaemonSignupResult is the answer to POST /v1/signup/daemon: the key,
// shown once, and how the bond is paid in.
type DaemonSignupResult struct {
	Key     string `json:"key"`
	KeyID   string `json:"key_id"`
	Subject string `json:"subject"`
	Role    string `json:"role"`
	PeerID  string `json:"peer_id"`
	// Bond: the bond account, the reference a transfer quotes (the
	// operator records it as a deposit to that account) and the
	// operator's instructions.
	Bond Funding `json:"bond"`
	// MinBondMicroUSD is the free bond the daemon needs to get work.
	MinBondMicroUSD int64 `json:"min_bond_micro_usd"`
}

// DecodeDaemonSignup parses a daemon sign-up request into the statement
// it claims to sign; the signature is not checked (Statement.Verify).
func DecodeDaemonSignup(body []byte) (DaemonSignupRequest, join.SignupStatement, error) {
	var r DaemonSignupRequest
	if len(body) > maxSignupBody {
		return r, join.SignupStatement{}, fmt.Errorf("%w: a sign-up body is at most %d bytes", errBadRequest, maxSignupBody)
	}
	if err := decodeStrict(body, &r); err != nil {
		return r, join.SignupStatement{}, err
	}
	role, err := join.ParseRoleName(r.Role)
	if err != nil {
		return r, join.SignupStatement{}, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	id, err := peer.Decode(r.PeerID)
	if err != nil || id.String() != r.PeerID {
		return r, join.SignupStatement{}, fmt.Errorf("%w: peer_id %q is not a libp2p peer ID (the daemon prints its peer ID at start)", errBadRequest, r.PeerID)
	}
	coord, err := peer.Decode(r.Coordinator)
	if err != nil || coord.String() != r.Coordinator {
		return r, join.SignupStatement{}, fmt.Errorf("%w: coordinator %q is not a libp2p peer ID", errBadRequest, r.Coordinator)
	}
	if r.SignedAt <= 0 {
		return r, join.SignupStatement{}, fmt.Errorf("%w: signed_at must be a positive Unix time in seconds", errBadRequest)
	}
	return r, join.SignupStatement{Role: role, Peer: id, Coordinator: coord, Time: time.Unix(r.SignedAt, 0)}, nil
}

// daemonSignupRoute is POST /v1/signup/daemon.
func (s *Server) daemonSignupRoute(w http.ResponseWriter, r *http.Request) {
	if s.signup == nil {
		writeErr(w, http.StatusForbidden, "signup_closed", "this coordinator does not take sign-ups: ask its operator for an API key (beluga operator key)")
		return
	}
	if s.daemon.peerID == "" {
		writeErr(w, http.StatusForbidden, "signup_closed", "this coordinator runs without its peer-to-peer node, so no daemon can join it or sign up")
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if len(body) > maxSignupBody {
		writeErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("a sign-up body is at most %d bytes", maxSignupBody))
		return
	}
	req, st, err := DecodeDaemonSignup(body)
	if err != nil {
		write(w, fromErr(err))
		return
	}
	if st.Coordinator != s.daemon.peerID {
		writeErr(w, http.StatusUnauthorized, "bad_signature", fmt.Sprintf("the statement is signed for coordinator %s; this coordinator is %s: sign up with this coordinator's address (…/p2p/%s)", st.Coordinator, s.daemon.peerID, s.daemon.peerID))
		return
	}
	if err := st.Verify(req.PublicKey, req.Signature, s.now()); err != nil {
		writeErr(w, http.StatusUnauthorized, "bad_signature", err.Error())
		return
	}
	if !s.signup.allow(time.Now()) {
		w.Header().Set("Retry-After", "60")
		writeErr(w, http.StatusTooManyRequests, "rate_limited", "too many sign-ups this minute; try again in a minute")
		return
	}
	write(w, s.signupDaemon(r, req, st))
}

// signupDaemon issues the key of a verified statement, once: one
// sign-up at a time, so that the replay and one-key checks and the
// issue are atomic.
func (s *Server) signupDaemon(r *http.Request, req DaemonSignupRequest, st join.SignupStatement) response {
	ctx := r.Context()
	role := auth.RoleSolver
	kind, prole := service.KindSolverBond, service.PartySolver
	if req.Role == "verifier" {
		role, kind, prole = auth.RoleVerifier, service.KindVerifierBond, service.PartyVerifier
	}
	party := join.PartyID(st.Role, st.Peer)
	sum := sha256.Sum256(st.Bytes())
	seen := signupSeenPrefix + hex.EncodeToString(sum[:])

	s.daemon.mu.Lock()
	defer s.daemon.mu.Unlock()
	has, err := s.svc.HasKey(ctx, party, role)
	if err != nil {
		return fromErr(err)
	}
	if has {
		return errResponse(http.StatusConflict, "already_signed_up", fmt.Sprintf(
			"party %s already has a %s API key; a lost key is revoked and reissued by the operator (beluga operator key --role %s --subject %s)", party, req.Role, req.Role, party))
	}
	store := s.svc.Store()
	if _, used, err := store.GetRaw(seen); err != nil {
		return fromErr(err)
	} else if used {
		return errResponse(http.StatusConflict, "replayed", "this signed statement was used already: sign up again (the command signs a new one)")
	}
	status, err := s.svc.Party(ctx, party, prole)
	if err != nil {
		return fromErr(err)
	}
	// Burn the statement before the key exists: a failure after this
	// leaves a statement the daemon signs afresh, never a second key.
	if err := store.PutRawTTL(seen, []byte{1}, 2*join.SignupSkew+time.Minute); err != nil {
		return fromErr(err)
	}
	key, rec, err := s.keys.Issue(ctx, party, role, 0)
	if err != nil {
		return fromErr(err)
	}
	s.parties.key(rec.Subject, rec.Role) // the node enrols a verifier at once
	s.log.InfoContext(ctx, "daemon signed up", "subject", party, "role", req.Role, "peer", req.PeerID, "key_id", rec.ID)
	bond := s.funding(party)
	bond.Account = service.AccountRef{Kind: kind, Party: party}.String()
	out := DaemonSignupResult{Key: key, KeyID: rec.ID, Subject: party, Role: role.String(), PeerID: req.PeerID, Bond: bond, MinBondMicroUSD: status.MinBondMicroUSD}
	return jsonResponse(http.StatusCreated, out)
}
