package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// apiKeyFile is where `beluga solver|verifier signup` saves the daemon's
// API key, in its --dir; the daemon reads it from there when neither
// --api-key nor $BELUGA_API_KEY gives one.
const apiKeyFile = "api.key"

// savedAPIKey is key, else $BELUGA_API_KEY, else the key saved in dir by
// a sign-up ("" if none).
func savedAPIKey(key, dir string) string {
	if key != "" {
		return key
	}
	if k := os.Getenv("BELUGA_API_KEY"); k != "" {
		return k
	}
	b, err := os.ReadFile(filepath.Join(dir, apiKeyFile))
	if err != nil || len(b) > 4096 {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// newSignupCmd is `beluga solver signup` / `beluga verifier signup`.
func newSignupCmd(role wire.Role, defaultDir string) *cobra.Command {
	r := roleName(role)
	var coordinator, httpURL, dir, keyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "signup --coordinator ADDR --coordinator-http URL",
		Short: fmt.Sprintf("Sign this %s up with a coordinator for itself: get its API key", r),
		Long: fmt.Sprintf(`Signs, with this %[1]s's identity key (peer.key in --dir, created if absent),
a statement naming the role, its peer ID, the coordinator's peer ID (the /p2p/
part of --coordinator) and the time, and posts it to the coordinator's HTTP API
(POST /v1/signup/daemon). The coordinator issues an API key of the %[1]s role for
the %[1]s's party; it is printed once and saved to %[2]s in --dir (mode 0600),
where the daemon and 'beluga %[1]s status' find it.

The bond is still paid in by bank transfer: the answer gives the reference to
quote, and the operator records the transfer as the bond's deposit.`, r, apiKeyFile),
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if httpURL == "" {
				httpURL = os.Getenv("BELUGA_COORDINATOR")
			}
			if coordinator == "" || httpURL == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("give --coordinator (the coordinator's multiaddr, …/p2p/<peer ID>, as the %s runs with) and --coordinator-http (its HTTP API, e.g. http://127.0.0.1:8700)", r)}
			}
			coord, err := join.Coordinator(coordinator)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			kf := keyPath(keyFile, dir)
			key, err := p2p.LoadOrCreateKey(kf)
			if err != nil {
				return fmt.Errorf("the identity key %s: %w", kf, err)
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return fmt.Errorf("the identity key %s: %w", kf, err)
			}
			st := join.SignupStatement{Role: role, Peer: id, Coordinator: coord, Time: time.Now()}
			pub, sig, err := st.Sign(key)
			if err != nil {
				return fmt.Errorf("the identity key %s: %w", kf, err)
			}
			body, _ := json.Marshal(api.DaemonSignupRequest{Role: r, PeerID: id.String(), PublicKey: pub, Coordinator: coord.String(), SignedAt: st.Time.Unix(), Signature: sig})
			res, raw, err := postDaemonSignup(c.Context(), httpURL, body)
			if err != nil {
				return fmt.Errorf("%s %s: %w", r, join.PartyID(role, id), err)
			}
			saved := filepath.Join(dir, apiKeyFile)
			if err = os.MkdirAll(dir, 0o700); err == nil {
				err = os.WriteFile(saved, []byte(res.Key+"\n"), 0o600)
			}
			if err != nil {
				return fmt.Errorf("signed up, but saving the key to %s failed (%v): the key, shown once, is %s", saved, err, res.Key)
			}
			if asJSON {
				_, err := fmt.Fprintf(c.OutOrStdout(), "%s\n", raw)
				return err
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "%s party %s (peer %s) signed up with %s\n", r, res.Subject, res.PeerID, strings.TrimSuffix(httpURL, "/"))
			fmt.Fprintf(w, "API key (shown once; saved to %s): %s\n", saved, res.Key)
			fmt.Fprintf(w, "Bond: at least %s free gets work. Pay it in by bank transfer quoting the reference %s (account %s);\n", usdOf(res.MinBondMicroUSD), res.Bond.Reference, res.Bond.Account)
			fmt.Fprintf(w, "  the operator records it as your bond. %s\n", res.Bond.Instructions)
			fmt.Fprintf(w, "Next: run the %s (it reads the key from %s):\n  beluga %s --coordinator %s --coordinator-http %s --dir %s\n", r, saved, r, coordinator, httpURL, dir)
			fmt.Fprintf(w, "and log in to the console (%s/login) with the key to see your bond, jobs and earnings.\n", strings.TrimSuffix(httpURL, "/"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&coordinator, "coordinator", "", "the coordinator's multiaddr (…/p2p/<peer ID>), as the daemon runs with")
	f.StringVar(&httpURL, "coordinator-http", "", "the coordinator's HTTP API, e.g. http://127.0.0.1:8700 (default $BELUGA_COORDINATOR)")
	f.StringVar(&dir, "dir", defaultDir, fmt.Sprintf("the %s's work directory (its identity key is peer.key there; the API key is saved there)", r))
	f.StringVar(&keyFile, "key", "", "the identity key file (default: peer.key in --dir)")
	f.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	return cmd
}

// usdOf formats micro-dollars as dollars ("$100.00").
func usdOf(micro int64) string {
	return fmt.Sprintf("$%d.%02d", micro/1_000_000, micro%1_000_000/10_000)
}

// postDaemonSignup posts a sign-up statement and reads the answer.
func postDaemonSignup(ctx context.Context, base string, body []byte) (*api.DaemonSignupResult, []byte, error) {
	u := strings.TrimSuffix(base, "/") + "/v1/signup/daemon"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("the coordinator address %q: %w", base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, nil, unreachable(base, "--coordinator-http", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the coordinator's answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, nil, fmt.Errorf("the coordinator refused the sign-up (%s): %s", resp.Status, problemText(raw))
	}
	var res api.DaemonSignupResult
	if err := json.Unmarshal(raw, &res); err != nil || res.Key == "" {
		return nil, nil, fmt.Errorf("the coordinator's answer is not a sign-up result: %s", problemText(raw))
	}
	return &res, raw, nil
}
