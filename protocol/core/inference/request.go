package inference

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Limits of a request (SPEC.md §21.1).
const (
	MaxIDBytes   = 64 // a request ID's length
	MaxStops     = 4  // stop sequences per request
	MaxStopBytes = 32 // a stop sequence's length
)

// Request is what a client asks a model for: SPEC.md §21.1. Prompt and
// output are bytes (the GPT's tokens); the gateway converts text.
type Request struct {
	// ID names the request uniquely (the gateway's request ID, 1 to 64
	// bytes), so a receipt answers exactly one billed request.
	ID string
	// Model is the state digest (SPEC.md §11.2, §20.15) of the model's
	// weights.
	Model merkle.Digest
	// Prompt is the text to continue, at least one byte.
	Prompt []byte
	// MaxTokens is the most bytes to generate (≥ 1;
	// len(Prompt) + MaxTokens ≤ the model's context).
	MaxTokens int
	// Seed and Temperature (units of 2^−16, 0 … 2^24) drive §20.17's
	// sampling.
	Seed        uint64
	Temperature int64
	// Stop lists up to 4 byte strings (1 to 32 bytes each); generation
	// stops once the output ends with one of them.
	Stop [][]byte
}

// Validate checks r against the limits of §21.1 for a model of context
// length contextLen.
func (r *Request) Validate(contextLen int) error {
	switch {
	case len(r.ID) < 1 || len(r.ID) > MaxIDBytes:
		return fmt.Errorf("%w: request ID of %d bytes, want 1 to %d", ErrRequest, len(r.ID), MaxIDBytes)
	case len(r.Prompt) < 1:
		return fmt.Errorf("%w: empty prompt", ErrRequest)
	case r.MaxTokens < 1:
		return fmt.Errorf("%w: max_tokens %d, want at least 1", ErrRequest, r.MaxTokens)
	case len(r.Prompt) >= contextLen || r.MaxTokens > contextLen-len(r.Prompt):
		return fmt.Errorf("%w: a prompt of %d tokens and max_tokens %d exceed the model's context of %d tokens", ErrRequest, len(r.Prompt), r.MaxTokens, contextLen)
	case r.Temperature < 0 || r.Temperature > gpt.MaxTemperature:
		return fmt.Errorf("%w: temperature %d/65536 outside 0 to 256", ErrRequest, r.Temperature)
	case len(r.Stop) > MaxStops:
		return fmt.Errorf("%w: %d stop sequences, at most %d", ErrRequest, len(r.Stop), MaxStops)
	}
	for i, s := range r.Stop {
		if len(s) < 1 || len(s) > MaxStopBytes {
			return fmt.Errorf("%w: stop sequence %d has %d bytes, want 1 to %d", ErrRequest, i, len(s), MaxStopBytes)
		}
	}
	return nil
}

// Hash is the request hash of §21.1:
// SHA-256("beluga/inference-request/v1" || 0x00 || model || le16(len ID) || ID ||
// le32(len prompt) || prompt || le32(max_tokens) || le64(seed) || le32(temperature) ||
// byte(number of stops) || (le16(len stop) || stop)…).
func (r *Request) Hash() merkle.Digest {
	b := make([]byte, 0, 128+len(r.Prompt))
	b = append(b, "beluga/inference-request/v1\x00"...)
	b = append(b, r.Model[:]...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(r.ID)))
	b = append(b, r.ID...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Prompt)))
	b = append(b, r.Prompt...)
	b = binary.LittleEndian.AppendUint32(b, uint32(r.MaxTokens))
	b = binary.LittleEndian.AppendUint64(b, r.Seed)
	b = binary.LittleEndian.AppendUint32(b, uint32(r.Temperature))
	b = append(b, byte(len(r.Stop)))
	for _, s := range r.Stop {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return sha256.Sum256(b)
}

// OutputHash is SHA-256("beluga/inference-output/v1" || 0x00 || output).
func OutputHash(output []byte) merkle.Digest {
	h := sha256.New()
	h.Write([]byte("beluga/inference-output/v1\x00"))
	h.Write(output)
	var d merkle.Digest
	h.Sum(d[:0])
	return d
}

// stopAt reports whether out ends with one of stops.
func stopAt(out []byte, stops [][]byte) bool {
	for _, s := range stops {
		if bytes.HasSuffix(out, s) {
			return true
		}
	}
	return false
}

// Text is what a client sees of output: the output without the stop
// sequence it ended with when finish is FinishStop (OpenAI's convention).
func Text(output []byte, finish Finish, stops [][]byte) []byte {
	if finish != FinishStop {
		return output
	}
	for _, s := range stops {
		if bytes.HasSuffix(output, s) {
			return output[:len(output)-len(s)]
		}
	}
	return output
}
