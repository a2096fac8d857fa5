package daemon

// The daemon's job-level events: the messages of its slog records, each
// with the attribute "job" (its ID's first 12 hex digits). Tests and log
// readers match on these, never on other text.
const (
	// EventAssigned: the coordinator gave this solver a job ("steps",
	// "resume_step"; "resumed_here" when it is the job already running,
	// given back after a coordinator restart).
	EventAssigned = "job assigned"
	// EventCheckpoint: a checkpoint was saved and announced ("step",
	// "of").
	EventCheckpoint = "checkpoint"
	// EventResumedFrom: the job resumes from a checkpoint fetched from
	// other peers ("step", "holders"), checked against its committed
	// digest.
	EventResumedFrom = "resumes job from a fetched checkpoint"
	// EventCommitted: the job's trace was committed to the coordinator
	// ("steps", "final_digest"); its audit follows.
	EventCommitted = "job committed"
	// EventFailed: the job failed here ("job", "err": why, e.g. its data
	// is not on this machine); the solver is idle again and the
	// coordinator gives the job to another solver.
	EventFailed = "job failed"
	// EventPaused: the machine's owner is back; the solver withdraws its
	// offer and a running job pauses at its next checkpoint.
	EventPaused = "paused: the machine's owner is using it; offer withdrawn"
	// EventResumed: the machine is idle again; the solver offers itself
	// again and a paused job resumes.
	EventResumed = "resumed: the machine is idle; offering again"
)
