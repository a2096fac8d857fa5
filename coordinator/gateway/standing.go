package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// Who may serve and check inference requests. A solver is routed requests
// only while its free bond covers the minimum a training job asks
// (service.Policy.MinBondMicroUSD): the bond is what a fraud is slashed
// from, to refund the client, so an unbonded peer answering requests
// would leave a cheated client unpaid. A verifier checks receipts only
// when enrolled (an API key of the verifier role for its party) and its
// free bond covers the verifier's bond: a refuted verdict is slashed from
// it. A party that lost an inference dispute, or a verifier that passed a
// receipt the game proved fraudulent, is banned for good, in the store,
// so a restarted coordinator refuses it too.

// banPrefix keys the banned parties.
const banPrefix = "infer-ban/"

// banRecord is why a party is banned.
type banRecord struct {
	Request string    `json:"request"`
	Why     string    `json:"why"`
	At      time.Time `json:"at"`
}

// ban records party as banned for its conduct on request.
func (g *Gateway) ban(party, request, why string) {
	b, _ := json.Marshal(banRecord{Request: request, Why: why, At: time.Now().UTC()})
	if err := g.svc.Store().PutRaw(banPrefix+party, b); err != nil {
		g.log.Error("inference ban not stored", "party", party, "request", request, "err", err.Error())
	}
}

// banned returns why party is banned, or "".
func (g *Gateway) banned(party string) (string, error) {
	raw, ok, err := g.svc.Store().GetRaw(banPrefix + party)
	if err != nil || !ok {
		return "", err
	}
	var b banRecord
	if err := json.Unmarshal(raw, &b); err != nil {
		return "", fmt.Errorf("ban of %s: %w", party, err)
	}
	return fmt.Sprintf("banned over request %s: %s", b.Request, b.Why), nil
}

// standing says why peer p of role may not serve (a solver) or check (a
// verifier) inference requests, or "" when it may. A ledger it cannot
// read refuses it for now (asked again at its next announcement).
func (g *Gateway) standing(role wire.Role, p peer.ID) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	party := join.PartyID(role, p)
	unknown := func(err error) string { return "its standing could not be read: " + err.Error() }
	if why, err := g.banned(party); err != nil {
		return unknown(err)
	} else if why != "" {
		return why
	}
	pr := service.PartySolver
	if role == wire.RoleVerifier {
		pr = service.PartyVerifier
	}
	f, err := g.svc.Shortfall(ctx, party, pr)
	if err != nil {
		return unknown(err)
	}
	return strings.Join(f.Reasons(), "; ")
}
