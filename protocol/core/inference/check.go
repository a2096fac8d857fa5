package inference

import (
	"errors"
	"fmt"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Check is SPEC.md §21.4's exact check of receipt rc for request req and
// the output it claims, with g the model whose state digest is model: the
// signature, the receipt's bindings, the stop rule, then ONE
// teacher-forced forward pass over prompt + output that re-samples every
// byte and rebuilds the position root.
//
// It returns nil for a correct receipt; ErrSignature when the signature
// does not verify; ErrNotFor when the receipt is about another request,
// output or model than the ones given (nobody's fault); and ErrFraud —
// with the first wrong position where there is one — when the solver
// signed what no honest run produces for this request.
func Check(g *gpt.Generator, model merkle.Digest, req *Request, output []byte, rc *Receipt) error {
	if err := CheckReceipt(g.Config().Context, model, req, output, rc); err != nil {
		return err
	}
	text := append(append(make([]byte, 0, len(req.Prompt)+len(output)), req.Prompt...), output...)
	leaves := make([]merkle.Digest, 0, len(output))
	buf := make([]byte, 0, 13+8*gpt.Vocab)
	p := len(req.Prompt)
	err := g.Positions(text[:len(text)-1], p-1, func(r int, z []int64, e int) error {
		k := r - p + 1
		want := gpt.Sample(z, e, req.Temperature, req.Seed, int64(k))
		if want != output[k] {
			return &FraudError{Position: k, Why: fmt.Sprintf("position %d: the model samples byte %d, the output has %d", k, want, output[k])}
		}
		buf = LeafData(buf[:0], k, want, z, e)
		leaves = append(leaves, PositionTree.Leaf(buf))
		return nil
	})
	if err != nil {
		return err
	}
	if PositionTree.Root(leaves) != rc.Positions {
		return &FraudError{Position: -1, Why: "the position root does not match the model's logits (every byte agrees: another model's or other weights' logits)"}
	}
	return nil
}

// FraudError is ErrFraud with where: Position is the first output byte
// the model does not sample (0-based), or −1 when the fraud is not one
// byte's (the stop rule, the counts, the position root).
type FraudError struct {
	Position int
	Why      string
}

// Error implements error.
func (e *FraudError) Error() string { return ErrFraud.Error() + ": " + e.Why }

// Unwrap makes a FraudError ErrFraud.
func (e *FraudError) Unwrap() error { return ErrFraud }

// FraudPosition is the position a Check error blames: the byte index for
// a wrong byte, −1 for anything else.
func FraudPosition(err error) int {
	var f *FraudError
	if errors.As(err, &f) {
		return f.Position
	}
	return -1
}

// CheckReceipt is the part of Check that needs no forward pass, for a
// model of context length contextLen: the signature, the receipt's
// bindings to req, output and model, the counts and the stop rule. Its
// errors are Check's: ErrSignature, ErrNotFor, or an ErrFraud
// (*FraudError, Position −1).
func CheckReceipt(contextLen int, model merkle.Digest, req *Request, output []byte, rc *Receipt) error {
	if err := rc.Verify(); err != nil {
		return err
	}
	if rc.Request != req.Hash() {
		return fmt.Errorf("%w: the receipt's request hash is not this request's", ErrNotFor)
	}
	if rc.Output != OutputHash(output) {
		return fmt.Errorf("%w: the receipt's output hash is not this output's", ErrNotFor)
	}
	if req.Model != model {
		return fmt.Errorf("%w: the request is for model %x, the check has %x", ErrNotFor, req.Model[:6], model[:6])
	}
	fraud := func(format string, a ...any) error {
		return &FraudError{Position: -1, Why: fmt.Sprintf(format, a...)}
	}
	T := contextLen
	switch {
	case rc.Model != req.Model:
		return fraud("signed for model %x, the request asked for %x", rc.Model[:6], req.Model[:6])
	case req.Validate(T) != nil:
		return fraud("signed for a request that cannot be served: %v", req.Validate(T))
	case rc.Seed != req.Seed || int64(rc.Temperature) != req.Temperature:
		return fraud("signed seed %d and temperature %d, the request has %d and %d", rc.Seed, rc.Temperature, req.Seed, req.Temperature)
	case int(rc.PromptTokens) != len(req.Prompt) || int(rc.CompletionTokens) != len(output):
		return fraud("signed %d prompt and %d completion tokens, there are %d and %d", rc.PromptTokens, rc.CompletionTokens, len(req.Prompt), len(output))
	case len(output) < 1 || len(output) > req.MaxTokens:
		return fraud("%d output bytes, want 1 to max_tokens %d", len(output), req.MaxTokens)
	}
	// The stop rule: no stop sequence ends before the last byte; the last
	// ends one exactly when the finish reason is stop; length means
	// max_tokens bytes.
	for j := 1; j < len(output); j++ {
		if stopAt(output[:j], req.Stop) {
			return fraud("the output holds a stop sequence ending at byte %d but goes on", j)
		}
	}
	ends := stopAt(output, req.Stop)
	switch {
	case rc.Finish == FinishStop && !ends:
		return fraud("finish reason stop, but the output ends with no stop sequence")
	case rc.Finish == FinishLength && ends:
		return fraud("finish reason length, but the output ends with a stop sequence")
	case rc.Finish == FinishLength && len(output) != req.MaxTokens:
		return fraud("finish reason length after %d bytes, max_tokens is %d", len(output), req.MaxTokens)
	}
	return nil
}
