// Package auth issues and checks the coordinator's API keys.
//
// A key is 32 random bytes plus a public 8-byte key ID, printed once, at
// issue time, as
//
//	blg_<16 hex digits of key ID>_<43 base64url characters of secret>
//
// (64 characters in all). The coordinator stores only a [Record]: the key
// ID, a SHA-256 hash of the key, the role and the subject (the client,
// solver, verifier or operator account the key acts for). Lookup is by key
// ID, so authentication is one [Store.Get] and one hash, whatever the
// number of keys.
//
// # Security properties
//
//   - A stolen store reveals no usable key: the secret has 256 bits of
//     entropy, so an unsalted SHA-256 is enough (no password stretching is
//     needed, and none could help).
//   - The hash is compared in constant time. The key ID is public and is not
//     compared secretly.
//   - [Token.String] redacts the secret so a Token in a log line leaks
//     nothing; only [Token.Reveal] prints the full key.
//   - All authentication failures wrap [ErrUnauthorized]; the wrapped
//     reason (unknown ID, wrong secret, revoked, expired) is for server
//     logs, not for the HTTP response. Store failures are returned as they
//     are, so that an outage is a 5xx, not a 401.
//   - Randomness and the clock are injected: pass crypto/rand.Reader and
//     time.Now outside tests.
//
// # Parsing outside bytes
//
// [ParseToken] checks length, prefix, alphabet and canonical encoding
// before decoding and never panics; see FuzzParseToken.
package auth
