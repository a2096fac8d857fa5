package dataset

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FortunesDir is where Debian's fortunes package installs its cookie files.
const FortunesDir = "/usr/share/games/fortunes"

// The "fortunes" corpus as Debian's fortunes 1:1.99.1-7.3 installs it: its
// size in bytes and its text commitment (Text.Root, hex). A text job names
// the corpus by these two.
const (
	FortunesBytes = 2576674
	FortunesRoot  = "2d6eb815eb21d0e1d1a62a0a4e17fc884a34f7153f5f218b535ec78fb83c0637"
)

// LoadFortunes returns the "fortunes" corpus read from dir: the bytes of
// every regular file directly under dir whose name contains no '.',
// concatenated in byte order of the names. Symbolic links (fortunes' *.u8),
// directories and the *.dat index files are skipped. A missing dir is an
// error that wraps fs.ErrNotExist and names the Debian package; so is a dir
// holding no such file. A corpus over MaxTextBytes is refused (wrapping
// ErrBadArgument) before it is read past the limit.
func LoadFortunes(dir string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load fortunes: %s is missing; install the Debian package fortunes (apt-get install fortunes): %w", dir, err)
		}
		return nil, fmt.Errorf("load fortunes: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.Contains(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("load fortunes: %s holds no cookie file (a regular file whose name has no '.'); install the Debian package fortunes: %w", dir, fs.ErrNotExist)
	}
	slices.Sort(names) // byte order
	var out []byte
	for _, name := range names {
		if out, err = appendFile(out, filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("load fortunes: %w", err)
		}
	}
	return out, nil
}

// appendFile appends the file's bytes to out, refusing to let out grow past
// MaxTextBytes.
func appendFile(out []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	room := int64(MaxTextBytes - len(out))
	b, err := io.ReadAll(io.LimitReader(f, room+1))
	if err != nil {
		return out, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > room {
		return out, fmt.Errorf("%w: %s takes the corpus past %d bytes (256 MiB)", ErrBadArgument, path, MaxTextBytes)
	}
	return append(out, b...), nil
}
