package prover

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ID names cached content: the hex SHA-256 of its bytes.
type ID string

// IDOf returns the ID of data.
func IDOf(data []byte) ID {
	h := sha256.Sum256(data)
	return ID(hex.EncodeToString(h[:]))
}

func (id ID) valid() bool {
	if len(id) != 64 {
		return false
	}
	_, err := hex.DecodeString(string(id))
	return err == nil
}

// Cache is a content-addressed directory of keys, SRSs and circuit
// descriptions: a file's name is the SHA-256 of its content, checked on
// every read, so a corrupted or substituted file is refused.
type Cache struct {
	Dir string
}

// Put stores data and returns its ID. Storing the same bytes twice is a
// no-op.
func (c Cache) Put(data []byte) (ID, error) {
	id := IDOf(data)
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, string(id))
	if _, err := os.Stat(path); err == nil {
		return id, nil
	}
	tmp, err := os.CreateTemp(c.Dir, ".put-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return id, os.Rename(tmp.Name(), path)
}

// Get returns the content stored under id, at most limit bytes, after
// checking it against id.
func (c Cache) Get(id ID, limit int64) ([]byte, error) {
	if !id.valid() {
		return nil, fmt.Errorf("%w: %q is not a SHA-256 hex ID", ErrMalformed, id)
	}
	f, err := os.Open(filepath.Join(c.Dir, string(id)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrMalformed, id, limit)
	}
	if IDOf(data) != id {
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, id)
	}
	return data, nil
}
