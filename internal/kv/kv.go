// Package kv opens badger databases, repairing first what a crash can
// leave behind that badger v4.9.6 cannot open by itself.
//
// A process killed right after badger created a new value-log file, but
// before it sized and wrote the file's header, leaves a zero-length
// NNNNNN.vlog. On the next open badger bootstraps the empty file and then
// returns z.NewFile as an error ("Open existing file: …: Create a new
// file"; value.go: logFile.open returns the preserved ferr), so the
// database never opens again. No value can live in a file that was never
// sized, so removing it loses nothing; badger creates a fresh one.
// (Found by coordinator/ledger's kill -9 test.) The same holds for a
// memtable's write-ahead log, NNNNN.mem: created, then sized before any
// entry is written into it; a zero-length one fails the open ("while
// opening memtables … Create a new file") and holds nothing.
package kv

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
)

// Open repairs o.Dir and opens it.
func Open(o badger.Options) (*badger.DB, error) {
	if !o.InMemory {
		if o.ValueDir != "" {
			if err := removeEmpty(o.ValueDir, "*.vlog"); err != nil {
				return nil, err
			}
		}
		if o.Dir != "" {
			if err := removeEmpty(o.Dir, "*.mem"); err != nil {
				return nil, err
			}
		}
	}
	return badger.Open(o)
}

// RemoveEmptyValueLogs removes the zero-length value-log files in dir.
func RemoveEmptyValueLogs(dir string) error { return removeEmpty(dir, "*.vlog") }

// removeEmpty removes the zero-length regular files in dir that match
// pattern.
func removeEmpty(dir, pattern string) error {
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return err
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() && fi.Size() == 0 {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("kv: remove empty %s: %w", f, err)
			}
		}
	}
	return nil
}
