package dataset

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFortunesCorpus recomputes FortunesBytes and FortunesRoot from the
// installed package (Debian fortunes 1:1.99.1-7.3) and skips without it.
func TestFortunesCorpus(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(FortunesDir); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s absent: install the Debian package fortunes to check the corpus constants", FortunesDir)
	}
	b, err := LoadFortunes(FortunesDir)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := NewText(b)
	if err != nil {
		t.Fatal(err)
	}
	r := tx.Root()
	if got := hex.EncodeToString(r[:]); len(b) != FortunesBytes || got != FortunesRoot {
		t.Fatalf("fortunes corpus: %d bytes, root %s; want %d bytes, root %s (another version of the fortunes package?)",
			len(b), got, FortunesBytes, FortunesRoot)
	}
}

// TestLoadFortunesFileRule: regular files directly under dir whose names
// have no '.', in byte order of names; symlinks, directories, dotted and
// hidden names and files in subdirectories are skipped.
func TestLoadFortunesFileRule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b", "B;")
	write("a-b", "AB;")
	write("a", "A;")
	write("Z", "Z;") // 'Z' < 'a' in byte order
	write("a.dat", "index")
	write(".hidden", "hidden")
	write("empty", "")
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "c"), []byte("C;"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadFortunes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Z;A;AB;B;"; string(got) != want {
		t.Fatalf("LoadFortunes = %q, want %q", got, want)
	}
}

func TestLoadFortunesMissing(t *testing.T) {
	t.Parallel()
	_, err := LoadFortunes(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "Debian package fortunes") {
		t.Fatalf("missing dir: %v; want fs.ErrNotExist naming the package", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.dat"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFortunes(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dir without cookie files: %v; want fs.ErrNotExist", err)
	}
}
