package vault

import "errors"

var (
	// ErrInvalidKey reports key material that is not 32 bytes, a key ID of
	// zero or a repeated key ID.
	ErrInvalidKey = errors.New("vault: invalid key")
	// ErrNoKey reports an empty keyring, or a missing key file or variable.
	ErrNoKey = errors.New("vault: no key")
	// ErrUnknownKey reports an envelope sealed under a key ID the keyring
	// does not hold.
	ErrUnknownKey = errors.New("vault: unknown key id")
	// ErrMalformed reports bytes that are not a v1 envelope.
	ErrMalformed = errors.New("vault: malformed envelope")
	// ErrDecrypt reports an envelope that fails authentication: tampered,
	// sealed for another payee, or under a different key with the same ID.
	ErrDecrypt = errors.New("vault: decryption failed")
	// ErrInsecureKeyFile reports a keyring file that its group or others
	// may read or write.
	ErrInsecureKeyFile = errors.New("vault: key file is accessible to group or others")
	// ErrInvalidPayeeID reports an empty or too long payee ID.
	ErrInvalidPayeeID = errors.New("vault: invalid payee id")
)
