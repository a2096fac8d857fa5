// Package lifecycle is the job state machine and the money each state
// implies.
//
//	from                          event                  to
//	posted                        match                  matched
//	posted                        cancel                 cancelled
//	matched                       start                  running
//	matched                       vanish                 resumable
//	running                       checkpoint             running
//	running                       commit                 committed
//	running                       vanish                 resumable
//	committed                     open_audit             audit_window
//	audit_window                  close_audit            settled
//	audit_window                  dispute                disputed
//	disputed                      rule_cheat             adjudicated_cheat
//	disputed                      rule_false_accusation  adjudicated_false_accusation
//	adjudicated_false_accusation  resume_audit           audit_window
//	resumable                     match                  matched
//	resumable                     cancel                 cancelled
//	audit_window                  assign_audit           audit_window
//	every state but the terminal  expire                 expired
//
// [Apply] is the only way to move a job; it consults one transition table
// and rejects every other (state, event) pair with [ErrIllegalTransition].
// Terminal states (settled, adjudicated_cheat, cancelled, expired) accept
// no events. [Actions] lists the money movements a state implies; whoever
// drives the ledger performs them once each time the job enters the state,
// with transfer IDs derived from (job ID, the transition's sequence number
// in the job's history, action, party), so that replaying a transition
// after a crash is idempotent while re-entering a state (a second match, a
// second dispute) moves money again.
//
// # Resubmission
//
// A solver that vanishes (misses its heartbeats) sends a matched or running
// job to resumable: it restarts from the last committed checkpoint when the
// market matches it again, with a new solver and a new bond. The vanished
// solver's bond stays locked: its committed steps are part of the final
// trace and are audited with the rest. At settlement every solver is paid
// pro rata by the steps it committed ([ProRata]).
//
// # Deadlines
//
// Every job has a deadline (its coordinator's bound on a job's life). A
// job that is not over by then expires from whatever state it is in: no
// party can hold money locked for longer by staying silent, lying, or
// never coming.
//
// # Money in each state
//
// See [Actions] and [EventActions]. In short: posting locks the client's
// escrow (the bid's maximum cost); matching locks the solver's bond;
// assigning the audit locks the verifier's bond (and releases the previous
// auditor's); settling pays solvers pro rata, pays the auditor and the
// fee, refunds the client the rest and releases bonds; a dispute holds the
// disputing auditor's bond; a ruling against the solver slashes its bond
// to the client and the verifier's bounty and refunds the client; a
// ruling against the verifier slashes the verifier's bond to the solver
// and resumes the audit window; expiry refunds the escrow and releases
// every bond.
package lifecycle
