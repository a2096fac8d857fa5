package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// The coordinator's metrics, served in the Prometheus text format at
// GET /metrics to the operator's API key (a scraper sends it as a bearer
// credential): what the coordinator does and holds is the operator's
// business, not the world's.
//
//	beluga_http_requests_total{route,code}           requests answered, by route pattern and status
//	beluga_http_request_duration_seconds{route}      time to answer, by route pattern
//	beluga_jobs{state}                               jobs by lifecycle state (every state, 0 included)
//	beluga_ledger_balance_micro_usd{account_kind}    Σ credits posted − debits posted over the kind's accounts
//	beluga_ledger_pending_micro_usd{account_kind}    Σ credits and debits reserved by pending transfers
//	beluga_ledger_accounts{account_kind}             accounts of the kind
//	beluga_check_up{check}                           1 if a /healthz check passes, else 0
//	go_*, process_*                                  the Go runtime and the process
//
// plus what WithCollectors adds (the coordinator's p2p peers: see
// coordinatord). Jobs and ledger totals are computed when scraped (one
// scan of each, bounded by scrapeTimeout); a scan that fails leaves its
// metrics out of that scrape and beluga_check_up says why.
const scrapeTimeout = 10 * time.Second

// MetricsNamespace prefixes every Beluga metric.
const MetricsNamespace = "beluga"

// WithCollectors adds Prometheus collectors to the server's registry,
// served at GET /metrics with its own.
func WithCollectors(cs ...prometheus.Collector) Option {
	return func(s *Server) { s.collectors = append(s.collectors, cs...) }
}

// metrics is a server's registry and request metrics.
type metrics struct {
	reg  *prometheus.Registry
	http *HTTPMetrics
}

// HTTPMetrics are the request metrics every Beluga HTTP listener keeps
// (the coordinator's API and the daemons' --http listener).
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers beluga_http_requests_total and
// beluga_http_request_duration_seconds on reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: MetricsNamespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: MetricsNamespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Observe counts one request answered with status after d.
func (m *HTTPMetrics) Observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// NewRegistry is a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func newMetrics(s *Server) *metrics {
	reg := NewRegistry()
	h := NewHTTPMetrics(reg)
	reg.MustRegister(&stateCollector{s: s})
	for _, c := range s.collectors {
		reg.MustRegister(c)
	}
	return &metrics{reg: reg, http: h}
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.http.Observe(route, status, d)
}

// metricsHandler serves the registry to the operator.
func (s *Server) metricsHandler() http.HandlerFunc {
	h := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.admit(w, r, []auth.Role{auth.RoleOperator}); !ok {
			return
		}
		h.ServeHTTP(w, r)
	}
}

var (
	jobsDesc = prometheus.NewDesc(MetricsNamespace+"_jobs", "Jobs by lifecycle state.", []string{"state"}, nil)
	balDesc  = prometheus.NewDesc(MetricsNamespace+"_ledger_balance_micro_usd",
		"Credits posted minus debits posted, summed over the accounts of a kind, in micro-dollars.", []string{"account_kind"}, nil)
	pendDesc = prometheus.NewDesc(MetricsNamespace+"_ledger_pending_micro_usd",
		"Credits and debits reserved by pending transfers, summed over the accounts of a kind, in micro-dollars.", []string{"account_kind"}, nil)
	acctDesc = prometheus.NewDesc(MetricsNamespace+"_ledger_accounts", "Ledger accounts of a kind.", []string{"account_kind"}, nil)
	upDesc   = prometheus.NewDesc(MetricsNamespace+"_check_up", "1 if the /healthz check passes, else 0.", []string{"check"}, nil)
)

// accountKinds name the ledger's account codes as the API's account
// references do.
var accountKinds = map[ledger.AccountCode]service.Kind{
	ledger.CodeClientFunds:      service.KindClientFunds,
	ledger.CodeJobEscrow:        service.KindEscrow,
	ledger.CodeSolverBond:       service.KindSolverBond,
	ledger.CodeVerifierBond:     service.KindVerifierBond,
	ledger.CodeSolverEarnings:   service.KindSolverEarnings,
	ledger.CodeVerifierEarnings: service.KindVerifierEarnings,
	ledger.CodePlatformFees:     service.KindPlatformFees,
	ledger.CodePayoutsInTransit: service.KindPayoutsInTransit,
	ledger.CodeBankClearing:     service.KindBankClearing,
}

// stateCollector reports the service's jobs and ledger when scraped.
type stateCollector struct{ s *Server }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jobsDesc, balDesc, pendDesc, acctDesc, upDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	for _, r := range c.s.checkHealth(ctx) {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, map[bool]float64{true: 1}[r.OK], r.Name)
	}
	if jobs, err := c.s.svc.Jobs(ctx, ""); err == nil {
		counts := map[string]int{}
		for _, j := range jobs {
			counts[j.State.String()]++
		}
		for _, st := range jobStates() {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[st]), st)
			delete(counts, st)
		}
		for st, n := range counts { // a state jobStates does not list
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), st)
		}
	}
	type sums struct{ bal, pend, n float64 }
	byKind := map[service.Kind]*sums{}
	for _, k := range accountKinds {
		byKind[k] = &sums{}
	}
	err := c.s.svc.Ledger().ScanAccounts(ctx, func(a ledger.Account) error {
		k, ok := accountKinds[a.Code]
		if !ok {
			k = service.Kind("code_" + strconv.Itoa(int(a.Code)))
			byKind[k] = &sums{}
		}
		s := byKind[k]
		s.bal += float64(a.CreditBalanceMicroUSD())
		s.pend += float64(a.CreditsPendingMicroUSD + a.DebitsPendingMicroUSD)
		s.n++
		return ctx.Err()
	})
	if err != nil {
		return
	}
	for k, s := range byKind {
		ch <- prometheus.MustNewConstMetric(balDesc, prometheus.GaugeValue, s.bal, string(k))
		ch <- prometheus.MustNewConstMetric(pendDesc, prometheus.GaugeValue, s.pend, string(k))
		ch <- prometheus.MustNewConstMetric(acctDesc, prometheus.GaugeValue, s.n, string(k))
	}
}
