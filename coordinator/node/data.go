package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/datanet"
)

// serveData serves the text corpora clients uploaded (PUT /v1/data) to
// the registered solvers and verifiers, which fetch the ones their jobs
// name and check them against root and size (protocol/net/datanet).
func (c *Node) serveData() {
	datanet.Serve(c.P2P.Host, c.svc.Text, c.registered, c.log)
}

// registered reports whether p said hello as a solver or verifier.
func (c *Node) registered(p peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers[p] != nil
}
