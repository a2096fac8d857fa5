// Package console is the coordinator's web console: the pages a client,
// a solver, a verifier and the operator use in a browser, served by
// `beluga coordinator` at / beside the HTTP API (/v1/…).
//
// # Same API, no back door
//
// Every page is built from answers of the coordinator's public HTTP API,
// called in-process through its http.Handler with the visitor's own API
// key (Console.call): a page shows exactly what `curl` with that key
// would, and a form does exactly what the API allows that key. The
// console holds no state of its own beyond the log-in cookie.
//
// # Why server-rendered HTML and no front-end build
//
// Pages are html/template (contextual escaping) with one stylesheet and
// ~60 lines of hand-written JavaScript, all embedded with go:embed:
//
//   - nothing to build, pin or audit beyond the Go toolchain (a bundler
//     and its hundreds of npm packages would be a second supply chain for
//     a few forms and tables);
//   - every page works without JavaScript; the script only refreshes live
//     regions (job progress and its loss curve, the network's state) by
//     fetching server-rendered fragments every second or two;
//   - a strict Content-Security-Policy (default-src 'self', no inline
//     script or style) holds: the script's network access is the
//     coordinator's origin and nothing else;
//   - pages stay small and fast with thousands of jobs (lists are pages
//     of the API's paginated lists), and Go tests can check each page.
//
// # Sessions and forms
//
// Logging in (a pasted API key, a self-serve sign-up, or a devnet link)
// stores the key in an HttpOnly, SameSite=Strict cookie. Every form that
// changes state carries a CSRF token (an HMAC of the key under a
// per-process secret) and an Idempotency-Key minted when the form was
// rendered, so that a double submit is replayed by the API, not run twice.
// A form's input is checked before the API is called; what the API
// refuses is shown next to the field it concerns, and nothing changes.
package console
