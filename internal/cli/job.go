package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
)

// jobFlags are the flags every `beluga job` command shares.
type jobFlags struct {
	coordinator, apiKey, config string
	json                        bool
	getenv                      func(string) string
}

func (f *jobFlags) settings() (clientSettings, error) {
	return resolveClient(f.coordinator, f.apiKey, f.config, f.getenv)
}

// client resolves the settings and returns an API client (warnings go to
// stderr).
func (f *jobFlags) client(cmd *cobra.Command) (*apiClient, error) {
	s, err := f.settings()
	if err != nil {
		return nil, err
	}
	for _, w := range s.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	if err := s.need(true); err != nil {
		return nil, err
	}
	return &apiClient{base: s.Coordinator, key: s.APIKey, hc: &http.Client{}}, nil
}

// newJobCmd is `beluga job`: the client's commands over the coordinator's
// HTTP API.
func newJobCmd() *cobra.Command { return newJobCmdEnv(os.Getenv) }

// newJobCmdEnv is newJobCmd reading the environment through getenv.
func newJobCmdEnv(getenv func(string) string) *cobra.Command {
	f := &jobFlags{getenv: getenv}
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Client: quote, post, follow, cancel and download jobs on a coordinator",
		Long: `The client's side of a coordinator's HTTP API.

The coordinator's address and your API key come from --coordinator and
--api-key, else the environment (` + envCoordinator + `, ` + envAPIKey + `), else the
config file (--config, default $XDG_CONFIG_HOME/beluga/client.json; write it
with 'beluga job config set'). Output is for people; --json prints the
coordinator's JSON for programs.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.coordinator, "coordinator", "", "the coordinator's HTTP API, e.g. http://127.0.0.1:8700")
	pf.StringVar(&f.apiKey, "api-key", "", "your client API key")
	pf.StringVar(&f.config, "config", "", "client config file (default $XDG_CONFIG_HOME/beluga/client.json)")
	pf.BoolVar(&f.json, "json", false, "print JSON for programs")
	cmd.AddCommand(newJobConfigCmd(f), newJobQuoteCmd(f), newJobPostCmd(f), newJobListCmd(f), newJobStatusCmd(f),
		newJobWatchCmd(f), newJobCancelCmd(f), newJobDownloadCmd(f), newJobReportCmd(f),
		newJobUploadCmd(f)) // internal/cli/upload.go
	return cmd
}

// printJSON pretty-prints raw JSON to w.
func printJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// usd formats micro-dollars.
func usd(micro int64) string {
	sign := ""
	if micro < 0 {
		sign, micro = "-", -micro
	}
	return fmt.Sprintf("%s$%d.%06d", sign, micro/1_000_000, micro%1_000_000)
}

// jobArg checks a job ID argument: 64 hex digits, or the first 6 or more
// of them.
func jobArg(args []string) (string, error) {
	if len(args) != 1 {
		return "", &exitError{code: exitUsage, err: errors.New("give one job ID (64 hex digits, or its first few, as `beluga job list` shows)")}
	}
	arg := strings.ToLower(strings.TrimSpace(args[0]))
	if _, err := hex.DecodeString(arg + strings.Repeat("0", len(arg)%2)); err != nil || len(arg) < minJobPrefix || len(arg) > 64 {
		return "", &exitError{code: exitUsage, err: fmt.Errorf("%q is not a job ID: a job ID is 64 hex digits (or its first %d or more), as `beluga job post` and `beluga job list` print", args[0], minJobPrefix)}
	}
	return arg, nil
}

// minJobPrefix is the shortest job ID prefix taken.
const minJobPrefix = 6

// clientForJob checks the job argument, makes the client, and resolves a
// prefix to the one job of the caller's it starts.
func (f *jobFlags) clientForJob(cmd *cobra.Command, args []string) (*apiClient, string, error) {
	arg, err := jobArg(args)
	if err != nil {
		return nil, "", err
	}
	c, err := f.client(cmd)
	if err != nil {
		return nil, "", err
	}
	if len(arg) == 64 {
		return c, arg, nil
	}
	var found []string
	cursor := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(api.MaxPageLimit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page api.List[api.JobSummary]
		if _, err := c.call(cmd.Context(), "GET", "/v1/jobs?"+q.Encode(), "", nil, &page); err != nil {
			return nil, "", fmt.Errorf("look up the job starting %s: %w", arg, notThere(err, "job lists (GET /v1/jobs)"))
		}
		for _, j := range page.Items {
			if strings.HasPrefix(j.ID, arg) {
				found = append(found, j.ID)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	switch len(found) {
	case 0:
		return nil, "", fmt.Errorf("no job of yours starts with %s", arg)
	case 1:
		return c, found[0], nil
	}
	return nil, "", fmt.Errorf("%d of your jobs start with %s: give more digits", len(found), arg)
}

// ---- config ----------------------------------------------------------

func newJobConfigCmd(f *jobFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show or set the client's coordinator address and API key"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the settings in effect and where each comes from (the key is masked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.settings()
			if err != nil {
				return err
			}
			key := ""
			if s.APIKey != "" {
				key = s.APIKey[:min(6, len(s.APIKey))] + "…"
			}
			if f.json {
				b, _ := json.Marshal(map[string]string{"coordinator": s.Coordinator, "coordinator_from": s.CoordinatorFrom,
					"api_key": key, "api_key_from": s.APIKeyFrom, "config_file": s.ConfigPath})
				return printJSON(cmd.OutOrStdout(), b)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "coordinator\t%s\t%s\n", orNone(s.Coordinator), s.CoordinatorFrom)
			fmt.Fprintf(tw, "api key\t%s\t%s\n", orNone(key), s.APIKeyFrom)
			fmt.Fprintf(tw, "config file\t%s\t\n", orNone(s.ConfigPath))
			return tw.Flush()
		},
	}
	var coord, key string
	set := &cobra.Command{
		Use:   "set",
		Short: "Write the coordinator address and/or API key to the config file (mode 0600)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if coord == "" && key == "" {
				return &exitError{code: exitUsage, err: errors.New("nothing to set: give --coordinator and/or --api-key")}
			}
			path := f.config
			if path == "" {
				path = defaultClientConfigPath(f.getenv)
			}
			if path == "" {
				return errors.New("no config directory on this system: pass --config FILE")
			}
			c, _, err := loadClientConfig(path, false)
			if err != nil {
				return err
			}
			if coord != "" {
				if c.Coordinator, err = normalizeCoordinatorURL(coord); err != nil {
					return fmt.Errorf("coordinator address %q: %w", coord, err)
				}
			}
			if key != "" {
				c.APIKey = key
			}
			if err := saveClientConfig(path, c); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "wrote", path)
			return nil
		},
	}
	// These shadow the persistent flags of the same names: here they are
	// the values to store.
	set.Flags().StringVar(&coord, "coordinator", "", "the coordinator's HTTP API to store")
	set.Flags().StringVar(&key, "api-key", "", "the API key to store")
	cmd.AddCommand(show, set)
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ---- quote and post --------------------------------------------------

// jobBody reads a spec file and wraps it as POST /v1/jobs's (and
// /v1/quote's) body; maxPrice is dollars per compute unit ("" for the
// market price).
func jobBody(path, maxPrice string) ([]byte, error) {
	if path == "" {
		return nil, &exitError{code: exitUsage, err: errors.New("give the job's spec with --spec FILE (`beluga spec example > job.json` writes one)")}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the spec: %w", err)
	}
	s, err := spec.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("the spec %s is not valid: %w", path, err)
	}
	canon, err := s.Canonical()
	if err != nil {
		return nil, fmt.Errorf("the spec %s is not valid: %w", path, err)
	}
	body := map[string]any{"spec": json.RawMessage(canon)}
	if maxPrice != "" {
		nano, err := parseNanoUSD(maxPrice)
		if err != nil {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("--max-price %q: %w", maxPrice, err)}
		}
		if nano > 0 {
			body["max_price_nano_usd_per_cu"] = nano
		}
	}
	return json.Marshal(body)
}

// parseNanoUSD reads a dollar amount such as "0.0000025" or "$1.5" as
// nano-dollars (at most 9 decimal places).
func parseNanoUSD(s string) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "$")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if len(frac) > 9 {
		return 0, errors.New("at most 9 decimal places (nano-dollars)")
	}
	w, err := strconv.ParseUint(whole, 10, 63)
	if err != nil || (frac != "" && strings.Trim(frac, "0123456789") != "") {
		return 0, errors.New("not a dollar amount such as 0.0000025")
	}
	f, _ := strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 63)
	if w > (1<<63-1-f)/1_000_000_000 {
		return 0, errors.New("too large")
	}
	return int64(w*1_000_000_000 + f), nil
}

// quote is POST /v1/quote's answer.
type quote struct {
	ComputeUnits int64 `json:"compute_units"`
	Lines        []struct {
		Item     string `json:"item"`
		MicroUSD int64  `json:"micro_usd"`
		Detail   string `json:"detail"`
	} `json:"lines"`
	TotalMicroUSD     int64 `json:"total_micro_usd"`
	PriceNanoUSDPerCU int64 `json:"price_nano_usd_per_cu"`
}

func newJobQuoteCmd(f *jobFlags) *cobra.Command {
	var specPath, maxPrice string
	cmd := &cobra.Command{
		Use:   "quote --spec FILE",
		Short: "What a job would cost: solver, audit and fee, before posting it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := jobBody(specPath, maxPrice)
			if err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var q quote
			raw, err := c.call(cmd.Context(), "POST", "/v1/quote", idemKey("quote", body), body, &q)
			if err != nil {
				return notThere(err, "quotes (POST /v1/quote)")
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			out := cmd.OutOrStdout()
			rows := [][3]string{{"ITEM", "AMOUNT", "DETAIL"}}
			for _, l := range q.Lines {
				rows = append(rows, [3]string{l.Item, usd(l.MicroUSD), l.Detail})
			}
			rows = append(rows, [3]string{"total", usd(q.TotalMicroUSD), ""})
			wi, wa := 0, 0
			for _, r := range rows {
				wi, wa = max(wi, len(r[0])), max(wa, len(r[1]))
			}
			for _, r := range rows {
				fmt.Fprintln(out, strings.TrimRight(fmt.Sprintf("%-*s  %*s  %s", wi, r[0], wa, r[1], r[2]), " "))
			}
			fmt.Fprintf(out, "%d compute units at $%d.%09d per unit\n", q.ComputeUnits, q.PriceNanoUSDPerCU/1_000_000_000, q.PriceNanoUSDPerCU%1_000_000_000)
			return nil
		},
	}
	cmd.Flags().StringVar(&specPath, "spec", "", "the job's spec (JSON)")
	cmd.Flags().StringVar(&maxPrice, "max-price", "", "price cap in dollars per compute unit, e.g. 0.000002 (default: the market price)")
	return cmd
}

// notThere turns a 404 from an endpoint this coordinator lacks into a
// plain sentence.
func notThere(err error, what string) error {
	var ae *apiError
	switch {
	case !errors.As(err, &ae) || ae.Status != http.StatusNotFound:
	case ae.Code == "":
		return fmt.Errorf("the server answered %s to a request for %s: is the coordinator address the HTTP API of a Beluga coordinator?", ae.Message, what)
	case strings.Contains(ae.Message, "endpoint"):
		return fmt.Errorf("this coordinator does not offer %s; it may be older than this client", what)
	}
	return err
}

// idemKey is a request's Idempotency-Key: derived from what it asks, so
// that running the same command again is recognised as a retry.
func idemKey(kind string, body []byte) string {
	h := sha256.Sum256(body)
	return kind + "-" + hex.EncodeToString(h[:12])
}

// jobRecord is what the client reads of a job (GET /v1/jobs/{id}, POST
// /v1/jobs).
type jobRecord struct {
	ID                string `json:"id"`
	State             string `json:"state"`
	Steps             int64  `json:"steps"`
	CommittedStep     int64  `json:"committed_step"`
	ComputeUnits      int64  `json:"compute_units"`
	EscrowMicroUSD    int64  `json:"escrow_micro_usd"`
	PriceNanoUSDPerCU int64  `json:"price_nano_usd_per_cu"`
	History           []struct {
		Event string    `json:"event"`
		State string    `json:"state"`
		At    time.Time `json:"at"`
	} `json:"history"`
	Progress api.ProgressView `json:"progress"`
	// Solvers are the solvers that ran the job, in turn, with the backend
	// each said it trained on.
	Solvers []struct {
		SolverID string `json:"solver_id"`
		Steps    int64  `json:"steps"`
		Backend  string `json:"backend"`
	} `json:"solvers"`
}

func newJobPostCmd(f *jobFlags) *cobra.Command {
	var specPath, idem, maxPrice string
	cmd := &cobra.Command{
		Use:   "post --spec FILE",
		Short: "Post a job: its escrow is locked from your funds and the market matches it with a solver",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := jobBody(specPath, maxPrice)
			if err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if idem == "" {
				idem = idemKey("post", body)
			}
			var j jobRecord
			raw, err := c.call(cmd.Context(), "POST", "/v1/jobs", idem, body, &j)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "posted job %s\n", j.ID)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "  state\t%s\n", j.State)
			fmt.Fprintf(tw, "  steps\t%d\n", j.Steps)
			fmt.Fprintf(tw, "  compute units\t%d\n", j.ComputeUnits)
			fmt.Fprintf(tw, "  escrow\t%s (locked; what is not spent comes back when the job ends)\n", usd(j.EscrowMicroUSD))
			tw.Flush()
			fmt.Fprintf(out, "follow it: beluga job watch %s\n", j.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&specPath, "spec", "", "the job's spec (JSON)")
	cmd.Flags().StringVar(&maxPrice, "max-price", "", "price cap in dollars per compute unit, e.g. 0.000002 (default: the market price)")
	cmd.Flags().StringVar(&idem, "idempotency-key", "", "Idempotency-Key for the post (default: derived from the request, so a rerun is a retry)")
	return cmd
}

// ---- list, status, watch ---------------------------------------------

func newJobListCmd(f *jobFlags) *cobra.Command {
	var limit int
	var cursor string
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Your jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var items []api.JobSummary
			var next string
			var raws []json.RawMessage
			for {
				q := url.Values{}
				if limit > 0 {
					q.Set("limit", strconv.Itoa(limit))
				}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				var page api.List[api.JobSummary]
				raw, err := c.call(cmd.Context(), "GET", "/v1/jobs?"+q.Encode(), "", nil, &page)
				if err != nil {
					return notThere(err, "job lists (GET /v1/jobs)")
				}
				raws = append(raws, raw)
				items = append(items, page.Items...)
				next = page.NextCursor
				if !all || next == "" {
					break
				}
				cursor = next
			}
			out := cmd.OutOrStdout()
			if f.json {
				if len(raws) == 1 {
					return printJSON(out, raws[0])
				}
				b, _ := json.Marshal(api.List[api.JobSummary]{Items: items})
				return printJSON(out, b)
			}
			if len(items) == 0 {
				fmt.Fprintln(out, "no jobs")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSTATE\tSTEP\tPOSTED\tNAME")
			for _, j := range items {
				fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.State, j.CommittedStep, j.Steps, j.PostedAt.Local().Format("2006-01-02 15:04"), j.Name)
			}
			tw.Flush()
			if next != "" {
				fmt.Fprintf(out, "more: beluga job list --cursor %s (or --all)\n", next)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "jobs per page (default: the coordinator's)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "start after this page (next_cursor of the previous one)")
	cmd.Flags().BoolVar(&all, "all", false, "follow every page")
	return cmd
}

func (c *apiClient) job(ctx context.Context, id string) (*jobRecord, []byte, error) {
	var j jobRecord
	raw, err := c.call(ctx, "GET", "/v1/jobs/"+id, "", nil, &j)
	if err != nil {
		return nil, nil, err
	}
	return &j, raw, nil
}

// terminal reports whether a job state accepts no more events.
func terminal(state string) bool {
	switch state {
	case "settled", "adjudicated_cheat", "cancelled", "expired":
		return true
	}
	return false
}

// progressLine is one line of status: state, step, ETA.
func progressLine(j *jobRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s", j.State)
	p := j.Progress
	step := max(p.CommittedStep, p.ReportedStep, p.LastCheckpointStep)
	if j.Steps > 0 {
		fmt.Fprintf(&b, "  step %d/%d (%d%%)", step, j.Steps, step*100/j.Steps)
	}
	if p.LastLoss != nil {
		fmt.Fprintf(&b, "  loss %.4f", *p.LastLoss)
	}
	if p.ETA != nil {
		fmt.Fprintf(&b, "  eta %s", p.ETA.Local().Format("15:04:05"))
		if p.StepsPerSecond > 0 {
			fmt.Fprintf(&b, " (%.1f steps/s)", p.StepsPerSecond)
		}
	}
	return b.String()
}

func newJobStatusCmd(f *jobFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status JOB",
		Short: "A job's state, progress (committed step, ETA) and, once committed, its final digest",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := f.clientForJob(cmd, args)
			if err != nil {
				return err
			}
			j, raw, err := c.job(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, raw)
			}
			p := j.Progress
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "job\t%s\n", j.ID)
			fmt.Fprintf(tw, "state\t%s\n", j.State)
			fmt.Fprintf(tw, "committed\t%d of %d steps\n", p.CommittedStep, j.Steps)
			if p.ReportedStep > 0 {
				fmt.Fprintf(tw, "reported\tstep %d (the solver's word)\n", p.ReportedStep)
			}
			if p.LastLoss != nil {
				fmt.Fprintf(tw, "loss\t%.4f (the last step's batch, as the solver reported it)\n", *p.LastLoss)
			}
			if p.LastCheckpointAt != nil {
				fmt.Fprintf(tw, "last checkpoint\tstep %d at %s\n", p.LastCheckpointStep, p.LastCheckpointAt.Local().Format(time.DateTime))
			}
			if p.ETA != nil {
				fmt.Fprintf(tw, "eta\t%s (%.1f steps/s)\n", p.ETA.Local().Format(time.DateTime), p.StepsPerSecond)
			}
			fmt.Fprintf(tw, "escrow\t%s\n", usd(j.EscrowMicroUSD))
			for _, s := range j.Solvers {
				on := ""
				if s.Backend != "" {
					on = " on " + s.Backend
				}
				fmt.Fprintf(tw, "solver\t%s%s, %d steps committed\n", s.SolverID, on, s.Steps)
			}
			if p.FinalDigest != "" {
				fmt.Fprintf(tw, "trace root\t%s\n", p.TraceRoot)
				fmt.Fprintf(tw, "final digest\t%s\n", p.FinalDigest)
			}
			if n := len(j.History); n > 0 {
				fmt.Fprintf(tw, "since\t%s (%s)\n", j.History[n-1].At.Local().Format(time.DateTime), j.History[n-1].Event)
			}
			return tw.Flush()
		},
	}
}

func newJobWatchCmd(f *jobFlags) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "watch JOB",
		Short: "Follow a job until it ends (exit 0 when settled, 1 when it ended otherwise)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return &exitError{code: exitUsage, err: errors.New("--interval must be positive")}
			}
			c, id, err := f.clientForJob(cmd, args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			last := ""
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				j, raw, err := c.job(cmd.Context(), id)
				if err != nil {
					return err
				}
				line := progressLine(j)
				if line != last {
					if f.json {
						fmt.Fprintln(out, string(compactJSON(raw)))
					} else {
						fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05"), line)
					}
					last = line
				}
				if terminal(j.State) {
					if j.State == "settled" {
						if !f.json && j.Progress.FinalDigest != "" {
							fmt.Fprintf(out, "settled; final digest %s\ndownload: beluga job download %s\n", j.Progress.FinalDigest, j.ID)
						}
						return nil
					}
					return fmt.Errorf("job %s ended %s", j.ID, j.State)
				}
				select {
				case <-cmd.Context().Done():
					return &exitError{code: exitInterrupted, err: errors.New("interrupted")}
				case <-t.C:
				}
			}
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often to ask")
	return cmd
}

func compactJSON(raw []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// ---- cancel ------------------------------------------------------------

func newJobCancelCmd(f *jobFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JOB",
		Short: "Withdraw a job waiting for a solver; its escrow comes back to your funds",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := f.clientForJob(cmd, args)
			if err != nil {
				return err
			}
			var res struct {
				Job              jobRecord `json:"job"`
				RefundedMicroUSD int64     `json:"refunded_micro_usd"`
			}
			raw, err := c.call(cmd.Context(), "POST", "/v1/jobs/"+id+"/cancel", "cancel-"+id, []byte("{}"), &res)
			if err != nil {
				return notThere(err, "cancellation (POST /v1/jobs/{id}/cancel)")
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "job %s is %s; %s of escrow returned to your funds\n", id, res.Job.State, usd(res.RefundedMicroUSD))
			return nil
		},
	}
}

// ---- download ----------------------------------------------------------

func newJobDownloadCmd(f *jobFlags) *cobra.Command {
	var outPath string
	cmd := &cobra.Command{
		Use:   "download JOB",
		Short: "Download the final weights, checked against the committed final digest",
		Long: `Downloads the job's final state (a safetensors file: every tensor int32,
value / 2^master_frac; see scripts/load_weights.py for NumPy) and checks it
against the final digest the solver committed, recomputing the state digest
here (protocol/core/commit). Nothing is saved unless it matches.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := f.clientForJob(cmd, args)
			if err != nil {
				return err
			}
			res, err := downloadWeights(cmd.Context(), c, id, outPath)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				b, _ := json.Marshal(res)
				return printJSON(out, b)
			}
			fmt.Fprintf(out, "saved %s (%d bytes): job %s at step %d\n", res.File, res.Bytes, res.JobID, res.Step)
			fmt.Fprintf(out, "state digest %s matches the committed final digest\n", res.StateDigest)
			if res.State != "settled" {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: the job is %s: its audit has not closed yet\n", res.State)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&outPath, "out", "o", "", "file to write (default JOB16.safetensors in the current directory)")
	return cmd
}

