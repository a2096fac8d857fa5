package infer

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// EventStrangerRefused: a stream from a peer other than the one a server
// was restricted to was reset unread (Info): "protocol", "peer".
const EventStrangerRefused = "inference stream from a stranger refused"

// gate admits the streams of one peer once restricted: the coordinator,
// the only party that sends generation requests, verification tasks and
// dispute queries. Anyone else could otherwise make a daemon generate or
// recompute passes for nothing. Unrestricted, it admits every peer (tests
// and in-process networks).
type gate struct{ only atomic.Pointer[peer.ID] }

func (g *gate) restrict(p peer.ID) { g.only.Store(&p) }

func (g *gate) admit(st network.Stream) bool {
	o := g.only.Load()
	return o == nil || st.Conn().RemotePeer() == *o
}
