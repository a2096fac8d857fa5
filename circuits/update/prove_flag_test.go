//go:build prover_checks

package update

func init() { proverChecks = true }
