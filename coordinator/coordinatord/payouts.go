package coordinatord

import (
	"context"
	"log/slog"

	"github.com/beluga-compute/beluga/coordinator/payout"
)

// PayoutConfig configures the payout scheduler every coordinator runs:
// each period's payout run (the 1st and 15th by default, the service's
// schedule) executes by itself, once, at its run instant, and on start
// if the due period has not run (a restart runs nothing twice).
type PayoutConfig struct {
	// Clock is the scheduler's clock (default the wall clock); it should
	// agree with the service's clock.
	Clock payout.Clock
	// Disabled leaves runs to the operator (POST /v1/payouts/runs).
	Disabled bool
}

// payoutLoop is the running scheduler, owned by the Coordinator.
type payoutLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startPayouts says, loudly, what keeps payouts from reaching anyone
// (no vault key, no ACH originator) and starts the scheduler, which Close
// stops.
func (c *Coordinator) startPayouts(ctx context.Context, cfg PayoutConfig) error {
	if !c.Service.HasVault() {
		c.log.LogAttrs(ctx, slog.LevelWarn, "no vault key configured: solvers and verifiers cannot register bank details and payout runs pay nobody",
			slog.String("fix", "start the coordinator with --vault-key-file FILE (chmod 600) or --vault-key-env VAR holding the vault keyring (coordinator/vault)"))
	}
	if err := c.Service.Originator().Validate(); err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "no ACH originator configured: payout runs with payees are refused until one is",
			slog.String("fix", "the --ach-company-name, --ach-company-id, --ach-origin, --ach-destination and --ach-odfi flags"), slog.String("err", err.Error()))
	}
	if cfg.Disabled {
		c.log.LogAttrs(ctx, slog.LevelInfo, "payout scheduler disabled: run payouts with POST /v1/payouts/runs")
		return nil
	}
	opts := []payout.SchedulerOption{payout.WithLogger(c.log.With("component", "payouts"))}
	if cfg.Clock != nil {
		opts = append(opts, payout.WithClock(cfg.Clock))
	}
	s, err := payout.NewScheduler(c.Service.Schedule(), c.Service.PayoutExecutor(), opts...)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.payouts = &payoutLoop{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.payouts.done)
		_ = s.Run(lctx)
	}()
	return nil
}

// stopPayouts stops the scheduler and waits for a run in progress.
func (c *Coordinator) stopPayouts() {
	if c.payouts != nil {
		c.payouts.cancel()
		<-c.payouts.done
	}
}
