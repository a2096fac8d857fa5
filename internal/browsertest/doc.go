// Package browsertest drives the coordinator's web console
// (coordinator/console) in a real headless Chromium against a real
// network — the devnet's coordinator, solvers and verifiers, serving the
// console as `beluga devnet --console` does — through each role's
// onboarding path, checking accessibility basics on every page (every
// control labelled, keyboard-only navigation, text contrast ≥ 4.5:1 from
// computed styles) and writing screenshots at 1280×800 and 390×844.
//
// The tests skip when no Chromium is installed (Debian: apt-get install
// chromium) or with -short. Screenshots and the report's PDF go to
// $BELUGA_SCREENSHOTS (CI keeps that directory as an artifact), else to
// the test's temporary directory.
package browsertest
