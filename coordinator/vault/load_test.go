package vault

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyringFileMustBePrivate: a keyring file that its group or others
// may read (or write) is refused with ErrInsecureKeyFile and a message
// saying how to fix it, before a byte of it is used; before, any mode was
// accepted.
func TestKeyringFileMustBePrivate(t *testing.T) {
	t.Parallel()
	h := hex.EncodeToString(testKey(1).Secret)
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true}, {0o400, true}, {0o640, false}, {0o604, false}, {0o644, false}, {0o620, false}, {0o602, false}, {0o610, false},
	} {
		path := filepath.Join(t.TempDir(), "vault.keys")
		if err := os.WriteFile(path, []byte(h+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		keys, err := LoadKeyringFile(path)
		if c.ok {
			if err != nil || len(keys) != 1 {
				t.Errorf("mode %o: %v, %v", c.mode, keys, err)
			}
			continue
		}
		if !errors.Is(err, ErrInsecureKeyFile) || keys != nil {
			t.Errorf("mode %o: %v, %v; want ErrInsecureKeyFile", c.mode, keys, err)
			continue
		}
		if !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), h[:8]) {
			t.Errorf("mode %o: message %q", c.mode, err)
		}
	}
}

// TestKeyringEnvIsCleared: the variable that held the keyring is gone from
// the environment once read (whether it parsed or not), so that neither
// child processes nor /proc/<pid>/environ readers of later snapshots see
// it; before, it stayed.
func TestKeyringEnvIsCleared(t *testing.T) {
	h := hex.EncodeToString(testKey(1).Secret)
	t.Setenv("BELUGA_TEST_VAULT_CLEARED", h)
	if keys, err := LoadKeyringEnv("BELUGA_TEST_VAULT_CLEARED"); err != nil || len(keys) != 1 {
		t.Fatalf("LoadKeyringEnv = %v, %v", keys, err)
	}
	if _, ok := os.LookupEnv("BELUGA_TEST_VAULT_CLEARED"); ok {
		t.Error("the keyring variable is still set after reading")
	}
	t.Setenv("BELUGA_TEST_VAULT_CLEARED", "not a key")
	if _, err := LoadKeyringEnv("BELUGA_TEST_VAULT_CLEARED"); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("bad keyring: %v", err)
	}
	if _, ok := os.LookupEnv("BELUGA_TEST_VAULT_CLEARED"); ok {
		t.Error("a keyring variable that did not parse is still set")
	}
}
