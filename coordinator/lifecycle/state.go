package lifecycle

import (
	"fmt"
	"slices"
)

// State is where a job is in its life.
type State uint8

// The states. Zero is not a state, so a zero State is caught as unknown.
const (
	// Posted: the client's bid is on the book, its escrow locked.
	Posted State = iota + 1
	// Matched: a solver took the job and locked its bond.
	Matched
	// Running: the solver is executing and committing steps.
	Running
	// Committed: the solver committed the final trace root.
	Committed
	// AuditWindow: challenges are drawn; verifiers audit until the window
	// closes.
	AuditWindow
	// Settled: paid out. Terminal.
	Settled
	// Disputed: a verifier raised evidence of a mismatch; the bisection
	// game runs.
	Disputed
	// AdjudicatedCheat: the referee found the solver cheated. Terminal.
	AdjudicatedCheat
	// AdjudicatedFalseAccusation: the referee found the verifier wrong.
	AdjudicatedFalseAccusation
	// Resumable: the solver vanished; the job waits for a new match from
	// its last committed checkpoint.
	Resumable
	// Cancelled: the client withdrew the job before it ran to completion.
	// Terminal.
	Cancelled
	// Expired: the job was not over by its deadline (the coordinator's
	// bound on a job's life); the escrow goes back to the client and every
	// bond is released. Terminal.
	Expired

	numStates = iota + 1 // one more than the last state
)

// stateNames maps states to names; a function, not a variable, so the
// package holds no mutable state.
func stateNames() [numStates]string {
	return [numStates]string{
		Posted:                     "posted",
		Matched:                    "matched",
		Running:                    "running",
		Committed:                  "committed",
		AuditWindow:                "audit_window",
		Settled:                    "settled",
		Disputed:                   "disputed",
		AdjudicatedCheat:           "adjudicated_cheat",
		AdjudicatedFalseAccusation: "adjudicated_false_accusation",
		Resumable:                  "resumable",
		Cancelled:                  "cancelled",
		Expired:                    "expired",
	}
}

// States returns every state, in declaration order.
func States() []State {
	out := make([]State, 0, numStates-1)
	for s := Posted; s < numStates; s++ {
		out = append(out, s)
	}
	return out
}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool { return s >= Posted && s < numStates }

// String returns the state's snake_case name, or "State(N)".
func (s State) String() string {
	if !s.Valid() {
		return fmt.Sprintf("State(%d)", uint8(s))
	}
	return stateNames()[s]
}

// MarshalText encodes the state by name, for storage and JSON.
func (s State) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownState, uint8(s))
	}
	return []byte(stateNames()[s]), nil
}

// UnmarshalText decodes a state name.
func (s *State) UnmarshalText(b []byte) error {
	names := stateNames()
	i := slices.Index(names[:], string(b))
	if i < int(Posted) {
		return fmt.Errorf("%w: %q", ErrUnknownState, b)
	}
	*s = State(i)
	return nil
}

// Terminal reports whether s accepts no events.
func (s State) Terminal() bool {
	return s == Settled || s == AdjudicatedCheat || s == Cancelled || s == Expired
}

// Event is something that happens to a job.
type Event uint8

// The events. Zero is not an event.
const (
	// EventMatch: the market matched the job with a solver.
	EventMatch Event = iota + 1
	// EventStart: the solver started executing.
	EventStart
	// EventCheckpoint: the solver committed a checkpoint (a step's digest
	// or a stored checkpoint); the job stays running.
	EventCheckpoint
	// EventCommit: the solver committed the final trace root.
	EventCommit
	// EventOpenAudit: the beacon was revealed after the commitment and the
	// audit challenges were drawn.
	EventOpenAudit
	// EventCloseAudit: the audit window elapsed with no dispute open.
	EventCloseAudit
	// EventDispute: a verifier posted fraud evidence (and its bond).
	EventDispute
	// EventRuleCheat: the referee ruled against the solver.
	EventRuleCheat
	// EventRuleFalseAccusation: the referee ruled against the verifier.
	EventRuleFalseAccusation
	// EventResumeAudit: after a false accusation, the audit window resumes.
	EventResumeAudit
	// EventVanish: the solver missed its heartbeats.
	EventVanish
	// EventCancel: the client withdrew the job.
	EventCancel
	// EventAssignAudit: the audit was given to a verifier, whose bond is
	// locked for it (the previous auditor's, if any, is released); the job
	// stays in the audit window.
	EventAssignAudit
	// EventExpire: the job's deadline passed before it ended.
	EventExpire

	numEvents = iota + 1 // one more than the last event
)

