package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// Key format.
const (
	// TokenPrefix starts every API key, so scanners can find leaked keys.
	TokenPrefix = "blg_"
	// IDSize is the size of the public key ID in bytes.
	IDSize = 8
	// SecretSize is the size of the secret in bytes.
	SecretSize = 32
	// TokenLen is the length of a printed key.
	TokenLen = len(TokenPrefix) + 2*IDSize + 1 + secretTextLen

	secretTextLen = (SecretSize*8 + 5) / 6 // unpadded base64url
	idTextLen     = 2 * IDSize
)

// hashDomain separates key hashes from every other SHA-256 in the system.
const hashDomain = "beluga/api-key/v1\x00"

// Token is a parsed API key: a public ID and a secret.
type Token struct {
	// ID is the key ID, 16 lowercase hex digits; it is not secret.
	ID     string
	secret [SecretSize]byte
}

// NewToken draws a new key ID and secret from rand.
func NewToken(rand io.Reader) (Token, error) {
	var buf [IDSize + SecretSize]byte
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return Token{}, fmt.Errorf("auth: draw api key: %w", err)
	}
	t := Token{ID: hex.EncodeToString(buf[:IDSize])}
	copy(t.secret[:], buf[IDSize:])
	return t, nil
}

// ParseToken parses a printed API key. It accepts exactly the form Reveal
// prints (prefix, lowercase hex ID, '_', canonical unpadded base64url
// secret) and nothing else.
func ParseToken(s string) (Token, error) {
	if len(s) != TokenLen {
		return Token{}, fmt.Errorf("%w: %d characters, want %d", ErrMalformedToken, len(s), TokenLen)
	}
	if s[:len(TokenPrefix)] != TokenPrefix {
		return Token{}, fmt.Errorf("%w: missing %q prefix", ErrMalformedToken, TokenPrefix)
	}
	id := s[len(TokenPrefix) : len(TokenPrefix)+idTextLen]
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return Token{}, fmt.Errorf("%w: key id is not lowercase hex", ErrMalformedToken)
		}
	}
	if s[len(TokenPrefix)+idTextLen] != '_' {
		return Token{}, fmt.Errorf("%w: missing separator", ErrMalformedToken)
	}
	// Strict rejects non-zero padding bits, so every secret has exactly one
	// text form.
	secret, err := base64.RawURLEncoding.Strict().DecodeString(s[len(TokenPrefix)+idTextLen+1:])
	if err != nil || len(secret) != SecretSize {
		return Token{}, fmt.Errorf("%w: secret is not %d bytes of base64url", ErrMalformedToken, SecretSize)
	}
	t := Token{ID: id}
	copy(t.secret[:], secret)
	return t, nil
}

// Reveal prints the full key, secret included. Show it to its owner once;
// never log it.
func (t Token) Reveal() string {
	return TokenPrefix + t.ID + "_" + base64.RawURLEncoding.EncodeToString(t.secret[:])
}

// String prints the key with the secret redacted, so a Token that ends up
// in a log line leaks nothing.
func (t Token) String() string { return TokenPrefix + t.ID + "_[redacted]" }

// GoString redacts the secret like String, for %#v.
func (t Token) GoString() string { return "auth.Token{" + t.String() + "}" }

// Hash is what the store keeps instead of the key: SHA-256 over a domain
// tag, the key ID and the secret.
func (t Token) Hash() [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	h.Write([]byte(t.ID))
	h.Write(t.secret[:])
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
