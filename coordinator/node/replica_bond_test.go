package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// TestReplicaNeedsBondedVerifier: checkpoint replicas go only to enrolled
// verifiers with a bond — since verifiers sign up for themselves, an
// unbonded one has nothing at stake and could take a replica and withhold
// it.
func TestReplicaNeedsBondedVerifier(t *testing.T) {
	t.Parallel()
	c := &Node{peers: map[peer.ID]*Peer{
		"a": {ID: "a", Party: "va", Role: wire.RoleVerifier, Enrolled: true, NeedsBond: true},
		"b": {ID: "b", Party: "vb", Role: wire.RoleVerifier, Enrolled: false},
		"s": {ID: "s", Party: "ss", Role: wire.RoleSolver},
	}}
	if got := c.pickReplica(nil); got != "" {
		t.Fatalf("replica given to %q, none of whom is an enrolled, bonded verifier", got)
	}
	c.peers["c"] = &Peer{ID: "c", Party: "vc", Role: wire.RoleVerifier, Enrolled: true}
	if got := c.pickReplica(nil); got != "c" {
		t.Fatalf("replica given to %q, want the bonded verifier c", got)
	}
	if got := c.pickReplica([]peer.ID{"c"}); got != "" {
		t.Fatalf("replica given to %q, which already holds it", got)
	}
}
