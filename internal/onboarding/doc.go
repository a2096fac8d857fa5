// Package onboarding holds the tests of a solver's and a verifier's
// journey with real components — the coordinator assembled as `beluga
// coordinator` assembles it (coordinatord: service, HTTP API, libp2p
// node) and the real daemons — each on its own libp2p host on 127.0.0.1:
// a solver without a bond is told so and works once the bond is
// deposited, a daemon started before its coordinator joins when it comes
// up, daemons register again after the coordinator restarts, and a paused
// solver withdraws its offer and takes no job.
package onboarding
