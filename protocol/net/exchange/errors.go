package exchange

import "errors"

// Errors.
var (
	// ErrNoHolder: no holder could serve the checkpoint.
	ErrNoHolder = errors.New("exchange: no holder could serve")
	// ErrBadChunk: a holder sent a chunk that does not match its hash.
	ErrBadChunk = errors.New("exchange: chunk does not match its hash")

	// ErrNotGranted wraps every refusal of a request for lack of a valid
	// grant; one of the errors below says why.
	ErrNotGranted = errors.New("exchange: not granted")
	// ErrNoGrant: the request carries no grant.
	ErrNoGrant = errors.New("no grant")
	// ErrForgedGrant: the grant is not signed by the coordinator.
	ErrForgedGrant = errors.New("grant not issued by the coordinator")
	// ErrGrantOtherJob: the grant is for another job.
	ErrGrantOtherJob = errors.New("grant for another job")
	// ErrGrantOtherPeer: the grant names another peer.
	ErrGrantOtherPeer = errors.New("grant to another peer")
	// ErrGrantExpired: the grant has expired.
	ErrGrantExpired = errors.New("grant expired")
	// ErrNotInCheckpoint: a requested chunk is not part of the requested
	// checkpoint.
	ErrNotInCheckpoint = errors.New("exchange: chunk not in the checkpoint")
)
