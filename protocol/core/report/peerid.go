package report

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// peerIDPrefix precedes an ed25519 public key in a libp2p peer ID: the
// identity multihash (0x00, length 0x24) of the protobuf PublicKey
// message {Type: Ed25519 (field 1 = 1), Data (field 2, 32 bytes)}.
var peerIDPrefix = []byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// PeerID returns the libp2p peer ID ("12D3KooW…") that names the ed25519
// public key pub: base58btc(0x00 0x24 0x08 0x01 0x12 0x20 || pub).
func PeerID(pub ed25519.PublicKey) string {
	return base58Encode(append(append([]byte(nil), peerIDPrefix...), pub...))
}

// KeyOfPeerID returns the ed25519 public key a peer ID embeds; an error
// if id is not the peer ID of an ed25519 key.
func KeyOfPeerID(id string) (ed25519.PublicKey, error) {
	b, ok := base58Decode(id)
	if !ok || len(b) != len(peerIDPrefix)+ed25519.PublicKeySize || !bytes.HasPrefix(b, peerIDPrefix) {
		return nil, fmt.Errorf("%w: %q is not the peer ID of an ed25519 key", ErrMalformed, id)
	}
	return ed25519.PublicKey(b[len(peerIDPrefix):]), nil
}

// ParseKey reads a public key given as a peer ID ("12D3KooW…"), a
// multiaddr ending in /p2p/<peer ID>, or 64 hex digits.
func ParseKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "/p2p/"); i >= 0 {
		s = s[i+len("/p2p/"):]
	}
	if len(s) == 2*ed25519.PublicKeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return ed25519.PublicKey(b), nil
		}
	}
	return KeyOfPeerID(s)
}

func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	n := new(big.Int).SetBytes(b)
	base, mod := big.NewInt(58), new(big.Int)
	var out []byte
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for range zeros {
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func base58Decode(s string) ([]byte, bool) {
	if len(s) == 0 || len(s) > 128 {
		return nil, false
	}
	n, base := new(big.Int), big.NewInt(58)
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base58Alphabet, s[i])
		if d < 0 {
			return nil, false
		}
		n.Mul(n, base)
		n.Add(n, big.NewInt(int64(d)))
	}
	return append(make([]byte, zeros), n.Bytes()...), true
}
