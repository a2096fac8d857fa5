//go:build belugacheat

package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	solverd "github.com/beluga-compute/beluga/solver/daemon"
)

// This file is compiled only into test builds (go build -tags
// belugacheat). It gives `beluga solver` a --cheat-from-step flag that
// makes the daemon a cheating solver (solverd.Config.CheatForTesting), so
// that the end-to-end tests can start a real lying solver as its own
// process and watch the network catch it, and a --cheat-inference flag
// that makes its inference server change a byte of every answer it signs
// (inferenceTamperForTesting); `beluga verifier` a --cheat-pass flag that
// makes its inference checker pass every receipt whatever it finds
// (verdictTamperForTesting): a verifier covering for a solver. The
// product binary has none of these flags.

func init() {
	solverTestFlags = append(solverTestFlags, func(f *pflag.FlagSet, cfg *solverd.Config) {
		f.Var(cheatFlag{cfg}, "cheat-from-step", "TEST BUILD ONLY: corrupt the training state from this step on (a dispute then shows the fault)")
		f.Var(tamperFlag{}, "cheat-inference", "TEST BUILD ONLY: change a byte of every inference answer before signing it")
		f.Lookup("cheat-inference").NoOptDefVal = "true"
	})
	verifierTestFlags = append(verifierTestFlags, func(f *pflag.FlagSet) {
		f.Var(passFlag{}, "cheat-pass", "TEST BUILD ONLY: pass every inference receipt, whatever the check finds")
		f.Lookup("cheat-pass").NoOptDefVal = "true"
	})
}

// passFlag sets verdictTamperForTesting when true.
type passFlag struct{}

func (passFlag) String() string { return strconv.FormatBool(verdictTamperForTesting != nil) }

func (passFlag) Set(v string) error {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	verdictTamperForTesting = nil
	if on {
		verdictTamperForTesting = func(vd *infer.Verdict) { vd.Verdict, vd.Detail, vd.Position = infer.VerdictPass, "", -1 }
	}
	return nil
}

func (passFlag) Type() string { return "bool" }

// cheatFlag sets cfg.CheatForTesting from a step number.
type cheatFlag struct{ cfg *solverd.Config }

func (c cheatFlag) String() string {
	if c.cfg == nil || c.cfg.CheatForTesting == nil {
		return ""
	}
	return strconv.FormatInt(c.cfg.CheatForTesting.From, 10)
}

func (c cheatFlag) Set(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a step number, got %q", v)
	}
	c.cfg.CheatForTesting = &solverd.Cheat{From: n}
	return nil
}

func (cheatFlag) Type() string { return "step" }

// tamperFlag sets inferenceTamperForTesting when true.
type tamperFlag struct{}

func (tamperFlag) String() string { return strconv.FormatBool(inferenceTamperForTesting != nil) }

func (tamperFlag) Set(v string) error {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	inferenceTamperForTesting = nil
	if on {
		inferenceTamperForTesting = func(_ *inference.Request, res *inference.Result) {
			if len(res.Output) > 0 {
				res.Output[len(res.Output)/2] ^= 0x20
			}
		}
	}
	return nil
}

func (tamperFlag) Type() string { return "bool" }
