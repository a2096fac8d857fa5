package node

import (
	"errors"
	"fmt"

	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// The node's errors. A refused request is answered with the error's text;
// callers test with errors.Is.
var (
	// ErrNoService: Config.Service is nil.
	ErrNoService = errors.New("node: no service")
	// ErrClosed: the node is closed.
	ErrClosed = errors.New("node: closed")
	// ErrUnknownJob: no job with that ID was offered here. It wraps
	// wire.ErrWrongJob.
	ErrUnknownJob = fmt.Errorf("%w: unknown job", wire.ErrWrongJob)
	// ErrNotYours: the sender is not the party the job or audit was given
	// to (a trace from a peer not running the job, a report from a peer
	// not auditing it, a checkpoint nobody asked it to hold).
	ErrNotYours = errors.New("node: not the sender's job or audit")
	// ErrJobOver: the job has ended.
	ErrJobOver = errors.New("node: the job is over")
	// ErrNoKeys: a confidential job, and no zk verifying keys to referee it.
	ErrNoKeys = errors.New("node: no zk verifying keys for a confidential job")
	// ErrBadReport: an audit report whose signed findings are not an
	// audit of the committed run with the beacon's samples
	// (report.Findings.CheckAgainst), or that names no disputable step.
	ErrBadReport = errors.New("node: bad audit report")
)

// ErrBusy: the job is being moved (its audit reassigned, settled or
// disputed); the request may be retried.
var ErrBusy = errors.New("node: the job is busy; retry")
