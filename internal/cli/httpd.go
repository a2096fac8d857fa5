package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	solverd "github.com/beluga-compute/beluga/solver/daemon"
	verifierd "github.com/beluga-compute/beluga/verifier/daemon"
)

// httpHelp is the daemons' --http flag.
const httpHelp = "serve GET /healthz and GET /metrics (Prometheus) on this address, e.g. 127.0.0.1:9101; " +
	"empty: no HTTP listener. Neither needs a key: keep it on loopback or a private network"

// Daemon HTTP limits.
const (
	daemonHTTPShutdown = 5 * time.Second
	daemonHTTPTimeout  = 30 * time.Second
)

// daemonEvents are the job-level events (the messages of the daemons'
// slog records: solver/daemon and verifier/daemon events.go) that
// beluga_daemon_events_total counts, by label. Only these are counted, so
// the label set stays fixed.
var daemonEvents = map[string]string{
	solverd.EventAssigned:        "job_assigned",
	solverd.EventCheckpoint:      "checkpoint",
	solverd.EventCommitted:       "job_committed",
	solverd.EventPaused:          "paused",
	solverd.EventResumed:         "resumed",
	verifierd.EventAuditAssigned: "audit_assigned",
	verifierd.EventAudited:       "audited",
}

// daemonHTTP is a daemon's opt-in HTTP listener: liveness and readiness
// at /healthz, its metrics at /metrics.
type daemonHTTP struct {
	role   string
	node   *p2p.Node
	coord  peer.ID // "" when the coordinator address names none
	reg    *prometheus.Registry
	events *prometheus.CounterVec
	step   prometheus.Gauge
	http   *api.HTTPMetrics
}

// serveDaemonHTTP starts the daemon's HTTP listener on addr: /healthz
// passes while the node is connected to the coordinator, /metrics has the
// daemon's job events (counted from the records *logger logs: it is
// wrapped here), its p2p peers, its HTTP requests and the Go runtime's.
// It returns the address bound and stop, which shuts the listener down
// and waits for it.
func serveDaemonHTTP(addr, role string, n *p2p.Node, coordinator string, logger **slog.Logger) (string, func() error, error) {
	d := &daemonHTTP{role: role, node: n, reg: api.NewRegistry()}
	if info, err := peer.AddrInfoFromString(coordinator); err == nil {
		d.coord = info.ID
	}
	d.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: api.MetricsNamespace, Subsystem: "daemon", Name: "events_total",
		Help: "The daemon's job-level events: jobs assigned, checkpoints, jobs committed, audits assigned and run, payments.",
	}, []string{"role", "event"})
	d.step = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: api.MetricsNamespace, Subsystem: "solver", Name: "checkpoint_step",
		Help: "The step of the solver's newest checkpoint.",
	})
	peers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: api.MetricsNamespace, Subsystem: "p2p", Name: "peers",
		Help: "libp2p peers connected.",
	}, func() float64 { return float64(len(n.Host.Network().Peers())) })
	d.reg.MustRegister(d.events, peers)
	if role == "solver" {
		d.reg.MustRegister(d.step)
	}
	d.http = api.NewHTTPMetrics(d.reg)
	*logger = slog.New(&countingHandler{next: (*logger).Handler(), d: d})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	srv := &http.Server{
		Handler:           d.observe(mux),
		ReadHeaderTimeout: daemonHTTPTimeout, ReadTimeout: daemonHTTPTimeout, WriteTimeout: daemonHTTPTimeout,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	(*logger).Info(role+" http listening", "addr", "http://"+ln.Addr().String(), "paths", "/healthz /metrics")
	stop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), daemonHTTPShutdown)
		defer cancel()
		err := srv.Shutdown(ctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
	return ln.Addr().String(), stop, nil
}

// observe counts requests by route pattern and status.
func (d *daemonHTTP) observe(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		_, route := mux.Handler(r)
		if route == "" {
			route = "(none)"
		}
		mux.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d.http.Observe(route, sw.status, time.Since(start))
	})
}

// healthz answers like the coordinator's: 200 {"status":"ok"} when every
// check passes, else 503 naming the one that failed.
func (d *daemonHTTP) healthz(w http.ResponseWriter, _ *http.Request) {
	h := api.Health{Status: "ok", Checks: []api.CheckResult{{Name: "p2p", OK: len(d.node.Addrs()) > 0}}}
	if !h.Checks[0].OK {
		h.Checks[0].Error = "the libp2p node listens on no address"
	}
	c := api.CheckResult{Name: "coordinator", OK: d.coord != "" && d.node.Host.Network().Connectedness(d.coord) == network.Connected}
	if !c.OK {
		c.Error = "not connected to the coordinator; the daemon keeps trying"
	}
	h.Checks = append(h.Checks, c)
	status := http.StatusOK
	for _, c := range h.Checks {
		if !c.OK {
			h.Status, status = "unavailable", http.StatusServiceUnavailable
		}
	}
	b, _ := json.Marshal(h)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// statusWriter notes the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// countingHandler passes records on to next and counts the job-level
// events among them.
type countingHandler struct {
	next slog.Handler
	d    *daemonHTTP
}

func (h *countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// Events are counted whatever the log shows.
	return true
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if ev, ok := daemonEvents[r.Message]; ok {
		h.d.events.WithLabelValues(h.d.role, ev).Inc()
		if ev == "checkpoint" {
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "step" {
					if v, ok := intValue(a.Value); ok {
						h.d.step.Set(float64(v))
					}
					return false
				}
				return true
			})
		}
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{next: h.next.WithAttrs(as), d: h.d}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{next: h.next.WithGroup(name), d: h.d}
}

// intValue reads an integer attribute however it was logged.
func intValue(v slog.Value) (int64, bool) {
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64(), true
	case slog.KindUint64:
		return int64(v.Uint64()), true
	case slog.KindString:
		var n int64
		_, err := fmt.Sscan(strings.TrimSpace(v.String()), &n)
		return n, err == nil
	}
	return 0, false
}

// serveDaemonHTTPFlag is serveDaemonHTTP for the --http flag: an empty
// address serves nothing and stop does nothing.
func serveDaemonHTTPFlag(addr, role string, n *p2p.Node, coordinator string, logger **slog.Logger) (stop func() error, err error) {
	if addr == "" {
		return func() error { return nil }, nil
	}
	_, stop, err = serveDaemonHTTP(addr, role, n, coordinator, logger)
	return stop, err
}
