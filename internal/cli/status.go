package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/beluga-compute/beluga/internal/eventlog"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// A daemon's identity, what it needs from the operator, and `beluga solver
// status` / `beluga verifier status` over GET /v1/parties/{id}.

// roleName is "solver" or "verifier".
func roleName(role wire.Role) string {
	if role == wire.RoleVerifier {
		return "verifier"
	}
	return "solver"
}

// keyPath is the daemon's key file: --key if given, else peer.key in its
// work directory.
func keyPath(key, dir string) string {
	if key != "" {
		return key
	}
	return filepath.Join(dir, "peer.key")
}

// identity loads (or creates) the daemon's key and returns its peer ID
// and ledger party.
func identity(role wire.Role, keyFile string) (peer.ID, string, error) {
	k, err := p2p.LoadOrCreateKey(keyFile)
	if err != nil {
		return "", "", fmt.Errorf("the identity key %s: %w", keyFile, err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return "", "", err
	}
	return id, join.PartyID(role, id), nil
}

// onboarding is what a daemon prints at start: who it is and what the
// operator must do for it to get work, as commands to paste.
func onboarding(role wire.Role, id peer.ID, party, keyFile, dir string) string {
	r := roleName(role)
	var b strings.Builder
	fmt.Fprintf(&b, "%s party %s (peer %s, key %s)\n", r, party, id, keyFile)
	fmt.Fprintf(&b, "Get this %s's API key yourself (saved in %s; a coordinator that takes sign-ups):\n", r, dir)
	fmt.Fprintf(&b, "  beluga %s signup --coordinator <the coordinator's multiaddr> --coordinator-http http://<coordinator>:8700 --dir %s\n", r, dir)
	fmt.Fprintf(&b, "To get work, the coordinator's operator runs, once (the key only if you did not sign up):\n")
	fmt.Fprintf(&b, "  beluga operator deposit --account %s_bond:%s --usd 100 --bank-ref %s-bond-1   # the bond (the coordinator says the minimum when this %s joins)\n", r, party, party, r)
	fmt.Fprintf(&b, "  beluga operator key --role %s --subject %s   # this %s's API key (for `beluga %s status`%s)\n", r, party, r, r,
		map[bool]string{true: "; it also enrols the verifier", false: ""}[role == wire.RoleVerifier])
	fmt.Fprintf(&b, "With the key, this %s sees its bond, jobs, earnings and next payout:\n", r)
	fmt.Fprintf(&b, "  BELUGA_API_KEY=<key> beluga %s status --coordinator http://<coordinator>:8700 --dir %s\n", r, dir)
	fmt.Fprintf(&b, "and registers the bank account its earnings are paid to (ACH, on the 1st and 15th):\n")
	fmt.Fprintf(&b, "  BELUGA_API_KEY=<key> beluga %s bank --coordinator http://<coordinator>:8700 --party %s --holder NAME --routing NUMBER --account NUMBER", r, party)
	return b.String()
}

// daemonLogger is a daemon's logger: one human-readable line per event on
// out, or JSON lines with --log-json.
func daemonLogger(out io.Writer, jsonLines bool) *slog.Logger {
	if jsonLines {
		return slog.New(slog.NewJSONHandler(out, nil))
	}
	return eventlog.New(func(s string) { fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05.000"), s) })
}

// partyStatus is GET /v1/parties/{id}'s answer (service.PartyStatus).
type partyStatus struct {
	Party            string `json:"party"`
	Role             string `json:"role"`
	BondMicroUSD     int64  `json:"bond_micro_usd"`
	BondHeldMicroUSD int64  `json:"bond_held_micro_usd"`
	MinBondMicroUSD  int64  `json:"min_bond_micro_usd"`
	EarningsMicroUSD int64  `json:"earnings_micro_usd"`
	Jobs             []struct {
		JobID string `json:"job_id"`
		State string `json:"state"`
		Steps int64  `json:"steps"`
	} `json:"jobs"`
	NextPayout struct {
		Period       string    `json:"period"`
		At           time.Time `json:"at"`
		AmountCents  int64     `json:"amount_cents"`
		MinimumCents int64     `json:"minimum_cents"`
		BankDetails  bool      `json:"bank_details"`
	} `json:"next_payout"`
}

// dollars formats micro-dollars as "$12.345678" trimmed to cents when
// exact.
func dollars(micro int64) string {
	sign := ""
	if micro < 0 {
		sign, micro = "-", -micro
	}
	s := fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000)
	if strings.HasSuffix(s, "0000") {
		s = s[:len(s)-4]
	}
	return sign + "$" + s
}

// render writes the status for people.
func (st *partyStatus) render(w io.Writer) {
	fmt.Fprintf(w, "%s %s\n", st.Role, st.Party)
	fmt.Fprintf(w, "bond      %s free, %s locked in jobs (at least %s free gets work)\n", dollars(st.BondMicroUSD), dollars(st.BondHeldMicroUSD), dollars(st.MinBondMicroUSD))
	if st.BondMicroUSD < st.MinBondMicroUSD {
		fmt.Fprintf(w, "          below the minimum: no work until the operator deposits %s more to %s_bond:%s\n", dollars(st.MinBondMicroUSD-st.BondMicroUSD), st.Role, st.Party)
	}
	fmt.Fprintf(w, "earnings  %s not yet paid out\n", dollars(st.EarningsMicroUSD))
	p := st.NextPayout
	fmt.Fprintf(w, "payout    next run %s (%s): ", p.Period, p.At.Local().Format("Mon 2 Jan 15:04 MST"))
	switch {
	case !p.BankDetails:
		fmt.Fprintf(w, "pays nothing: no bank details on file (beluga %s bank --party %s ...)\n", st.Role, st.Party)
	case p.AmountCents == 0:
		fmt.Fprintf(w, "pays nothing: earnings below the $%d.%02d minimum\n", p.MinimumCents/100, p.MinimumCents%100)
	default:
		fmt.Fprintf(w, "$%d.%02d\n", p.AmountCents/100, p.AmountCents%100)
	}
	fmt.Fprintf(w, "jobs      %d\n", len(st.Jobs))
	for _, j := range st.Jobs {
		if st.Role == "solver" {
			fmt.Fprintf(w, "  %s  %-20s %d steps\n", j.JobID[:min(16, len(j.JobID))], j.State, j.Steps)
		} else {
			fmt.Fprintf(w, "  %s  %s\n", j.JobID[:min(16, len(j.JobID))], j.State)
		}
	}
}

// newPartyStatusCmd is `beluga solver status` / `beluga verifier status`.
func newPartyStatusCmd(role wire.Role, defaultDir string) *cobra.Command {
	r := roleName(role)
	var coordinator, apiKey, dir, keyFile, party string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: fmt.Sprintf("Show this %s's bond, jobs, earnings and next payout", r),
		Long: fmt.Sprintf(`Reads GET /v1/parties/{party} from the coordinator's HTTP API with this
%[1]s's own API key (the operator issues it: beluga operator key --role %[1]s
--subject PARTY). The party is the one of the key file in --dir (or --key),
as the daemon prints it at start, unless --party names it.

The coordinator's address and the key come from --coordinator and
--api-key, else the environment (BELUGA_COORDINATOR, BELUGA_API_KEY).`, r),
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if coordinator == "" {
				coordinator = os.Getenv("BELUGA_COORDINATOR")
			}
			apiKey = savedAPIKey(apiKey, dir) // the flag, $BELUGA_API_KEY, or a sign-up's in --dir
			if party == "" {
				kf := keyPath(keyFile, dir)
				if _, err := os.Stat(kf); err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("no key file %s: give --dir (the daemon's), --key or --party", kf)}
				}
				var err error
				if _, party, err = identity(role, kf); err != nil {
					return err
				}
			}
			if coordinator == "" || apiKey == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("%s %s: give --coordinator (the HTTP API, e.g. http://127.0.0.1:8700) and --api-key (or BELUGA_COORDINATOR, BELUGA_API_KEY); the operator issues the key with: beluga operator key --role %s --subject %s", r, party, r, party)}
			}
			st, raw, err := fetchParty(c.Context(), coordinator, apiKey, party, r)
			if err != nil {
				return err
			}
			if asJSON {
				_, err := fmt.Fprintf(c.OutOrStdout(), "%s\n", raw)
				return err
			}
			st.render(c.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&coordinator, "coordinator", "", "the coordinator's HTTP API, e.g. http://127.0.0.1:8700")
	f.StringVar(&apiKey, "api-key", "", fmt.Sprintf("this %s's API key", r))
	f.StringVar(&dir, "dir", defaultDir, fmt.Sprintf("the %s's work directory (its key is peer.key there)", r))
	f.StringVar(&keyFile, "key", "", "the key file (default: peer.key in --dir)")
	f.StringVar(&party, "party", "", "the party ID (default: the key's)")
	f.BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

