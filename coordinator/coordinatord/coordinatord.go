// Package coordinatord assembles a coordinator — the service over a data
// directory, its API keys, the HTTP API and, when given a libp2p host,
// the coordinator node — with one set of defaults, for `beluga
// coordinator` and the devnet alike.
//
// The defaults are the node's (node.DefaultAuditTimeout,
// node.DefaultHeartbeatTimeout, node.DefaultJobTimeout, node.DefaultTick)
// and the HTTP server's below; a caller overrides a timeout by setting it
// in Config.Node.
package coordinatord

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/console"
	"github.com/beluga-compute/beluga/coordinator/gateway"
	"github.com/beluga-compute/beluga/coordinator/node"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
)

// HTTP server limits.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = time.Minute
	WriteTimeout      = time.Minute
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// when its context ends.
	ShutdownTimeout = 10 * time.Second
)

// Config configures a coordinator.
type Config struct {
	// DataDir holds the ledger and the state (service.Open).
	DataDir string
	// Service options (vault, originator, policy, clock).
	Service []service.Option
	// P2P is the coordinator's libp2p host; nil: HTTP only, no node.
	P2P *p2p.Node
	// Node configures the node; its Service is set here, and a nil Logger
	// takes Logger with component=node.
	Node node.Config
	// Logger receives the API's and the node's records (default:
	// discarded).
	Logger *slog.Logger
	// HoldOffers: jobs posted through the API are matched but not offered
	// on the node until the caller calls Node.Offer (the devnet posts all
	// its jobs before any starts, so that each waiting solver takes one).
	HoldOffers bool
	// Payouts configures the payout scheduler (payouts.go).
	Payouts PayoutConfig
	// Signup, if set, opens self-serve sign-up (POST /v1/signup, and the
	// console's "train a model") with these funding instructions.
	Signup *api.Signup
	// ConsoleLinkLogin lets the console log a visitor in from a link
	// carrying its key (the devnet's printed links; see console.Config).
	ConsoleLinkLogin bool
}

// Coordinator is an assembled coordinator.
type Coordinator struct {
	Service *service.Service
	Keys    *auth.Keys
	API     *api.Server
	// Console is the web console at / (coordinator/console), on API.
	Console *console.Console
	// Node is nil without a libp2p host.
	Node *node.Node
	// Gateway is the OpenAI-compatible inference API (coordinator/gateway);
	// nil without a libp2p host.
	Gateway *gateway.Gateway
	log     *slog.Logger
	payouts *payoutLoop
}

// Open opens the service over cfg.DataDir, recovering interrupted work,
// and builds the API and (with cfg.P2P) the node, which recovers the jobs
// in flight; jobs posted through the API are offered on the node.
func Open(ctx context.Context, cfg Config) (*Coordinator, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	svc, err := service.Open(ctx, cfg.DataDir, append([]service.Option{service.WithLogger(log.With("component", "service"))}, cfg.Service...)...)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{Service: svc, Keys: auth.NewKeys(svc.Store(), rand.Reader, time.Now), log: log}
	apiOpts := c.observability(cfg.P2P) // observe.go: /healthz, /metrics
	if cfg.Signup != nil {
		apiOpts = append(apiOpts, api.WithSignup(*cfg.Signup))
	}
	if cfg.P2P != nil {
		apiOpts = append(apiOpts, api.WithPeerID(cfg.P2P.ID())) // daemons sign their sign-up for it
	}
	c.API = api.New(svc, c.Keys, log.With("component", "api"), apiOpts...)
	ccfg := console.Config{LinkLogin: cfg.ConsoleLinkLogin, Logger: log.With("component", "console")}
	if cfg.P2P != nil {
		ccfg.P2PAddrs = cfg.P2P.Addrs()
	}
	if c.Console, err = console.New(c.API, ccfg); err != nil {
		svc.Close()
		return nil, err
	}
	if cfg.P2P != nil {
		nc := cfg.Node
		nc.Service = svc
		if nc.Logger == nil {
			nc.Logger = log.With("component", "node")
		}
		n, err := node.New(cfg.P2P, nc)
		if err != nil {
			svc.Close()
			return nil, err
		}
		c.Node = n
		c.Gateway = gateway.New(svc, c.Keys, cfg.P2P.Host, log.With("component", "gateway"))
		// Published models' weights, peer to peer.
		c.Gateway.ServeWeights(cfg.P2P)
		c.API.AttachNode(n) // job progress, final weights, cancellations
		if !cfg.HoldOffers {
			c.API.OnJobPosted(n.OfferAsync)
		}
		// A bond deposited or a key issued through the API puts a waiting
		// solver or verifier to work at once.
		c.API.OnDeposit(func(a service.AccountRef) {
			if a.Kind == service.KindSolverBond || a.Kind == service.KindVerifierBond {
				n.BondArrived(a.Party)
			}
		})
		c.API.OnKeyIssued(func(subject string, role auth.Role) {
			if role == auth.RoleVerifier {
				n.Enrolled(subject)
			}
		})
	}
	if err := c.startPayouts(ctx, cfg.Payouts); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Bootstrap issues the first operator API key, once per data directory:
// it returns the key (to show once; it is stored hashed) the first time
// and "" after.
func (c *Coordinator) Bootstrap(ctx context.Context) (string, error) {
	const mark = "meta/bootstrapped"
	st := c.Service.Store()
	if _, done, err := st.GetRaw(mark); err != nil || done {
		return "", err
	}
	key, rec, err := c.Keys.Issue(ctx, "operator", auth.RoleOperator, 0)
	if err != nil {
		return "", err
	}
	if err := st.PutRaw(mark, []byte(rec.ID)); err != nil {
		return "", err
	}
	return key, nil
}

// Serve serves the HTTP API on ln until ctx ends, then shuts the server
// down (waiting up to ShutdownTimeout for requests in flight).
func (c *Coordinator) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		<-errc
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("coordinatord: shutdown: %w", err)
		}
		return nil
	}
}

// Handler serves the API (/v1/…, /healthz, /metrics), the inference
// gateway's paths and the web console (everything else).
func (c *Coordinator) Handler() http.Handler {
	h := console.Mount(c.API, c.Console)
	if c.Gateway != nil {
		h = c.Gateway.Wrap(h) // /v1/models, /v1/completions, /v1/chat/completions, /v1/receipts/
	}
	return h
}

// Close stops the node (waiting for everything it started) and closes the
// service. The libp2p host is the caller's.
func (c *Coordinator) Close() error {
	var errs []error
	c.stopPayouts()
	if c.Gateway != nil {
		c.Gateway.Close() // the receipts it has not checked stay stored
	}
	if c.Node != nil {
		errs = append(errs, c.Node.Close())
	}
	errs = append(errs, c.Service.Close())
	return errors.Join(errs...)
}
