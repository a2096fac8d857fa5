package p2p

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/beluga-compute/beluga/protocol/net/pb"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

func marshalEnvelope(e *pb.Envelope) ([]byte, error) { return proto.Marshal(e) }

// unmarshalEnvelope decodes a gossip message after checking its size
// against the largest frame of the expected types.
func unmarshalEnvelope(data []byte, e *pb.Envelope, want []wire.Type) error {
	limit := 0
	for _, t := range want {
		limit = max(limit, wire.MaxFrame(t))
	}
	if len(data) > limit {
		return fmt.Errorf("%w: gossip message of %d bytes", wire.ErrTooLarge, len(data))
	}
	if err := proto.Unmarshal(data, e); err != nil {
		return fmt.Errorf("%w: %v", wire.ErrMalformed, err)
	}
	return nil
}

// misbehaved says whether a receive error is the peer's fault (bytes
// that are oversized, malformed, unsigned, replayed or of the wrong type)
// rather than the transport's (a closed, reset or timed-out stream).
func misbehaved(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, wire.ErrTransport) {
		return false
	}
	return errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrTooLarge) || errors.Is(err, wire.ErrBadSignature) ||
		errors.Is(err, wire.ErrReplay) || errors.Is(err, wire.ErrWrongType) || errors.Is(err, wire.ErrWrongJob)
}
