package trainer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/beluga-compute/beluga/protocol/commit"
	"github.com/beluga-compute/beluga/protocol/trace"
	"github.com/beluga-compute/beluga/spec"
)

// committer hashes state snapshots on its own goroutine, so a digest costs
// the training loop only a memory copy; the hashing overlaps the next
// steps on another core. At most two snapshots are in flight: if hashing
// falls behind, the loop waits (back-pressure, never unbounded memory).
type committer struct {
	job     spec.JobID
	in      chan *spec.State
	free    chan *spec.State
	done    chan struct{}
	entries []trace.Entry
	hasher  commit.Hasher
}

func newCommitter(s *spec.Spec, job spec.JobID, threads int) *committer {
	c := &committer{job: job, in: make(chan *spec.State, 2), free: make(chan *spec.State, 2), done: make(chan struct{})}
	c.hasher.Threads = threads
	for range 2 {
		c.free <- s.NewState()
	}
	go c.loop()
	return c
}

func (c *committer) loop() {
	defer close(c.done)
	for st := range c.in {
		c.entries = append(c.entries, trace.Entry{Step: st.Step, Digest: c.hasher.StateDigest(c.job, st)})
		c.free <- st
	}
}

// submit queues a copy of st for hashing.
func (c *committer) submit(st *spec.State) {
	snap := <-c.free
	snap.Step = st.Step
	for i := range st.Tensors {
		copy(snap.Tensors[i].Data, st.Tensors[i].Data)
	}
	c.in <- snap
}

// drain waits until every submitted snapshot is hashed and returns the
// entries so far. The committer stays usable.
func (c *committer) drain() []trace.Entry {
	// Taking both buffers back means nothing is in flight.
	a, b := <-c.free, <-c.free
	c.free <- a
	c.free <- b
	return c.entries
}

// close stops the goroutine and returns every entry.
func (c *committer) close() []trace.Entry {
	close(c.in)
	<-c.done
	return c.entries
}

// traceLogName holds the committed entries so far, rewritten at every
// checkpoint; traceName is the final trace.
const (
	traceLogName = "trace.partial"
	traceName    = "trace.txt"
)

func writeTrace(path string, job spec.JobID, entries []trace.Entry) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-trace-*")
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	defer os.Remove(f.Name())
	t := trace.Trace{Job: job, Entries: entries}
	if err := t.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("trainer: write trace: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("trainer: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	return os.Rename(f.Name(), path)
}

// readPartialTrace returns the entries of dir's partial trace up to and
// including step upTo.
func readPartialTrace(dir string, job spec.JobID, upTo int64) ([]trace.Entry, error) {
	f, err := os.Open(filepath.Join(dir, traceLogName))
	if err != nil {
		return nil, fmt.Errorf("trainer: resuming a committed run needs %s: %w", traceLogName, err)
	}
	defer f.Close()
	t, err := trace.Read(f)
	if err != nil {
		return nil, fmt.Errorf("trainer: %s: %w", traceLogName, err)
	}
	if t.Job != job {
		return nil, fmt.Errorf("trainer: %s belongs to job %s", traceLogName, t.Job)
	}
	n := sort.Search(len(t.Entries), func(i int) bool { return t.Entries[i].Step > upTo })
	return t.Entries[:n], nil
}
