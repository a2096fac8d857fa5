package daemon

import (
	"errors"

	"github.com/beluga-compute/beluga/protocol/net/join"
)

// Errors.
var (
	// ErrCoordinatorAddr: the coordinator's address is not a full
	// multiaddr ending in /p2p/<peer ID>.
	ErrCoordinatorAddr = join.ErrCoordinatorAddr
	// ErrConfidential: the state of a confidential job never leaves its
	// solver (no checkpoint served, no tensor opened to a referee).
	ErrConfidential = errors.New("solver: a confidential job's state never leaves its solver")
	// ErrPaused: the machine's owner is using it (the idle gate is
	// closed); the solver takes no job until it is idle again.
	ErrPaused = errors.New("solver: paused while the machine's owner uses it")
	// ErrStopping: the daemon is shutting down and takes no new work.
	ErrStopping = errors.New("solver: shutting down")
	// ErrRunDropped: the run was dropped (RunTTL, MaxRuns) before its
	// work was done.
	ErrRunDropped = errors.New("solver: run dropped")
)
