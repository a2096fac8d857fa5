package vault

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/payout"
)

// testKey returns a deterministic 32-byte key for id.
func testKey(id uint32) Key {
	s := make([]byte, KeySize)
	for i := range s {
		s[i] = byte(id*31 + uint32(i))
	}
	return Key{ID: id, Secret: s}
}

func testVault(t testing.TB, keys ...Key) *Vault {
	t.Helper()
	v, err := New(rand.NewChaCha8([32]byte{7}), keys...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func details() BankDetails {
	return BankDetails{HolderName: "Ada Lovelace", RoutingNumber: "121042882", AccountNumber: "000123456789", Type: payout.Savings}
}

func TestSealOpen(t *testing.T) {
	v := testVault(t, testKey(1))
	blob, err := v.Seal("solver-1", details())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("123456789")) || bytes.Contains(blob, []byte("Ada")) {
		t.Fatal("plaintext visible in the envelope")
	}
	if string(blob[:2]) != "v1" {
		t.Fatalf("envelope starts %q", blob[:2])
	}
	got, err := v.Open("solver-1", blob)
	if err != nil {
		t.Fatal(err)
	}
	if got != details() {
		t.Fatalf("Open = %#v, want %#v", got, details())
	}
	again, err := v.Seal("solver-1", details())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(blob, again) {
		t.Fatal("two seals of the same record are equal: nonce reused")
	}
}

func TestOpenRejects(t *testing.T) {
	v := testVault(t, testKey(1))
	blob, err := v.Seal("solver-1", details())
	if err != nil {
		t.Fatal(err)
	}
	other := testVault(t, Key{ID: 1, Secret: bytes.Repeat([]byte{9}, KeySize)})
	withKey := func(id byte) []byte {
		b := bytes.Clone(blob)
		b[5] = id
		return b
	}
	tests := []struct {
		name  string
		v     *Vault
		payee string
		blob  []byte
		want  error
	}{
		{"other payee", v, "solver-2", blob, ErrDecrypt},
		{"payee prefix", v, "solver-", blob, ErrDecrypt},
		{"other key, same id", other, "solver-1", blob, ErrDecrypt},
		{"unknown key id", v, "solver-1", withKey(2), ErrUnknownKey},
		{"empty", v, "solver-1", nil, ErrMalformed},
		{"short", v, "solver-1", blob[:headerSize+nonceSize+tagSize-1], ErrMalformed},
		{"truncated tag", v, "solver-1", blob[:len(blob)-1], ErrDecrypt},
		{"version v2", v, "solver-1", append([]byte("v2"), blob[2:]...), ErrMalformed},
		{"too large", v, "solver-1", append(bytes.Clone(blob), make([]byte, MaxEnvelopeSize)...), ErrMalformed},
		{"empty payee", v, "", blob, ErrInvalidPayeeID},
		{"long payee", v, strings.Repeat("p", MaxPayeeIDLen+1), blob, ErrInvalidPayeeID},
	}
	for _, tt := range tests {
		_, err := tt.v.Open(tt.payee, tt.blob)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Open error = %v, want %v", tt.name, err, tt.want)
		}
	}
	// Every single-bit flip anywhere in the envelope is caught.
	for i := range blob {
		b := bytes.Clone(blob)
		b[i] ^= 1
		if _, err := v.Open("solver-1", b); err == nil {
			t.Fatalf("bit flip at byte %d accepted", i)
		}
	}
}

func TestSealRejectsInvalidDetails(t *testing.T) {
	v := testVault(t, testKey(1))
	d := details()
	d.RoutingNumber = "121042883"
	if _, err := v.Seal("solver-1", d); !errors.Is(err, payout.ErrInvalidRouting) {
		t.Errorf("bad check digit: %v", err)
	}
	d = details()
	d.HolderName = ""
	if _, err := v.Seal("solver-1", d); !errors.Is(err, payout.ErrInvalidName) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := v.Seal("", details()); !errors.Is(err, ErrInvalidPayeeID) {
		t.Errorf("empty payee: %v", err)
	}
}

