package report

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/beluga-compute/beluga/spec/strictjson"
)

// MaxReportBytes bounds a report file; MaxFindingsBytes one verifier's
// signed findings (a trace has at most spec.MaxDigests − 1 segments, each
// ~80 bytes as a SegmentCheck).
const (
	MaxFindingsBytes = 8 << 20
	MaxReportBytes   = 64 << 20
)

// signedBytes is domain || 0x00 || canonical.
func signedBytes(domain string, canonical []byte) []byte {
	return append(append([]byte(domain), 0), canonical...)
}

func sign(key ed25519.PrivateKey, domain string, canonical []byte) Signature {
	pub := key.Public().(ed25519.PublicKey)
	return Signature{PeerID: PeerID(pub), PublicKey: hex.EncodeToString(pub), Value: hex.EncodeToString(ed25519.Sign(key, signedBytes(domain, canonical)))}
}

// Key returns the public key s names, checking that PublicKey is 32 bytes
// of lower-case hex and that PeerID is its peer ID.
func (s Signature) Key() (ed25519.PublicKey, error) {
	pub, err := hex.DecodeString(s.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize || hex.EncodeToString(pub) != s.PublicKey {
		return nil, fmt.Errorf("%w: public key %q is not 64 lower-case hex digits", ErrMalformed, s.PublicKey)
	}
	if PeerID(pub) != s.PeerID {
		return nil, fmt.Errorf("%w: peer ID %s does not name key %s", ErrBadSignature, s.PeerID, s.PublicKey)
	}
	return pub, nil
}

func (s Signature) verify(domain string, canonical []byte) (ed25519.PublicKey, error) {
	pub, err := s.Key()
	if err != nil {
		return nil, err
	}
	sig, err := hex.DecodeString(s.Value)
	if err != nil || len(sig) != ed25519.SignatureSize || hex.EncodeToString(sig) != s.Value {
		return nil, fmt.Errorf("%w: signature is not 128 lower-case hex digits", ErrMalformed)
	}
	if !ed25519.Verify(pub, signedBytes(domain, canonical), sig) {
		return nil, fmt.Errorf("%w: by %s", ErrBadSignature, s.PeerID)
	}
	return pub, nil
}

// canonicalOf is the canonical encoding of v's JSON, less its top-level
// member drop.
func canonicalOf(v any, drop string) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return Canonical(raw, drop)
}

// SignFindings signs f with key (a verifier's libp2p ed25519 key).
func SignFindings(f *Findings, key ed25519.PrivateKey) (*SignedFindings, error) {
	c, err := canonicalOf(f, "")
	if err != nil {
		return nil, err
	}
	return &SignedFindings{Findings: *f, Signature: sign(key, FindingsDomain, c)}, nil
}

// Verify checks the signature over the findings and returns the signer's
// key; who the signer must be is the caller's to check.
func (sf *SignedFindings) Verify() (ed25519.PublicKey, error) {
	c, err := canonicalOf(&sf.Findings, "")
	if err != nil {
		return nil, err
	}
	return sf.Signature.verify(FindingsDomain, c)
}

// Encode returns the canonical encoding of sf (what the wire carries).
func (sf *SignedFindings) Encode() ([]byte, error) {
	b, err := canonicalOf(sf, "")
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFindingsBytes {
		return nil, fmt.Errorf("%w: findings of %d bytes (max %d)", ErrMalformed, len(b), MaxFindingsBytes)
	}
	return b, nil
}

// DecodeSignedFindings reads signed findings strictly (strictjson's
// rules) and checks their form (CheckForm), not their signature.
func DecodeSignedFindings(b []byte) (*SignedFindings, error) {
	if len(b) > MaxFindingsBytes {
		return nil, fmt.Errorf("%w: findings of %d bytes (max %d)", ErrMalformed, len(b), MaxFindingsBytes)
	}
	if _, err := Canonical(b, ""); err != nil {
		return nil, err
	}
	var sf SignedFindings
	if err := strictjson.Decode(b, &sf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := sf.Findings.CheckForm(); err != nil {
		return nil, err
	}
	return &sf, nil
}

// Sign signs r with key (the coordinator's libp2p ed25519 key), setting
// r.Signature.
func (r *Report) Sign(key ed25519.PrivateKey) error {
	r.Signature = nil
	c, err := canonicalOf(r, "signature")
	if err != nil {
		return err
	}
	s := sign(key, ReportDomain, c)
	r.Signature = &s
	return nil
}

// Marshal returns r as indented JSON (the file `beluga report` reads;
// any formatting of the same JSON value verifies the same).
func (r *Report) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode reads a report strictly: strictjson's rules (exact keys, each
// once, no unknown keys, no null for a required value), integers within
// ±(2^53−1), at most MaxReportBytes. It checks neither signatures nor
// consistency (Verify does).
func Decode(b []byte) (*Report, error) {
	if len(b) > MaxReportBytes {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrMalformed, len(b), MaxReportBytes)
	}
	if _, err := Canonical(b, ""); err != nil {
		return nil, err
	}
	var r Report
	if err := strictjson.Decode(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.Version != Version {
		return nil, fmt.Errorf("%w: version %d (this reads %d)", ErrMalformed, r.Version, Version)
	}
	if r.Spec == nil {
		return nil, fmt.Errorf("%w: no spec", ErrMalformed)
	}
	return &r, nil
}
