package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what `beluga version` reports: the build's module
// version (a tag, a pseudo-version, or "(devel)" for a build from a
// source tree), the VCS revision and time it was built from when the
// build recorded them (go build does, unless -buildvcs=false), and the
// Go toolchain.
type versionInfo struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Revision string `json:"vcs_revision,omitempty"`
	Time     string `json:"vcs_time,omitempty"`
	Modified bool   `json:"vcs_modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildVersion reads the version from the build info read returns
// (runtime/debug.ReadBuildInfo).
func buildVersion(read func() (*debug.BuildInfo, bool)) versionInfo {
	v := versionInfo{Module: "github.com/beluga-compute/beluga", Version: "unknown", Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := read()
	if !ok || bi == nil {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the human-readable form: one line.
func (v versionInfo) String() string {
	rev := "revision unknown (built without VCS stamping)"
	if v.Revision != "" {
		rev = "revision " + v.Revision
		if v.Modified {
			rev += " (modified)"
		}
		if v.Time != "" {
			rev += " of " + v.Time
		}
	}
	return fmt.Sprintf("beluga %s, %s, %s %s", v.Version, rev, v.Go, v.Platform)
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the build's version, VCS revision and Go version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			v := buildVersion(debug.ReadBuildInfo)
			if asJSON {
				b, _ := json.Marshal(v)
				fmt.Fprintln(c.OutOrStdout(), string(b))
				return nil
			}
			fmt.Fprintln(c.OutOrStdout(), v)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}
