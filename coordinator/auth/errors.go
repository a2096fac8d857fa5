package auth

import "errors"

var (
	// ErrMalformedToken reports a string that is not an API key.
	ErrMalformedToken = errors.New("auth: malformed api key")
	// ErrUnauthorized reports a key that does not authenticate: unknown,
	// wrong secret, revoked or expired.
	ErrUnauthorized = errors.New("auth: unauthorized")
	// ErrForbidden reports an authenticated principal whose role is not
	// allowed the action.
	ErrForbidden = errors.New("auth: forbidden")
	// ErrNotFound reports a key ID the store does not hold.
	ErrNotFound = errors.New("auth: key not found")
	// ErrDuplicate reports a key ID the store already holds.
	ErrDuplicate = errors.New("auth: duplicate key id")
	// ErrInvalidRole reports a role other than the four defined.
	ErrInvalidRole = errors.New("auth: invalid role")
	// ErrInvalidSubject reports an empty or too long subject.
	ErrInvalidSubject = errors.New("auth: invalid subject")
)