// fetchParty reads GET /v1/parties/{party}.
func fetchParty(ctx context.Context, base, key, party, role string) (*partyStatus, []byte, error) {
	u := strings.TrimSuffix(base, "/") + "/v1/parties/" + url.PathEscape(party) + "?role=" + role
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("the coordinator address %q: %w", base, err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, unreachable(base, "--coordinator", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the coordinator's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("the coordinator refused (%s): %s", resp.Status, problemText(raw))
	}
	var st partyStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, nil, fmt.Errorf("the coordinator's answer is not a party status: %w", err)
	}
	return &st, raw, nil
}

// problemText is the message of an API error body (RFC 9457 detail, or
// the older {"error": {"message"}}), else the body.
func problemText(raw []byte) string {
	var p struct {
		Detail string `json:"detail"`
		Error  struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &p) == nil {
		if p.Detail != "" {
			return p.Detail
		}
		if p.Error.Message != "" {
			return p.Error.Message
		}
	}
	return strings.TrimSpace(string(raw))
}

// errNoCoordinator: a daemon started without --coordinator.
var errNoCoordinator = errors.New("--coordinator is required: the coordinator's libp2p address, as it prints it (/ip4/…/tcp/…/p2p/12D3…)")

// The events watchParty logs: what the coordinator's ledger says of the
// party's jobs after their commitment, which the daemon cannot see over
// libp2p.
const (
	// eventSettled: a job of the party settled ("job", "state"; for a
	// solver or verifier, it was paid into its earnings).
	eventSettled = "job settled: paid"
	// eventJobEnded: a job of the party ended otherwise ("job", "state":
	// adjudicated_cheat, expired, cancelled).
	eventJobEnded = "job ended"
	// eventEarnings: the party's unpaid earnings changed
	// ("earnings_micro_usd", "next_payout", "next_payout_cents").
	eventEarnings = "earnings"
	// eventNoBank: earnings wait and no bank details are on file (Warn,
	// once).
	eventNoBank = "earnings will not be paid: no bank details on file"
)

