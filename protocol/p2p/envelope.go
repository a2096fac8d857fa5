package p2p

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/beluga-compute/beluga/protocol/pb"
	"github.com/beluga-compute/beluga/protocol/wire"
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

// errEOF returns io.EOF if err is a plain end of stream (the remote closed
// it between requests), and a sentinel that matches nothing otherwise.
func errEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	return errNever
}

var errNever = errors.New("never")