// eventNames maps events to names.
func eventNames() [numEvents]string {
	return [numEvents]string{
		EventMatch:               "match",
		EventStart:               "start",
		EventCheckpoint:          "checkpoint",
		EventCommit:              "commit",
		EventOpenAudit:           "open_audit",
		EventCloseAudit:          "close_audit",
		EventDispute:             "dispute",
		EventRuleCheat:           "rule_cheat",
		EventRuleFalseAccusation: "rule_false_accusation",
		EventResumeAudit:         "resume_audit",
		EventVanish:              "vanish",
		EventCancel:              "cancel",
		EventAssignAudit:         "assign_audit",
		EventExpire:              "expire",
	}
}

// Events returns every event, in declaration order.
func Events() []Event {
	out := make([]Event, 0, numEvents-1)
	for e := EventMatch; e < numEvents; e++ {
		out = append(out, e)
	}
	return out
}

// Valid reports whether e is one of the defined events.
func (e Event) Valid() bool { return e >= EventMatch && e < numEvents }

// String returns the event's snake_case name, or "Event(N)".
func (e Event) String() string {
	if !e.Valid() {
		return fmt.Sprintf("Event(%d)", uint8(e))
	}
	return eventNames()[e]
}

// MarshalText encodes the event by name.
func (e Event) MarshalText() ([]byte, error) {
	if !e.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownEvent, uint8(e))
	}
	return []byte(eventNames()[e]), nil
}

// UnmarshalText decodes an event name.
func (e *Event) UnmarshalText(b []byte) error {
	names := eventNames()
	i := slices.Index(names[:], string(b))
	if i < int(EventMatch) {
		return fmt.Errorf("%w: %q", ErrUnknownEvent, b)
	}
	*e = Event(i)
	return nil
}

// Transition is one row of the transition table.
type Transition struct {
	From  State
	Event Event
	To    State
}

// numTransitions is the number of rows in the transition table.
const numTransitions = 24

// table is the transition table: the only legal moves.
func table() [numTransitions]Transition {
	return [numTransitions]Transition{
		{Posted, EventMatch, Matched},
		{Posted, EventCancel, Cancelled},
		{Matched, EventStart, Running},
		{Matched, EventVanish, Resumable},
		{Running, EventCheckpoint, Running},
		{Running, EventCommit, Committed},
		{Running, EventVanish, Resumable},
		{Committed, EventOpenAudit, AuditWindow},
		{AuditWindow, EventCloseAudit, Settled},
		{AuditWindow, EventDispute, Disputed},
		{Disputed, EventRuleCheat, AdjudicatedCheat},
		{Disputed, EventRuleFalseAccusation, AdjudicatedFalseAccusation},
		{AdjudicatedFalseAccusation, EventResumeAudit, AuditWindow},
		{Resumable, EventMatch, Matched},
		{Resumable, EventCancel, Cancelled},
		{AuditWindow, EventAssignAudit, AuditWindow},
		// Every state that is not terminal expires.
		{Posted, EventExpire, Expired},
		{Matched, EventExpire, Expired},
		{Running, EventExpire, Expired},
		{Committed, EventExpire, Expired},
		{AuditWindow, EventExpire, Expired},
		{Disputed, EventExpire, Expired},
		{AdjudicatedFalseAccusation, EventExpire, Expired},
		{Resumable, EventExpire, Expired},
	}
}

// Transitions returns the transition table.
func Transitions() []Transition {
	t := table()
	return t[:]
}

// Apply returns the state a job in state s moves to on event e. It fails
// with ErrUnknownState or ErrUnknownEvent for values outside the defined
// sets and with ErrIllegalTransition for any pair not in the table; on
// error the returned state is s, unchanged.
func Apply(s State, e Event) (State, error) {
	if !s.Valid() {
		return s, fmt.Errorf("%w: %d", ErrUnknownState, uint8(s))
	}
	if !e.Valid() {
		return s, fmt.Errorf("%w: %d", ErrUnknownEvent, uint8(e))
	}
	for _, t := range table() {
		if t.From == s && t.Event == e {
			return t.To, nil
		}
	}
	if s.Terminal() {
		return s, fmt.Errorf("%w: %s on %s: the job is over", ErrIllegalTransition, e, s)
	}
	return s, fmt.Errorf("%w: %s on %s (accepts %v)", ErrIllegalTransition, e, s, Accepts(s))
}

// Accepts returns the events state s accepts, in declaration order.
func Accepts(s State) []Event {
	var out []Event
	for e := EventMatch; e < numEvents; e++ {
		for _, t := range table() {
			if t.From == s && t.Event == e {
				out = append(out, e)
			}
		}
	}
	return out
}
