package inference

import "errors"

var (
	// ErrRequest: a request that cannot be served (bad lengths, limits).
	ErrRequest = errors.New("invalid inference request")
	// ErrReceipt: bytes that are not a well-formed receipt.
	ErrReceipt = errors.New("malformed inference receipt")
	// ErrSignature: a receipt whose signature does not verify under the
	// key it names; nobody can be blamed for it.
	ErrSignature = errors.New("inference receipt signature does not verify")
	// ErrNotFor: a well-signed receipt that is not for this model,
	// request or output (it says something else about them).
	ErrNotFor = errors.New("inference receipt is for another model, request or output")
	// ErrFraud: a well-signed receipt for this request whose commitment
	// or bytes no honest run produces: proof that its signer cheated.
	ErrFraud = errors.New("inference receipt does not match the model's computation")
)
