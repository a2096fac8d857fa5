// Package cli is the beluga command line: each subcommand is a thin layer
// over a package, testable without a process (Main takes the arguments and
// streams and returns the exit status).
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit statuses beyond 0 and 1.
const (
	exitUsage       = 2
	exitInterrupted = 130
)

// exitError carries a specific exit status up to Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs beluga with args and returns the process exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "beluga:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "beluga",
		Short:         "Verifiable integer ML training: solver, verifier, coordinator",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newSpecCmd(), newTrainCmd(), newAuditCmd(), newPlanCmd(), newRefereeCmd(), newCoordinatorCmd(), newBenchCmd(), newZKCmd(), newDevnetCmd(), newSolverCmd(), newVerifierCmd())
	root.AddCommand(newJobCmd())      // the client: internal/cli/job.go
	root.AddCommand(newVersionCmd())  // internal/cli/version.go
	addBankCmds(root)                 // bank.go: `beluga solver bank`, `beluga verifier bank`
	root.AddCommand(newReportCmd())   // internal/cli/report.go
	root.AddCommand(newOperatorCmd()) // internal/cli/operator.go
	root.AddCommand(newGenerateCmd()) // internal/cli/generate.go

	// verified inference: internal/cli/inference.go
	root.AddCommand(newVerifyInferenceCmd())
	root.AddCommand(newModelCmd()) // internal/cli/model.go
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: fmt.Errorf("%w\n%s", err, c.UsageString())}
	})
	return root
}
