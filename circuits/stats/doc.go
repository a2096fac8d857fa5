// Package stats holds the golden R1CS constraint counts of Beluga's circuits
// (constraints.json) and, in its test, the check that they have not changed:
// a change in a count is either an intended optimisation or a regression,
// and either way it must be looked at and the file updated
// (BELUGA_UPDATE_GOLDEN=1 go test ./circuits/stats). The 16-block SHA-256
// reference, ~10 s to compile, is checked only with BELUGA_SLOW=1.
package stats
