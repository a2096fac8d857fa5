package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/coordinatord"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// TestDaemonSignupCommand: against a real coordinator (its node, API and
// sign-up), `beluga solver signup` and `beluga verifier signup` sign with
// the key in --dir, print the party's key and the bond's deposit
// reference and save the key in --dir, where `beluga solver status` then
// finds it; the key is the party's, of its role (a verifier is enrolled);
// a second sign-up is refused with the operator's way out; a statement
// for another coordinator is refused and saves nothing.
func TestDaemonSignupCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n, err := p2p.New(ctx, p2p.WithListen("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := coordinatord.Open(ctx, coordinatord.Config{DataDir: t.TempDir(), P2P: n, Signup: &api.Signup{Instructions: "Wire to ACME Bank"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := httptest.NewServer(c.API)
	defer srv.Close()
	coord := n.Addrs()[0]

	for _, role := range []wire.Role{wire.RoleSolver, wire.RoleVerifier} {
		r := roleName(role)
		dir := filepath.Join(t.TempDir(), r)
		_, party, err := identity(role, keyPath("", dir))
		if err != nil {
			t.Fatal(err)
		}
		code, out, errOut := run(t, r, "signup", "--coordinator", coord, "--coordinator-http", srv.URL, "--dir", dir)
		if code != 0 {
			t.Fatalf("%s signup: exit %d: %s", r, code, errOut)
		}
		saved, err := os.ReadFile(filepath.Join(dir, apiKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		key := strings.TrimSpace(string(saved))
		for _, want := range []string{r + " party " + party, key, "BELUGA-" + strings.ToUpper(party), r + "_bond:" + party, "ACME Bank", "beluga " + r + " --coordinator " + coord} {
			if !strings.Contains(out, want) {
				t.Errorf("%s signup output lacks %q:\n%s", r, want, out)
			}
		}
		p, err := c.Keys.Authenticate(ctx, key)
		if err != nil || p.Subject != party || p.Role.String() != r {
			t.Fatalf("%s key: %+v %v", r, p, err)
		}
		if role == wire.RoleVerifier {
			if ok, err := c.Service.Enrolled(ctx, party); err != nil || !ok {
				t.Fatalf("verifier not enrolled: %v", err)
			}
		} else {
			// status reads the saved key without --api-key.
			var so, se bytes.Buffer
			if code := Main([]string{"solver", "status", "--coordinator", srv.URL, "--dir", dir}, nil, &so, &se); code != 0 || !strings.Contains(so.String(), "solver "+party) {
				t.Fatalf("status with the saved key: exit %d: %s %s", code, so.String(), se.String())
			}
		}
		code, _, errOut = run(t, r, "signup", "--coordinator", coord, "--coordinator-http", srv.URL, "--dir", dir)
		if code == 0 || !strings.Contains(errOut, "already has a "+r+" API key") || !strings.Contains(errOut, "beluga operator key") {
			t.Fatalf("second %s signup: exit %d: %s", r, code, errOut)
		}
	}

	// A statement for another coordinator: refused, nothing saved.
	other, err := p2p.New(ctx, p2p.WithListen("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	dir := t.TempDir()
	_, party, _ := identity(wire.RoleSolver, keyPath("", dir))
	code, _, errOut := run(t, "solver", "signup", "--coordinator", other.Addrs()[0], "--coordinator-http", srv.URL, "--dir", dir)
	if code == 0 || !strings.Contains(errOut, "signed for coordinator") {
		t.Fatalf("signup for another coordinator: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, apiKeyFile)); err == nil {
		t.Fatal("a refused sign-up saved a key")
	}
	if has, err := c.Service.HasKey(ctx, party, auth.RoleSolver); err != nil || has {
		t.Fatalf("a refused sign-up issued a key (%v)", err)
	}
	if code, _, errOut := run(t, "solver", "signup", "--dir", dir); code != exitUsage || !strings.Contains(errOut, "--coordinator") {
		t.Fatalf("no addresses: exit %d: %s", code, errOut)
	}
}
