package infer

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/strictjson"
)

// MaxAnnouncedModels bounds an announcement.
const MaxAnnouncedModels = 64

// Announce is what a solver serves: sent when it connects and again every
// AnnounceEvery (the coordinator forgets a solver whose stream ends).
type Announce struct {
	Models []AnnouncedModel `json:"models"`
	// Slots is how many requests it runs at once (≥ 1); Busy how many it
	// runs now.
	Slots int `json:"slots"`
	Busy  int `json:"busy"`
}

// AnnouncedModel is one served model: its state digest (hex) and context.
type AnnouncedModel struct {
	Digest  string `json:"digest"`
	Context int    `json:"context"`
}

// DecodeAnnounce parses and checks an announcement.
func DecodeAnnounce(b []byte) (*Announce, error) {
	var a Announce
	if err := strictjson.Decode(b, &a); err != nil {
		return nil, fmt.Errorf("%w: announce: %v", ErrFrame, err)
	}
	if len(a.Models) > MaxAnnouncedModels || a.Slots < 1 || a.Slots > 1024 || a.Busy < 0 || a.Busy > a.Slots {
		return nil, fmt.Errorf("%w: announce of %d models, %d slots, %d busy", ErrFrame, len(a.Models), a.Slots, a.Busy)
	}
	for _, m := range a.Models {
		if _, err := ParseDigest(m.Digest); err != nil || m.Context < 2 || m.Context > 1<<16 {
			return nil, fmt.Errorf("%w: announced model %q context %d", ErrFrame, m.Digest, m.Context)
		}
	}
	return &a, nil
}

// Encode returns a as JSON.
func (a *Announce) Encode() []byte {
	b, _ := json.Marshal(a)
	return b
}

// ParseDigest parses 64 hex digits.
func ParseDigest(s string) (merkle.Digest, error) {
	var d merkle.Digest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(d) {
		return d, fmt.Errorf("digest %q is not 64 hex digits", s)
	}
	copy(d[:], b)
	return d, nil
}

// Refusal is why a solver does not answer a request.
type Refusal struct {
	// Code: "busy" (no free slot: try another solver), "unknown_model",
	// "invalid_request", "failed".
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Refusal codes.
const (
	RefusedBusy    = "busy"
	RefusedModel   = "unknown_model"
	RefusedRequest = "invalid_request"
	RefusedFailed  = "failed"
)

// Error implements error.
func (r *Refusal) Error() string { return "solver refused: " + r.Code + ": " + r.Message }
