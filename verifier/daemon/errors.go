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
	// ErrStopping: the daemon is shutting down and takes no new work.
	ErrStopping = errors.New("verifier: shutting down")
)
