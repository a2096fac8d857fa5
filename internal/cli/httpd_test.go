package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	solverd "github.com/beluga-compute/beluga/solver/daemon"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDaemonHTTPHealthAndMetrics: a daemon's --http listener answers
// /healthz with 503 until its node is connected to the coordinator and
// 200 after, and /metrics counts the job-level events the daemon logs
// (and its p2p peers and HTTP requests); the events still reach the log.
func TestDaemonHTTPHealthAndMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	coord, err := p2p.New(ctx, p2p.WithListen("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	n, err := p2p.New(ctx, p2p.WithListen("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	rec := &recordHandler{}
	logger := slog.New(rec)
	addr, stop, err := serveDaemonHTTP("127.0.0.1:0", "solver", n, coord.Addrs()[0], &logger)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr

	c, body := get(t, base+"/healthz")
	var h api.Health
	if err := json.Unmarshal([]byte(body), &h); c != 503 || err != nil || h.Status != "unavailable" {
		t.Fatalf("healthz before connecting: %d %s", c, body)
	}
	if _, err := n.Connect(ctx, coord.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if c, body := get(t, base+"/healthz"); c != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("healthz when connected: %d %s", c, body)
	}

	logger.Info(solverd.EventAssigned, "job", "abc")
	logger.With("job", "abc").Info(solverd.EventCheckpoint, "step", int64(500), "of", 2812)
	logger.Info(solverd.EventCheckpoint, "step", 1000)
	logger.Info("something else")
	c, body = get(t, base+"/metrics")
	if c != 200 {
		t.Fatalf("metrics: %d", c)
	}
	for _, want := range []string{
		`beluga_daemon_events_total{event="job_assigned",role="solver"} 1`,
		`beluga_daemon_events_total{event="checkpoint",role="solver"} 2`,
		`beluga_solver_checkpoint_step 1000`,
		`beluga_p2p_peers 1`,
		`beluga_http_requests_total{code="200",route="GET /healthz"} 1`,
		`beluga_http_requests_total{code="503",route="GET /healthz"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "something") {
		t.Error("an ordinary record became a metric")
	}
	if got := rec.messages(); len(got) < 5 || got[1] != solverd.EventAssigned {
		t.Errorf("the log got %q", got)
	}
	if c, _ := get(t, base+"/nothing"); c != 404 {
		t.Errorf("unknown path: %d", c)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the listener still answers after stop")
	}
}

// TestDaemonHTTPBadAddress: an address that cannot be bound is an error
// naming the flag, and nothing is left listening.
func TestDaemonHTTPBadAddress(t *testing.T) {
	t.Parallel()
	n, err := p2p.New(context.Background(), p2p.WithListen("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	logger := slog.New(slog.DiscardHandler)
	if _, _, err := serveDaemonHTTP("256.0.0.1:1", "verifier", n, "", &logger); err == nil || !strings.Contains(err.Error(), "--http") {
		t.Fatalf("bad address: %v", err)
	}
}

// TestVersionPrints: `beluga version` prints the module version, the
// revision (or says the build has none) and the Go version; --json holds
// the same.
func TestVersionPrints(t *testing.T) {
	t.Parallel()
	code, out, errs := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "beluga ") || !strings.Contains(out, "revision") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: %d %q %q", code, out, errs)
	}
	code, out, _ = run(t, "version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Module != "github.com/beluga-compute/beluga" || v.Go == "" || v.Version == "" {
		t.Fatalf("version --json: %d %q %v", code, out, err)
	}
}

// recordHandler keeps the messages it is given.
type recordHandler struct {
	msgs []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }
func (h *recordHandler) messages() []string                 { return h.msgs }

// TestVersionFromBuildInfo: the revision, its time and a dirty tree come
// from the build's VCS settings; no build info still prints something.
func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/beluga-compute/beluga", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-12-06T12:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	v := buildVersion(func() (*debug.BuildInfo, bool) { return bi, true })
	if got := v.String(); !strings.HasPrefix(got, "beluga v0.3.0, revision 0123abc (modified) of 2026-12-06T12:00:00Z, go1.26.0 ") {
		t.Errorf("version: %q", got)
	}
	v = buildVersion(func() (*debug.BuildInfo, bool) { return nil, false })
	if got := v.String(); !strings.Contains(got, "beluga unknown, revision unknown") {
		t.Errorf("no build info: %q", got)
	}
}

// TestDaemonsOfferHTTP: both daemons take --http (off by default).
func TestDaemonsOfferHTTP(t *testing.T) {
	t.Parallel()
	for _, role := range []string{"solver", "verifier"} {
		code, out, errs := run(t, role, "--help")
		if code != 0 || !strings.Contains(out, "--http") || !strings.Contains(out, "/healthz") {
			t.Errorf("%s --help: %d %q %q", role, code, out, errs)
		}
	}
}