func TestRotation(t *testing.T) {
	old := testVault(t, testKey(1))
	blob, err := old.Seal("solver-1", details())
	if err != nil {
		t.Fatal(err)
	}
	v := testVault(t, testKey(1), testKey(2))
	if v.PrimaryKeyID() != 2 {
		t.Fatalf("primary = %d, want the highest id", v.PrimaryKeyID())
	}
	if _, err := v.Open("solver-1", blob); err != nil {
		t.Fatalf("old record no longer opens: %v", err)
	}
	rotated, changed, err := v.Rotate("solver-1", blob)
	if err != nil || !changed {
		t.Fatalf("Rotate = %v, %v", changed, err)
	}
	if id, _ := KeyID(rotated); id != 2 {
		t.Fatalf("rotated record under key %d", id)
	}
	same, changed, err := v.Rotate("solver-1", rotated)
	if err != nil || changed || !bytes.Equal(same, rotated) {
		t.Fatalf("second Rotate = %v, %v", changed, err)
	}
	// After dropping key 1, the rotated record still opens.
	onlyNew := testVault(t, testKey(2))
	if _, err := onlyNew.Open("solver-1", rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := onlyNew.Open("solver-1", blob); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old record under dropped key: %v", err)
	}
	if _, _, err := v.Rotate("solver-2", blob); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Rotate for the wrong payee: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	r := rand.NewChaCha8([32]byte{})
	tests := []struct {
		name string
		keys []Key
		want error
	}{
		{"no keys", nil, ErrNoKey},
		{"id 0", []Key{{ID: 0, Secret: make([]byte, 32)}}, ErrInvalidKey},
		{"short key", []Key{{ID: 1, Secret: make([]byte, 16)}}, ErrInvalidKey},
		{"repeated id", []Key{testKey(1), testKey(1)}, ErrInvalidKey},
	}
	for _, tt := range tests {
		if _, err := New(r, tt.keys...); !errors.Is(err, tt.want) {
			t.Errorf("%s: New error = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := New(nil, testKey(1)); err == nil {
		t.Error("nil reader accepted")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func TestSealRandomFailure(t *testing.T) {
	v, err := New(failingReader{}, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Seal("solver-1", details()); err == nil {
		t.Fatal("sealed without a nonce")
	}
}

func TestParseKeyring(t *testing.T) {
	h1, h2 := hex.EncodeToString(testKey(1).Secret), hex.EncodeToString(testKey(2).Secret)
	tests := []struct {
		name string
		text string
		ids  []uint32
		want error
	}{
		{"bare key", h1 + "\n", []uint32{1}, nil},
		{"uppercase hex", strings.ToUpper(h1), []uint32{1}, nil},
		{"two keys, comments", "# old\n7:" + h1 + "\n\n  12 : " + h2 + "  \n", []uint32{7, 12}, nil},
		{"sorted by id", "9:" + h1 + "\n3:" + h2, []uint32{3, 9}, nil},
		{"empty", "\n# nothing\n", nil, ErrNoKey},
		{"short hex", "1:" + h1[:62], nil, ErrInvalidKey},
		{"not hex", "1:" + strings.Repeat("zz", 32), nil, ErrInvalidKey},
		{"id 0", "0:" + h1, nil, ErrInvalidKey},
		{"id too big", "4294967296:" + h1, nil, ErrInvalidKey},
		{"repeated id", "1:" + h1 + "\n1:" + h2, nil, ErrInvalidKey},
		{"bare key among several", h1 + "\n2:" + h2, nil, ErrInvalidKey},
		{"two bare keys", h1 + "\n" + h2, nil, ErrInvalidKey},
	}
	for _, tt := range tests {
		keys, err := ParseKeyring(tt.text)
		if tt.want != nil {
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), h1[:16]) || strings.Contains(err.Error(), h2[:16])) {
				t.Errorf("%s: error leaks key material: %v", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var ids []uint32
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tt.ids) {
			t.Errorf("%s: ids %v, want %v", tt.name, ids, tt.ids)
		}
	}
}

func TestLoadKeyring(t *testing.T) {
	h1, h2 := hex.EncodeToString(testKey(1).Secret), hex.EncodeToString(testKey(2).Secret)
	path := filepath.Join(t.TempDir(), "vault.keys")
	if err := os.WriteFile(path, []byte("1:"+h1+"\n2:"+h2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeyringFile(path)
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[1].Secret, testKey(2).Secret) {
		t.Fatalf("LoadKeyringFile = %v, %v", keys, err)
	}
	if _, err := LoadKeyringFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("missing file: %v", err)
	}

	t.Setenv("BELUGA_TEST_VAULT_KEYS", "1:"+h1+";2:"+h2)
	keys, err = LoadKeyringEnv("BELUGA_TEST_VAULT_KEYS")
	if err != nil || len(keys) != 2 {
		t.Fatalf("LoadKeyringEnv = %v, %v", keys, err)
	}
	t.Setenv("BELUGA_TEST_VAULT_KEY", h1)
	if keys, err = LoadKeyringEnv("BELUGA_TEST_VAULT_KEY"); err != nil || len(keys) != 1 || keys[0].ID != 1 {
		t.Fatalf("single key from env = %v, %v", keys, err)
	}
	if _, err := LoadKeyringEnv("BELUGA_TEST_VAULT_UNSET_VARIABLE"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("unset variable: %v", err)
	}
	// Printing keys never shows the secret.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, keys); strings.Contains(s, h1[:8]) || strings.Contains(s, fmt.Sprint(testKey(1).Secret[:4])) {
			t.Errorf("%s prints key material: %s", verb, s)
		}
	}
}

// FuzzOpen feeds arbitrary envelopes and payee IDs to Open: it must never
// panic, and whatever it accepts must be valid and re-seal to the same
// details.
func FuzzOpen(f *testing.F) {
	v := testVault(f, testKey(1), testKey(2))
	blob, err := v.Seal("solver-1", details())
	if err != nil {
		f.Fatal(err)
	}
	f.Add("solver-1", blob)
	f.Add("solver-2", blob)
	f.Add("solver-1", blob[:20])
	f.Add("solver-1", []byte("v1"))
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, payee string, data []byte) {
		d, err := v.Open(payee, data)
		if err != nil {
			for _, s := range []error{ErrMalformed, ErrUnknownKey, ErrDecrypt, ErrInvalidPayeeID} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("Open returned invalid details: %v", err)
		}
		again, err := v.Seal(payee, d)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := v.Open(payee, again); err != nil || back != d {
			t.Fatalf("re-seal round trip: %v", err)
		}
	})
}

// FuzzParseKeyring checks that keyring parsing never panics and returns
// well-formed keys.
func FuzzParseKeyring(f *testing.F) {
	h1 := hex.EncodeToString(testKey(1).Secret)
	f.Add(h1)
	f.Add("1:" + h1 + "\n2:" + h1)
	f.Add("# c\n\n")
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := ParseKeyring(text)
		if err != nil {
			return
		}
		for i, k := range keys {
			if k.ID == 0 || len(k.Secret) != KeySize || i > 0 && keys[i-1].ID >= k.ID {
				t.Fatalf("bad keyring %v", keys)
			}
		}
		if _, err := New(rand.NewChaCha8([32]byte{}), keys...); err != nil {
			t.Fatalf("parsed keyring rejected by New: %v", err)
		}
	})
}
