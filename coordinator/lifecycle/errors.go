package lifecycle

import "errors"

var (
	// ErrIllegalTransition reports an event the job's state does not accept.
	ErrIllegalTransition = errors.New("lifecycle: illegal transition")
	// ErrUnknownState reports a State value or name outside the defined set.
	ErrUnknownState = errors.New("lifecycle: unknown state")
	// ErrUnknownEvent reports an Event value or name outside the defined set.
	ErrUnknownEvent = errors.New("lifecycle: unknown event")
	// ErrInvalidSplit reports a pro-rata split with a negative total, a
	// negative weight, no positive weight, or weights whose sum overflows.
	ErrInvalidSplit = errors.New("lifecycle: invalid pro-rata split")
)
