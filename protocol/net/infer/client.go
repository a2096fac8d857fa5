package infer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec/strictjson"
)

// ErrBadAnswer: a solver's answer that does not stand (a receipt that
// fails its signature, names another signer, request or output, or bytes
// beyond max_tokens). The solver misbehaved; the request may be retried
// elsewhere.
var ErrBadAnswer = errors.New("infer: bad answer from solver")

// Answer is a solver's checked answer.
type Answer struct {
	Output  []byte
	Receipt *inference.Receipt
}

// Call sends req to solver p on a fresh stream and returns its answer,
// calling onBytes with each byte as it arrives (nil: not streamed; an
// error from it aborts). A *Refusal error is the solver's own refusal;
// any other error but ErrBadAnswer is the stream failing (the solver died
// or was cut off): both can be retried elsewhere.
func Call(ctx context.Context, h host.Host, p peer.ID, req *inference.Request, onBytes func(k int, b byte) error) (*Answer, error) {
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "beluga"), p, protocol.ID(Protocol))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	rr := inference.NewRecordRequest(req)
	b, _ := json.Marshal(&rr)
	w := bufio.NewWriter(st)
	if err := WriteFrame(w, FrameRequest, b); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	r := bufio.NewReader(st)
	var out []byte
	for {
		st.SetReadDeadline(time.Now().Add(RequestReadTimeout))
		typ, p2, err := ReadFrame(r, FrameBytes, FrameReceipt, FrameError)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("stream from solver %s: %w", p, err)
		}
		switch typ {
		case FrameError:
			var rf Refusal
			if err := strictjson.Decode(p2, &rf); err != nil {
				return nil, fmt.Errorf("%w: refusal: %v", ErrBadAnswer, err)
			}
			return nil, &rf
		case FrameBytes:
			if len(out)+len(p2) > req.MaxTokens {
				return nil, fmt.Errorf("%w: more than max_tokens %d bytes", ErrBadAnswer, req.MaxTokens)
			}
			for _, c := range p2 {
				if onBytes != nil {
					if err := onBytes(len(out), c); err != nil {
						st.Reset()
						return nil, err
					}
				}
				out = append(out, c)
			}
		case FrameReceipt:
			rc, err := inference.DecodeReceipt(p2)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadAnswer, err)
			}
			if err := checkAnswer(p, req, out, rc); err != nil {
				return nil, err
			}
			return &Answer{Output: out, Receipt: rc}, nil
		}
	}
}

// checkAnswer checks what can be checked without the model: the signature,
// the signer, the request, the output and the counts.
func checkAnswer(p peer.ID, req *inference.Request, out []byte, rc *inference.Receipt) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadAnswer}, a...)...)
	}
	if err := rc.Verify(); err != nil {
		return bad("%v", err)
	}
	pk, err := crypto.UnmarshalEd25519PublicKey(rc.Solver[:])
	if err != nil {
		return bad("signer key: %v", err)
	}
	if !p.MatchesPublicKey(pk) {
		return bad("receipt signed by another key than solver %s's", p)
	}
	switch {
	case rc.Request != req.Hash():
		return bad("receipt for another request")
	case rc.Output != inference.OutputHash(out) || int(rc.CompletionTokens) != len(out) || len(out) == 0:
		return bad("receipt for other bytes than the %d streamed", len(out))
	case rc.Model != req.Model || int(rc.PromptTokens) != len(req.Prompt):
		return bad("receipt for another model or prompt")
	}
	return nil
}
