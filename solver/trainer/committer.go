package trainer

import (
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/trace"
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

// newCommitter returns a committer of states shaped like template.
func newCommitter(template *spec.State, job spec.JobID, threads int) *committer {
	c := &committer{job: job, in: make(chan *spec.State, 2), free: make(chan *spec.State, 2), done: make(chan struct{})}
	c.hasher.Threads = threads
	for range 2 {
		c.free <- template.Clone()
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
