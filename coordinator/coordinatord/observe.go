package coordinatord

import (
	"context"
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
)

// observability is what the API's /healthz and /metrics report of the
// parts assembled here, with a libp2p host: the node's readiness check
// ("node": it runs) and the metrics beluga_p2p_peers (connected libp2p
// peers), beluga_node_peers{role,busy} (the solvers and verifiers the
// node knows) and the inference gateway's (inferenceMetrics). Without a
// host the API reports the service alone.
func (c *Coordinator) observability(h *p2p.Node) []api.Option {
	if h == nil {
		return nil
	}
	peers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: api.MetricsNamespace, Subsystem: "p2p", Name: "peers",
		Help: "libp2p peers connected.",
	}, func() float64 { return float64(len(h.Host.Network().Peers())) })
	return []api.Option{
		api.WithHealthCheck("node", c.nodeRunning),
		api.WithCollectors(peers, &nodePeers{c: c}, &inferenceMetrics{c: c}),
	}
}

// nodeRunning is the node's readiness check.
func (c *Coordinator) nodeRunning(context.Context) error {
	if c.Node == nil {
		return errors.New("the coordinator node is not started")
	}
	select {
	case <-c.Node.Done():
		return errors.New("the coordinator node has stopped")
	default:
		return nil
	}
}

var nodePeersDesc = prometheus.NewDesc(api.MetricsNamespace+"_node_peers",
	"Solvers and verifiers the coordinator node knows, by role and whether busy.", []string{"role", "busy"}, nil)

// nodePeers counts the node's registry when scraped.
type nodePeers struct{ c *Coordinator }

func (p *nodePeers) Describe(ch chan<- *prometheus.Desc) { ch <- nodePeersDesc }

func (p *nodePeers) Collect(ch chan<- prometheus.Metric) {
	if p.c.Node == nil {
		return
	}
	type key struct{ role, busy string }
	counts := map[key]int{}
	for _, role := range []string{"solver", "verifier"} {
		for _, busy := range []string{"true", "false"} {
			counts[key{role, busy}] = 0
		}
	}
	for _, peer := range p.c.Node.Peers() {
		k := key{strings.ToLower(peer.Role.String()), "false"}
		if peer.Busy {
			k.busy = "true"
		}
		counts[k]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(nodePeersDesc, prometheus.GaugeValue, float64(n), k.role, k.busy)
	}
}

var (
	inferenceReceiptsDesc = prometheus.NewDesc(api.MetricsNamespace+"_inference_receipts_total",
		"Inference receipts sampled for a check since the coordinator started, and how the checks ended: "+
			"passed, fraud (the solver lost the dispute), verdict_refused (the verifier lost it), unchecked.",
		[]string{"outcome"}, nil)
	inferenceWaitingDesc = prometheus.NewDesc(api.MetricsNamespace+"_inference_checks_waiting",
		"Sampled inference receipts stored and not yet checked (a restart keeps them).", nil, nil)
	inferencePeersDesc = prometheus.NewDesc(api.MetricsNamespace+"_inference_peers",
		"Solvers routed inference requests and verifiers sent receipts now (bonded, enrolled, not banned).", []string{"role"}, nil)
)

// inferenceMetrics reports the inference gateway's sampler and routing
// when scraped.
type inferenceMetrics struct{ c *Coordinator }

func (m *inferenceMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- inferenceReceiptsDesc
	ch <- inferenceWaitingDesc
	ch <- inferencePeersDesc
}

func (m *inferenceMetrics) Collect(ch chan<- prometheus.Metric) {
	g := m.c.Gateway
	if g == nil {
		return
	}
	vs := g.VerifyStats()
	for outcome, n := range map[string]int64{"sampled": vs.Sampled, "passed": vs.Passed, "fraud": vs.Frauds,
		"verdict_refused": vs.Refused, "unchecked": vs.Unchecked} {
		ch <- prometheus.MustNewConstMetric(inferenceReceiptsDesc, prometheus.CounterValue, float64(n), outcome)
	}
	if n, err := g.Waiting(); err == nil {
		ch <- prometheus.MustNewConstMetric(inferenceWaitingDesc, prometheus.GaugeValue, float64(n))
	}
	solvers, verifiers := g.Peers()
	ch <- prometheus.MustNewConstMetric(inferencePeersDesc, prometheus.GaugeValue, float64(solvers), "solver")
	ch <- prometheus.MustNewConstMetric(inferencePeersDesc, prometheus.GaugeValue, float64(verifiers), "verifier")
}
