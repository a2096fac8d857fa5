package daemon

// The daemon's job-level events: the messages of its slog records, each
// with the attribute "job" (its ID's first 12 hex digits). Tests and log
// readers match on these, never on other text.
const (
	// EventAuditAssigned: the coordinator gave this verifier a job's
	// audit ("solver", "confidential").
	EventAuditAssigned = "audit assigned"
	// EventAudited: the audit ran and its report went to the coordinator.
	EventAudited = "audited: report sent"
)