// watchParty polls the party's status every period until ctx ends and
// logs what changed: jobs settled (paid) or ended otherwise, earnings,
// and missing bank details. A failed poll is logged at Debug and retried.
func watchParty(ctx context.Context, log *slog.Logger, fetch func(context.Context) (*partyStatus, error), every time.Duration) {
	var last *partyStatus
	warnedBank := false
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st, err := fetch(ctx)
		if err != nil {
			log.Debug("reading this party's status", "err", err)
		} else {
			logChanges(log, last, st, &warnedBank)
			last = st
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logChanges logs what differs from prev (nil: the first reading, which
// logs only the earnings and the bank details warning).
func logChanges(log *slog.Logger, prev, st *partyStatus, warnedBank *bool) {
	was := map[string]string{}
	if prev != nil {
		for _, j := range prev.Jobs {
			was[j.JobID] = j.State
		}
	}
	if prev != nil {
		for _, j := range st.Jobs {
			if was[j.JobID] == j.State {
				continue
			}
			short := j.JobID[:min(12, len(j.JobID))]
			switch j.State {
			case "settled":
				log.Info(eventSettled, "job", short, "state", j.State)
			case "adjudicated_cheat", "expired", "cancelled":
				log.Info(eventJobEnded, "job", short, "state", j.State)
			}
		}
	}
	if prev == nil || prev.EarningsMicroUSD != st.EarningsMicroUSD {
		log.Info(eventEarnings, "earnings_micro_usd", st.EarningsMicroUSD, "next_payout", st.NextPayout.Period, "next_payout_cents", st.NextPayout.AmountCents)
	}
	if st.EarningsMicroUSD > 0 && !st.NextPayout.BankDetails && !*warnedBank {
		*warnedBank = true
		log.Warn(eventNoBank, "party", st.Party, "fix", fmt.Sprintf("beluga %s bank --party %s --holder NAME --routing NUMBER --account NUMBER", st.Role, st.Party))
	}
}

// partyAPI is a daemon's optional access to the coordinator's HTTP API
// with its own key, to log what happens to its jobs after their
// commitment (settled and paid, slashed) and its earnings.
type partyAPI struct {
	url, key string
	every    time.Duration
}

func (a *partyAPI) flags(f *pflag.FlagSet) {
	f.StringVar(&a.url, "coordinator-http", "", "the coordinator's HTTP API, e.g. http://127.0.0.1:8700 (default $BELUGA_COORDINATOR); with the API key, the daemon logs its jobs settled and paid, and its earnings")
	f.StringVar(&a.key, "api-key", "", "this daemon's own API key (default $BELUGA_API_KEY; the operator issues it: beluga operator key --role ROLE --subject PARTY)")
	f.DurationVar(&a.every, "status-every", time.Minute, "how often to read this party's status from the HTTP API")
}

// watchOwnParty starts watchParty for the daemon's own party when the
// API and a key are given; the function it returns stops it and waits.
func watchOwnParty(ctx context.Context, log *slog.Logger, role wire.Role, id peer.ID, a partyAPI) func() {
	if a.url == "" {
		a.url = os.Getenv("BELUGA_COORDINATOR")
	}
	if a.key == "" {
		a.key = os.Getenv("BELUGA_API_KEY")
	}
	if a.url == "" || a.key == "" || a.every <= 0 {
		return func() {}
	}
	party, r := join.PartyID(role, id), roleName(role)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchParty(ctx, log, func(ctx context.Context) (*partyStatus, error) {
			st, _, err := fetchParty(ctx, a.url, a.key, party, r)
			return st, err
		}, a.every)
	}()
	return func() { cancel(); <-done }
}

// unreachable words a failed request to the coordinator's HTTP API at
// base, whose address the user gave with flag.
func unreachable(base, flag string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot reach the coordinator at %s: nothing answers there (is it running? is %s its HTTP address?)", base, flag)
	}
	return fmt.Errorf("cannot reach the coordinator at %s: %w", base, err)
}
