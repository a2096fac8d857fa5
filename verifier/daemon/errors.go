package daemon

import "errors"

// Errors.
var (
	// ErrCoordinatorAddr: the coordinator's address is not a full
	// multiaddr ending in /p2p/<peer ID>.
	ErrCoordinatorAddr = errors.New("verifier: bad coordinator address")
	// ErrStopping: the daemon is shutting down and takes no new work.
	ErrStopping = errors.New("verifier: shutting down")
)
