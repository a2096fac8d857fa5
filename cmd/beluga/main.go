// Command beluga is the single Beluga binary: one subcommand per role.
package main

import (
	"os"

	"github.com/beluga-compute/beluga/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
