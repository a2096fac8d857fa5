// Package vault keeps payees' bank details encrypted at rest.
//
// Each record is sealed with AES-256-GCM under the keyring's primary key,
// with a fresh random 96-bit nonce, into a versioned envelope:
//
//	"v1" | key ID (4 bytes, big-endian) | nonce (12 bytes) | ciphertext and tag
//
// The additional authenticated data is the envelope header (version and
// key ID) followed by the payee ID, so a record only opens for the payee it
// was sealed for.
//
// # Security properties
//
//   - Confidentiality and integrity of bank details under the key; any
//     change to the envelope, and any attempt to open a record as another
//     payee, fails with ErrDecrypt.
//   - Key rotation: the key ID travels in the envelope, so records sealed
//     under older keys still open while the keyring holds those keys;
//     [Vault.Rotate] re-seals a record under the primary key. Once no record
//     names an old key, drop it from the keyring.
//   - Nonces are random (96 bits) from the injected reader, which must be
//     crypto/rand.Reader in production. With random nonces one key must not
//     seal more than 2^32 records; rotate well before that.
//   - The key itself lives in a file or an environment variable (hex).
//     LoadKeyringFile refuses a file its group or others may access
//     (ErrInsecureKeyFile: chmod 600); LoadKeyringEnv removes the variable
//     from the environment once read, so child processes do not inherit
//     it. Errors and String methods never print key material, and
//     BankDetails masks account numbers when printed. Not covered: a key
//     file's directory, backups, and the process's memory.
//
// # Parsing outside bytes
//
// [Vault.Open] bounds and parses the envelope before any decryption and
// never panics on malformed input; see FuzzOpen.
package vault
