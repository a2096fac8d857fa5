// Package par runs the shares of a split loop on a team of long-lived
// goroutines that spin briefly between loops instead of parking.
//
// A training step splits a dozen or more loops and products across cores,
// each a few tens of microseconds of work. Handing each to a new goroutine
// costs a wake-up of a parked thread (a futex round trip, ~50–100 µs on a
// small VM) per loop, which is as much as the work: two threads were then
// no faster than one. The team's workers instead watch for the next loop
// for a while after each one (spinLimit) and park only when none comes, so
// within a step a share starts in well under a microsecond.
//
// Splitting never changes results: callers give each share a fixed range
// of the work, and the integer sums they combine do not depend on order.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spinLimit is how long an idle worker watches for the next loop before it
// parks: longer than the serial gaps inside a training step, short enough
// that an idle solver does not hold a core.
const spinLimit = 200 * time.Microsecond

// job is one split loop: fn(i) for the workers' shares 1 … n−1.
type job struct {
	epoch uint64
	n     int
	fn    func(int)
	done  atomic.Int64 // shares still running
}

// Team runs split loops on up to Size() shares at once. Its methods may be
// called from several goroutines: one loop runs on the team at a time, and
// a caller that finds the team busy runs its shares on fresh goroutines.
type Team struct {
	size     int
	busy     sync.Mutex
	epoch    uint64 // guarded by busy
	cur      atomic.Pointer[job]
	sleepers atomic.Int32
	mu       sync.Mutex // with wake: parking
	wake     *sync.Cond
}

var (
	teamsMu sync.Mutex
	teams   = map[int]*Team{}
)

// Shared returns the process's team of size shares (the caller and
// size−1 workers), creating it on first use; size < 1 counts as 1.
func Shared(size int) *Team {
	size = max(size, 1)
	teamsMu.Lock()
	defer teamsMu.Unlock()
	t := teams[size]
	if t == nil {
		t = newTeam(size)
		teams[size] = t
	}
	return t
}

func newTeam(size int) *Team {
	t := &Team{size: size}
	t.wake = sync.NewCond(&t.mu)
	t.cur.Store(&job{})
	for w := 1; w < size; w++ {
		go t.worker(w)
	}
	return t
}

// Size is the most shares a loop can be split into.
func (t *Team) Size() int { return t.size }

// Run calls fn(0), …, fn(n−1), share 0 on the calling goroutine and the
// others on the team's workers, and returns when all have returned. n must
// be at most Size(). fn must not call Run on the same team.
func (t *Team) Run(n int, fn func(share int)) {
	if n <= 1 {
		if n == 1 {
			fn(0)
		}
		return
	}
	if n > t.size {
		panic("par: more shares than the team has")
	}
	if !t.busy.TryLock() {
		// Another loop holds the team (another engine in this process):
		// this one runs on its own goroutines.
		var wg sync.WaitGroup
		for i := 1; i < n; i++ {
			wg.Go(func() { fn(i) })
		}
		fn(0)
		wg.Wait()
		return
	}
	defer t.busy.Unlock()
	t.epoch++
	j := &job{epoch: t.epoch, n: n, fn: fn}
	j.done.Store(int64(n - 1))
	t.cur.Store(j)
	if t.sleepers.Load() > 0 {
		t.mu.Lock()
		t.wake.Broadcast()
		t.mu.Unlock()
	}
	fn(0)
	for spins := 1; j.done.Load() > 0; spins++ {
		// The shares left are running on workers: spin, yielding now and
		// then (a yield takes the scheduler's lock, which costs more than
		// most waits, but a worker may need this thread's processor).
		if spins&4095 == 0 {
			runtime.Gosched()
		}
	}
}

// worker runs share w of each loop that has one for it.
func (t *Team) worker(w int) {
	var seen uint64
	for {
		j := t.cur.Load()
		if j.epoch == seen {
			j = t.await(seen)
		}
		seen = j.epoch
		if w < j.n {
			j.fn(w)
			j.done.Add(-1)
		}
	}
}

// await returns the next loop after epoch seen, spinning for up to
// spinLimit and then parking until Run wakes it.
func (t *Team) await(seen uint64) *job {
	start := time.Now()
	for spins := 0; ; spins++ {
		if j := t.cur.Load(); j.epoch != seen {
			return j
		}
		if spins&4095 != 4095 {
			continue
		}
		// Now and then: give the processor to whoever else needs it
		// (more goroutines than processors), and park after spinLimit.
		runtime.Gosched()
		if time.Since(start) < spinLimit {
			continue
		}
		// Park. Run publishes the job before it reads sleepers, and this
		// worker counts itself before it looks again, so one of the two
		// sees the other.
		t.mu.Lock()
		t.sleepers.Add(1)
		for t.cur.Load().epoch == seen {
			t.wake.Wait()
		}
		t.sleepers.Add(-1)
		t.mu.Unlock()
		start, spins = time.Now(), 0
	}
}
