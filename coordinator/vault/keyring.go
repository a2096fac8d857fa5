package vault

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// MaxKeyringSize bounds a keyring file or variable.
const MaxKeyringSize = 64 << 10

// ParseKeyring parses keyring text. Each non-blank line that does not
// start with '#' is "ID:HEX", a decimal key ID (1..2^32-1) and 64 hex
// digits; a single line of bare HEX is key 1. The primary key is the one
// with the highest ID, so rotating means appending a line with a higher
// ID. Keys come back sorted by ID. Errors name lines, never key material.
func ParseKeyring(text string) ([]Key, error) {
	if len(text) > MaxKeyringSize {
		return nil, fmt.Errorf("%w: keyring of %d bytes, at most %d", ErrInvalidKey, len(text), MaxKeyringSize)
	}
	var keys []Key
	bare := false // the first key was a bare HEX line
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		idText, hexText, hasID := strings.Cut(line, ":")
		id := uint64(1)
		if hasID {
			var err error
			id, err = strconv.ParseUint(strings.TrimSpace(idText), 10, 32)
			if err != nil || id == 0 {
				return nil, fmt.Errorf("%w: line %d: key id is not in 1..4294967295", ErrInvalidKey, i+1)
			}
		} else {
			hexText = idText
		}
		hexText = strings.TrimSpace(hexText)
		if len(hexText) != 2*KeySize {
			return nil, fmt.Errorf("%w: line %d: want %d hex digits, got %d characters", ErrInvalidKey, i+1, 2*KeySize, len(hexText))
		}
		secret, err := hex.DecodeString(hexText)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: not hex", ErrInvalidKey, i+1)
		}
		if len(keys) > 0 && (!hasID || bare) {
			return nil, fmt.Errorf("%w: line %d: a keyring of several keys needs ID:HEX on every line", ErrInvalidKey, i+1)
		}
		for _, k := range keys {
			if k.ID == uint32(id) {
				return nil, fmt.Errorf("%w: line %d: key id %d repeated", ErrInvalidKey, i+1, id)
			}
		}
		bare = bare || !hasID
		keys = append(keys, Key{ID: uint32(id), Secret: secret})
	}
	if len(keys) == 0 {
		return nil, ErrNoKey
	}
	slices.SortFunc(keys, func(a, b Key) int { return cmp.Compare(a.ID, b.ID) })
	return keys, nil
}

// LoadKeyringFile reads and parses the keyring file at path. A file its
// group or others may access (any permission bit in 0o077) is refused with
// ErrInsecureKeyFile before it is read: a key others could read is not a
// secret, and refusing to start is how the operator learns. The mode is
// that of the opened file, so it cannot change between check and read.
func LoadKeyringFile(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%w: %v", ErrNoKey, err)
		}
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat keyring %s: %w", path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrInsecureKeyFile, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyringSize+1))
	if err != nil {
		return nil, fmt.Errorf("read keyring %s: %w", path, err)
	}
	keys, err := ParseKeyring(string(data))
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return keys, nil
}

// LoadKeyringEnv parses the keyring held by the environment variable name;
// lines may also be separated by ';' or ',' since variables rarely hold
// newlines. The variable is removed from the process environment once
// read, parsed or not, so that child processes do not inherit the key.
// (The copy the kernel keeps of the initial environment, readable by the
// same user in /proc/<pid>/environ, is beyond a process's reach: prefer a
// key file.)
func LoadKeyringEnv(name string) ([]Key, error) {
	v, ok := os.LookupEnv(name)
	if ok {
		if err := os.Unsetenv(name); err != nil {
			return nil, fmt.Errorf("clear $%s: %w", name, err)
		}
	}
	if !ok || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%w: $%s is not set", ErrNoKey, name)
	}
	v = strings.NewReplacer(";", "\n", ",", "\n").Replace(v)
	keys, err := ParseKeyring(v)
	if err != nil {
		return nil, fmt.Errorf("keyring $%s: %w", name, err)
	}
	return keys, nil
}
