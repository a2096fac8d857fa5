package auth

import "fmt"

// Role is what a key may do.
type Role uint8

const (
	// RoleClient funds escrow and submits jobs.
	RoleClient Role = 1
	// RoleSolver posts asks and runs jobs.
	RoleSolver Role = 2
	// RoleVerifier takes audit tasks and raises disputes.
	RoleVerifier Role = 3
	// RoleOperator runs the coordinator: payouts, adjudication, keys.
	RoleOperator Role = 4
)

// String returns "client", "solver", "verifier", "operator" or
// "invalid(N)".
func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleSolver:
		return "solver"
	case RoleVerifier:
		return "verifier"
	case RoleOperator:
		return "operator"
	}
	return fmt.Sprintf("invalid(%d)", uint8(r))
}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return r >= RoleClient && r <= RoleOperator }

// ParseRole parses a role's String form.
func ParseRole(s string) (Role, error) {
	for r := RoleClient; r <= RoleOperator; r++ {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrInvalidRole, s)
}
