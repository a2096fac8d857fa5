//go:build prover_checks

package tile

func init() { proverChecks = true }
