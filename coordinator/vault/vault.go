package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/beluga-compute/beluga/coordinator/payout"
)

// BankDetails are a payee's bank account. They are payout's BankAccount,
// so validation (the ABA check digit included) is shared with the payout
// files, and printing them masks the account number.
type BankDetails = payout.BankAccount

// KeySize is the size of an AES-256 key.
const KeySize = 32

// Envelope layout.
const (
	version    = "v1"
	headerSize = len(version) + 4 // version and key ID
	nonceSize  = 12
	tagSize    = 16
	// MaxEnvelopeSize bounds Open's input; sealed bank details are a few
	// hundred bytes.
	MaxEnvelopeSize = 4096
	// MaxPayeeIDLen bounds the payee ID bound into each record.
	MaxPayeeIDLen = 256
)

// Key is one AES-256 key of a keyring.
type Key struct {
	// ID names the key in envelopes; it must not be zero.
	ID uint32
	// Secret is the 32-byte key.
	Secret []byte
}

// String names the key without its secret.
func (k Key) String() string { return fmt.Sprintf("vault key %d", k.ID) }

// GoString names the key without its secret, for %#v.
func (k Key) GoString() string { return k.String() }

// Vault seals and opens bank details. It is safe for concurrent use if its
// random reader is.
type Vault struct {
	rand    io.Reader
	primary uint32
	aeads   map[uint32]cipher.AEAD
}

// New returns a vault over keys; the key with the highest ID is the
// primary, which seals new records. rand supplies nonces: pass
// crypto/rand.Reader outside tests. The secrets are copied.
func New(rand io.Reader, keys ...Key) (*Vault, error) {
	if rand == nil {
		return nil, fmt.Errorf("vault: nil random reader")
	}
	if len(keys) == 0 {
		return nil, ErrNoKey
	}
	v := &Vault{rand: rand, aeads: make(map[uint32]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if k.ID == 0 {
			return nil, fmt.Errorf("%w: key id 0", ErrInvalidKey)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("%w: key %d has %d bytes, want %d", ErrInvalidKey, k.ID, len(k.Secret), KeySize)
		}
		if _, dup := v.aeads[k.ID]; dup {
			return nil, fmt.Errorf("%w: key id %d repeated", ErrInvalidKey, k.ID)
		}
		block, err := aes.NewCipher(slices.Clone(k.Secret))
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrInvalidKey, k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrInvalidKey, k.ID, err)
		}
		v.aeads[k.ID] = aead
		v.primary = max(v.primary, k.ID)
	}
	return v, nil
}

// PrimaryKeyID returns the ID of the key that seals new records.
func (v *Vault) PrimaryKeyID() uint32 { return v.primary }

// record is the sealed plaintext. Its JSON names are part of the v1
// format: do not rename them.
type record struct {
	Name    string `json:"name"`
	Routing string `json:"routing"`
	Account string `json:"account"`
	Type    string `json:"type"`
}

// Seal validates d and encrypts it for payeeID under the primary key.
func (v *Vault) Seal(payeeID string, d BankDetails) ([]byte, error) {
	if err := checkPayeeID(payeeID); err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("seal bank details for %s: %w", payeeID, err)
	}
	plain, err := json.Marshal(record{Name: d.HolderName, Routing: d.RoutingNumber, Account: d.AccountNumber, Type: d.Type.String()})
	if err != nil {
		return nil, fmt.Errorf("seal bank details for %s: %w", payeeID, err)
	}
	out := make([]byte, headerSize+nonceSize, headerSize+nonceSize+len(plain)+tagSize)
	copy(out, version)
	binary.BigEndian.PutUint32(out[len(version):], v.primary)
	nonce := out[headerSize : headerSize+nonceSize]
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return nil, fmt.Errorf("seal bank details for %s: read nonce: %w", payeeID, err)
	}
	return v.aeads[v.primary].Seal(out, nonce, plain, aad(out[:headerSize], payeeID)), nil
}

// Open decrypts blob, which must have been sealed for payeeID, and returns
// validated bank details. It fails with ErrMalformed, ErrUnknownKey or
// ErrDecrypt, and never panics, whatever blob holds.
func (v *Vault) Open(payeeID string, blob []byte) (BankDetails, error) {
	if err := checkPayeeID(payeeID); err != nil {
		return BankDetails{}, err
	}
	id, err := KeyID(blob)
	if err != nil {
		return BankDetails{}, err
	}
	aead, ok := v.aeads[id]
	if !ok {
		return BankDetails{}, fmt.Errorf("%w: %d", ErrUnknownKey, id)
	}
	nonce := blob[headerSize : headerSize+nonceSize]
	plain, err := aead.Open(nil, nonce, blob[headerSize+nonceSize:], aad(blob[:headerSize], payeeID))
	if err != nil {
		return BankDetails{}, fmt.Errorf("%w: for payee %s", ErrDecrypt, payeeID)
	}
	var r record
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return BankDetails{}, fmt.Errorf("%w: authentic but undecodable plaintext", ErrMalformed)
	}
	t, err := payout.ParseAccountType(r.Type)
	if err != nil {
		return BankDetails{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	d := BankDetails{HolderName: r.Name, RoutingNumber: r.Routing, AccountNumber: r.Account, Type: t}
	if err := d.Validate(); err != nil {
		return BankDetails{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return d, nil
}

// Rotate re-seals blob under the primary key if an older key sealed it,
// and reports whether it did; a blob already under the primary key comes
// back unchanged. Store the result in place of blob.
func (v *Vault) Rotate(payeeID string, blob []byte) ([]byte, bool, error) {
	d, err := v.Open(payeeID, blob)
	if err != nil {
		return nil, false, err
	}
	if id, _ := KeyID(blob); id == v.primary {
		return blob, false, nil
	}
	out, err := v.Seal(payeeID, d)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// KeyID returns the ID of the key that sealed blob, reading only the
// envelope header: a store can find the records that still need rotation
// without decrypting them.
func KeyID(blob []byte) (uint32, error) {
	if len(blob) > MaxEnvelopeSize {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(blob), MaxEnvelopeSize)
	}
	if len(blob) < headerSize+nonceSize+tagSize {
		return 0, fmt.Errorf("%w: %d bytes, too short", ErrMalformed, len(blob))
	}
	if string(blob[:len(version)]) != version {
		return 0, fmt.Errorf("%w: unknown version", ErrMalformed)
	}
	return binary.BigEndian.Uint32(blob[len(version):headerSize]), nil
}

// aad binds the envelope header and the payee ID. The header has a fixed
// size, so the concatenation is unambiguous.
func aad(header []byte, payeeID string) []byte {
	return append(slices.Clone(header), payeeID...)
}

func checkPayeeID(id string) error {
	if id == "" || len(id) > MaxPayeeIDLen {
		return fmt.Errorf("%w: length %d not in 1..%d", ErrInvalidPayeeID, len(id), MaxPayeeIDLen)
	}
	return nil
}
