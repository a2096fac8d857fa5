//go:build prover_checks

package prover

func init() { proverChecks = true }
