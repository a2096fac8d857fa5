package lifecycle

import "fmt"

// Action is a money movement a state implies. The ledger engineer maps
// each to transfers; amounts come from the job (escrow, bond sizes, audit
// policy), not from here.
type Action uint8

// The actions.
const (
	// LockClientEscrow reserves the bid's maximum cost from the client's
	// balance (posted).
	LockClientEscrow Action = iota + 1
	// LockSolverBond reserves the matched solver's bond, sized by the audit
	// policy (matched).
	LockSolverBond
	// LockVerifierBond reserves the auditing verifier's bond (assign_audit);
	// it is held through a dispute the verifier raises.
	LockVerifierBond
	// PaySolversProRata posts the trade price × CU from escrow to the
	// job's solvers, split by committed steps with ProRata (settled).
	PaySolversProRata
	// PayVerifiers posts the audit fees from escrow (settled).
	PayVerifiers
	// ChargeFee posts the coordinator's fee from escrow (settled).
	ChargeFee
	// RefundClientRemainder returns what is left of the escrow (the
	// difference between the bid's maximum and the trade price, and any
	// unused audit budget) to the client (settled).
	RefundClientRemainder
	// ReleaseSolverBonds voids the bond reservations of the job's solvers,
	// vanished ones included (settled, cancelled; after a cheat ruling, of
	// every solver but the cheater).
	ReleaseSolverBonds
	// SlashSolverBondToClient posts the cheating solver's bond to the
	// client as compensation, less the verifier's bounty
	// (adjudicated_cheat).
	SlashSolverBondToClient
	// PayVerifierBounty posts the bounty from the slashed bond to the
	// verifier that proved the fraud (adjudicated_cheat).
	PayVerifierBounty
	// ReleaseVerifierBond voids an auditor's bond reservation (assign_audit,
	// for the auditor replaced; settled; adjudicated_cheat, the winning
	// verifier's; expired).
	ReleaseVerifierBond
	// RefundClientEscrow returns the whole escrow to the client
	// (adjudicated_cheat, cancelled, expired).
	RefundClientEscrow
	// SlashVerifierBondToSolver posts the falsely accusing verifier's bond
	// to the accused solver, compensating the delay
	// (adjudicated_false_accusation).
	SlashVerifierBondToSolver

	numActions = iota + 1
)

// String returns the action's snake_case name, or "Action(N)".
func (a Action) String() string {
	switch a {
	case LockClientEscrow:
		return "lock_client_escrow"
	case LockSolverBond:
		return "lock_solver_bond"
	case LockVerifierBond:
		return "lock_verifier_bond"
	case PaySolversProRata:
		return "pay_solvers_pro_rata"
	case PayVerifiers:
		return "pay_verifiers"
	case ChargeFee:
		return "charge_fee"
	case RefundClientRemainder:
		return "refund_client_remainder"
	case ReleaseSolverBonds:
		return "release_solver_bonds"
	case SlashSolverBondToClient:
		return "slash_solver_bond_to_client"
	case PayVerifierBounty:
		return "pay_verifier_bounty"
	case ReleaseVerifierBond:
		return "release_verifier_bond"
	case RefundClientEscrow:
		return "refund_client_escrow"
	case SlashVerifierBondToSolver:
		return "slash_verifier_bond_to_solver"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Actions returns the money movements a job implies on entering state s,
// in the order to perform them (nil for states that move no money, and
// for unknown states):
//
//	posted                        lock_client_escrow
//	matched                       lock_solver_bond
//	running, committed            none
//	audit_window                  none (assign_audit moves the auditors' bonds:
//	                              see EventActions)
//	settled                       pay_solvers_pro_rata, pay_verifiers, charge_fee,
//	                              refund_client_remainder, release_solver_bonds,
//	                              release_verifier_bond
//	disputed                      none: the auditor's bond, locked at assign_audit,
//	                              is held (settlement is blocked)
//	adjudicated_cheat             slash_solver_bond_to_client, pay_verifier_bounty,
//	                              release_verifier_bond, refund_client_escrow,
//	                              release_solver_bonds (the other solvers')
//	adjudicated_false_accusation  slash_verifier_bond_to_solver
//	resumable                     none: the vanished solver's bond stays locked
//	                              until its committed steps are audited
//	cancelled                     refund_client_escrow, release_solver_bonds
//	expired                       refund_client_escrow, release_solver_bonds,
//	                              release_verifier_bond
//
// After a cheat ruling nobody is paid for the job, not even solvers of a
// resumed job whose own steps were honest: the client received no valid
// result. That is a policy choice the settlement code may refine.
func Actions(s State) []Action {
	switch s {
	case Posted:
		return []Action{LockClientEscrow}
	case Matched:
		return []Action{LockSolverBond}
	case Settled:
		return []Action{PaySolversProRata, PayVerifiers, ChargeFee, RefundClientRemainder, ReleaseSolverBonds, ReleaseVerifierBond}
	case AdjudicatedCheat:
		return []Action{SlashSolverBondToClient, PayVerifierBounty, ReleaseVerifierBond, RefundClientEscrow, ReleaseSolverBonds}
	case AdjudicatedFalseAccusation:
		return []Action{SlashVerifierBondToSolver}
	case Cancelled:
		return []Action{RefundClientEscrow, ReleaseSolverBonds}
	case Expired:
		return []Action{RefundClientEscrow, ReleaseSolverBonds, ReleaseVerifierBond}
	}
	return nil
}

// EventActions returns the money movements of an event that leaves the
// job in its state, beyond what Actions says of the state (nil for every
// other event):
//
//	assign_audit                  release_verifier_bond (the previous auditor's,
//	                              if any), lock_verifier_bond (the new auditor's)
func EventActions(e Event) []Action {
	if e == EventAssignAudit {
		return []Action{ReleaseVerifierBond, LockVerifierBond}
	}
	return nil
}