// downloadResult is what `beluga job download --json` prints.
type downloadResult struct {
	File        string `json:"file"`
	Bytes       int64  `json:"bytes"`
	JobID       string `json:"job_id"`
	Step        int64  `json:"step"`
	StateDigest string `json:"state_digest"`
	Verified    bool   `json:"verified"`
	State       string `json:"job_state"`
}

// downloadWeights fetches the job's final digest, then its weights file;
// it recomputes the state digest and writes the file only if it matches.
func downloadWeights(ctx context.Context, c *apiClient, id, outPath string) (*downloadResult, error) {
	j, _, err := c.job(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.Progress.FinalDigest == "" {
		return nil, fmt.Errorf("job %s is %s and has no committed final digest yet: nothing to download", id, j.State)
	}
	want, err := hex.DecodeString(j.Progress.FinalDigest)
	if err != nil || len(want) != 32 {
		return nil, fmt.Errorf("the coordinator's final digest for job %s is malformed", id)
	}
	dctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	resp, err := c.request(dctx, "GET", "/v1/jobs/"+id+"/weights", "", nil)
	if err != nil {
		return nil, notThere(err, "weights downloads (GET /v1/jobs/{id}/weights)")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxWeightsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("the download broke off: %v", err)
	}
	if len(b) > maxWeightsBytes {
		return nil, fmt.Errorf("the weights file is over %d bytes; refusing it", int64(maxWeightsBytes))
	}
	w, err := api.DecodeWeights(b)
	if err != nil {
		return nil, fmt.Errorf("the coordinator sent something that is not a weights file (%v); nothing was saved", err)
	}
	jid, _ := spec.ParseJobID(id)
	if w.Job != jid {
		return nil, fmt.Errorf("the coordinator sent the weights of another job (%s); nothing was saved", w.Job)
	}
	h := commit.Hasher{Threads: 4}
	got := h.StateDigest(jid, w.State)
	if !bytes.Equal(got[:], want) || w.State.Step != j.Steps {
		return nil, fmt.Errorf("the downloaded weights do not match the committed final digest (computed %x at step %d, committed %x at step %d); nothing was saved", got[:], w.State.Step, want, j.Steps)
	}
	if outPath == "" {
		outPath = id[:16] + ".safetensors"
	}
	if err := writeFileAtomic(outPath, b); err != nil {
		return nil, err
	}
	return &downloadResult{File: outPath, Bytes: int64(len(b)), JobID: id, Step: w.State.Step, StateDigest: hex.EncodeToString(got[:]), Verified: true, State: j.State}, nil
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory, so that path never holds a partial file.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// ---- report ------------------------------------------------------------

func newJobReportCmd(f *jobFlags) *cobra.Command {
	var outPath string
	cmd := &cobra.Command{
		Use:   "report JOB",
		Short: "Fetch the job's signed audit report (check it with `beluga report verify`)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := f.clientForJob(cmd, args)
			if err != nil {
				return err
			}
			raw, err := c.call(cmd.Context(), "GET", "/v1/jobs/"+id+"/report", "", nil, nil)
			if err != nil {
				return notThere(err, "audit reports (GET /v1/jobs/{id}/report)")
			}
			if outPath == "" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			if err := writeFileAtomic(outPath, raw); err != nil {
				return err
			}
			if f.json {
				b, _ := json.Marshal(map[string]any{"file": outPath, "bytes": len(raw), "job_id": id})
				return printJSON(cmd.OutOrStdout(), b)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "saved %s (%d bytes); check it: beluga report verify %s\n", outPath, len(raw), outPath)
			return nil
		},
	}
	cmd.Flags().StringVarP(&outPath, "out", "o", "", "file to write (default: print it)")
	return cmd
}
