// Package e2e runs Beluga the way its users do: the real beluga binary,
// built once, started as separate operating-system processes — a
// coordinator, solvers and a verifier on 127.0.0.1 — and driven through
// its command line as the README's walkthrough says, with a coordinator
// restart and a solver killed by SIGKILL along the way.
//
// It has no code of its own beyond the test: the processes share nothing
// but the network and the files the walkthrough names.
package e2e
