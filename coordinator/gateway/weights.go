package gateway

import (
	"bytes"
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Peer-to-peer weights (protocol/net/infer, weights.go): the gateway tells
// a solver or verifier that lacks a published model's weights which peers
// announce the model now and grants it the fetch. A published model's
// weights are the network's to serve, so any peer connected to the
// coordinator may ask; the bytes never pass through the coordinator.

// checkModelSpec checks that raw is the spec of m's job, a GPT, and
// returns its canonical bytes.
func checkModelSpec(m *Model, raw []byte) ([]byte, error) {
	s, err := spec.Read(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	if _, err := s.GPT(); err != nil {
		return nil, fmt.Errorf("spec: not a GPT: %w", err)
	}
	job, err := s.ID()
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	if m.Job != job.String() {
		return nil, fmt.Errorf("spec: it is job %s's, the model names job %q", job, m.Job)
	}
	if m.Step < 0 || m.Step > s.Steps {
		return nil, fmt.Errorf("step %d outside the job's 0 to %d", m.Step, s.Steps)
	}
	if m.Context != 0 {
		if c, _ := s.GPT(); c.Context != m.Context {
			return nil, fmt.Errorf("context_length %d, the spec's model has %d", m.Context, c.Context)
		}
	}
	return s.Canonical()
}

func specKey(job string) string { return "inference/spec/" + job }

func (c *catalog) putSpec(job string, canonical []byte) error {
	return c.st.PutRaw(specKey(job), canonical)
}

func (c *catalog) spec(job string) ([]byte, bool, error) { return c.st.GetRaw(specKey(job)) }

// byIDOrDigest finds a published model by its ID or its digest.
func (c *catalog) byIDOrDigest(s string) (*Model, bool, error) {
	ms, err := c.list()
	if err != nil {
		return nil, false, err
	}
	for i := range ms {
		if ms[i].ID == s || ms[i].Digest == s {
			return &ms[i], true, nil
		}
	}
	return nil, false, nil
}

// Holders returns the peers announcing model now.
func (r *Router) Holders(model merkle.Digest) []peer.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ps []peer.ID
	for p, s := range r.solvers {
		if _, ok := s.models[model]; ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// ServeWeights answers, on n (the coordinator's node, whose key signs the
// grants), peers asking where a published model's weights are.
func (g *Gateway) ServeWeights(n *p2p.Node) {
	infer.ServeWeightsIndex(n.Host, func(ctx context.Context, asker peer.ID, model string) (*infer.WeightsOffer, error) {
		return g.weightsOffer(n, asker, model)
	}, g.log)
}

func (g *Gateway) weightsOffer(n *p2p.Node, asker peer.ID, model string) (*infer.WeightsOffer, error) {
	m, ok, err := g.cat.byIDOrDigest(model)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &infer.Refusal{Code: infer.RefusedModel, Message: fmt.Sprintf("no published model has ID or digest %q", model)}
	}
	raw, ok, err := g.cat.spec(m.Job)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &infer.Refusal{Code: infer.RefusedModel, Message: fmt.Sprintf("model %s was published without its spec: its weights cannot be fetched (serve it from a run directory)", m.ID)}
	}
	job, err := spec.ParseJobID(m.Job)
	if err != nil {
		return nil, err
	}
	d, _ := infer.ParseDigest(m.Digest)
	seen := map[peer.ID]bool{asker: true}
	o := &infer.WeightsOffer{ID: m.ID, Digest: m.Digest, Job: m.Job, Step: m.Step, Spec: string(raw)}
	for _, p := range append(g.router.Holders(d), g.ver.verifiers.Holders(d)...) {
		if seen[p] || len(o.Holders) == infer.MaxWeightsHolders {
			continue
		}
		seen[p] = true
		h := infer.WeightsHolder{Peer: p.String()}
		for _, a := range g.h.Peerstore().Addrs(p) {
			h.Addrs = append(h.Addrs, a.String())
		}
		o.Holders = append(o.Holders, h)
	}
	if len(o.Holders) == 0 {
		return nil, &infer.Refusal{Code: infer.RefusedBusy, Message: fmt.Sprintf("no peer announces model %s now", m.ID)}
	}
	grant, err := exchange.IssueGrant(n, job, asker, exchange.GrantTTL)
	if err != nil {
		return nil, err
	}
	o.SetGrant(grant)
	return o, nil
}
