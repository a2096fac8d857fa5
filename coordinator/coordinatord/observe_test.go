package coordinatord

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
)

// TestHealthzAndMetricsServed: the assembled coordinator serves /healthz
// with the ledger's and the node's checks, and /metrics (to the operator)
// with the libp2p peers, the node's registry and the inference gateway's
// receipts and peers beside the API's own;
// when the node stops, /healthz says so.
func TestHealthzAndMetricsServed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := p2p.New(ctx, p2p.WithListen("/ip4/127.0.0.1/tcp/0"), p2p.WithPubSub())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := Open(ctx, Config{DataDir: t.TempDir(), P2P: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // the node's Close is idempotent: the test closes it first
	key, err := c.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- c.Serve(sctx, ln) }()
	defer func() { stop(); <-served }()
	base := "http://" + ln.Addr().String()
	get := func(path, key string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := get("/healthz", "")
	var hz api.Health
	if err := json.Unmarshal([]byte(body), &hz); code != 200 || err != nil || len(hz.Checks) != 2 || hz.Checks[1].Name != "node" {
		t.Fatalf("healthz: %d %s", code, body)
	}
	code, body = get("/metrics", key)
	for _, want := range []string{"beluga_p2p_peers 0", `beluga_node_peers{busy="false",role="solver"} 0`, `beluga_check_up{check="node"} 1`, "beluga_jobs{",
		`beluga_inference_receipts_total{outcome="fraud"} 0`, "beluga_inference_checks_waiting 0", `beluga_inference_peers{role="verifier"} 0`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("metrics (%d) lack %s", code, want)
		}
	}
	if err := c.Node.Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/healthz", ""); code != 503 || !strings.Contains(body, "the coordinator node has stopped") {
		t.Errorf("healthz with the node stopped: %d %s", code, body)
	}
}
