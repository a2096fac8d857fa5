package rundir

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/spec"
)

// PartialTraceName holds the committed entries so far, rewritten at every
// checkpoint; TraceName is the final trace.
const (
	PartialTraceName = "trace.partial"
	TraceName        = "trace.txt"
)

// WriteTrace writes entries as job's trace to path atomically: a crash
// leaves the old file or the new one, never a torn one.
func WriteTrace(path string, job spec.JobID, entries []trace.Entry) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-trace-*")
	if err != nil {
		return fmt.Errorf("rundir: %w", err)
	}
	defer os.Remove(f.Name())
	t := trace.Trace{Job: job, Entries: entries}
	if err := t.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("rundir: write trace: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("rundir: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("rundir: %w", err)
	}
	return os.Rename(f.Name(), path)
}

// ReadPartialTrace returns the entries of dir's partial trace up to and
// including step upTo.
func ReadPartialTrace(dir string, job spec.JobID, upTo int64) ([]trace.Entry, error) {
	f, err := os.Open(filepath.Join(dir, PartialTraceName))
	if err != nil {
		return nil, fmt.Errorf("rundir: resuming a committed run needs %s: %w", PartialTraceName, err)
	}
	defer f.Close()
	t, err := trace.Read(f)
	if err != nil {
		return nil, fmt.Errorf("rundir: %s: %w", PartialTraceName, err)
	}
	if t.Job != job {
		return nil, fmt.Errorf("rundir: %s belongs to job %s", PartialTraceName, t.Job)
	}
	n := sort.Search(len(t.Entries), func(i int) bool { return t.Entries[i].Step > upTo })
	return t.Entries[:n], nil
}
