package wire

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/beluga-compute/beluga/protocol/net/pb"
)

// Grant lets Grantee fetch the checkpoints of one job from the exchange
// until Expires. It is not sent as a message of its own: the coordinator
// seals it (an envelope of type TypeGrant bound to the job and signed by
// the coordinator's key), the sealed bytes ride in the Assign, AuditTask
// or replication request that gives the grantee its work, and the grantee
// presents them with every exchange request (protocol/net/exchange checks
// them).
type Grant struct {
	Grantee peer.ID
	Expires time.Time
}

// EncodeEnvelope returns the bytes of a sealed envelope, as a message
// field carries them (a sealed grant).
func EncodeEnvelope(e *pb.Envelope) ([]byte, error) {
	b, err := proto.Marshal(e)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxGrantBytes {
		return nil, fmt.Errorf("%w: sealed envelope of %d bytes (max %d)", ErrTooLarge, len(b), MaxGrantBytes)
	}
	return b, nil
}

// OpenGrant opens a sealed grant: the envelope's signature by the key its
// sender names, its type, and the grant's fields. Who may issue grants,
// for which job and to whom, is the caller's to check against the
// returned envelope (Sender, Job) and grant.
func OpenGrant(raw []byte) (*Envelope, *Grant, error) {
	if len(raw) > MaxGrantBytes {
		return nil, nil, fmt.Errorf("%w: grant of %d bytes (max %d)", ErrTooLarge, len(raw), MaxGrantBytes)
	}
	var e pb.Envelope
	if err := proto.Unmarshal(raw, &e); err != nil {
		return nil, nil, fmt.Errorf("%w: grant: %v", ErrMalformed, err)
	}
	env, err := Open(&e, TypeGrant)
	if err != nil {
		return nil, nil, err
	}
	m, err := Decode(env)
	if err != nil {
		return nil, nil, err
	}
	return env, m.(*Grant), nil
}

// checkGrant bounds a grant field while decoding; its contents are
// checked by whoever relies on it.
func checkGrant(b []byte) error {
	if len(b) > MaxGrantBytes {
		return fmt.Errorf("grant of %d bytes (max %d)", len(b), MaxGrantBytes)
	}
	return nil
}
