package console_test

import (
	"context"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/auth"
)

// TestStartPagesShowSignup: the solver's and verifier's start pages show
// the one-line install-and-sign-up command for each platform, pointed at
// this coordinator (its HTTP address), before the run command, and no
// longer send the visitor to the operator for a key first.
func TestStartPagesShowSignup(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	b := c.browser()
	for _, role := range []string{"solver", "verifier"} {
		code, body := b.get("/" + role + "/start")
		if code != 200 {
			t.Fatalf("%s start: %d", role, code)
		}
		for _, os := range []string{"Linux", "macOS", "Windows"} {
			m := regexp.MustCompile(`id="signup-` + os + `"[^>]*>([^<]*)</pre>`).FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("%s start: no %s sign-up command", role, os)
			}
			line := html.UnescapeString(m[1])
			if !strings.Contains(line, "go install github.com/beluga-compute/beluga/cmd/beluga@") ||
				!strings.Contains(line, " "+role+" signup --coordinator ") || !strings.Contains(line, "--coordinator-http "+c.srv.URL) || !strings.Contains(line, "--dir ") {
				t.Errorf("%s %s sign-up command %q", role, os, line)
			}
		}
		if strings.Index(body, `id="signup-Linux"`) > strings.Index(body, `id="cmd-Linux"`) {
			t.Errorf("%s start: the run command comes before the sign-up", role)
		}
		if strings.Contains(body, "Give the party ID to the operator: it records your bond and issues your API key") {
			t.Errorf("%s start still sends the visitor to the operator for a key", role)
		}
		if !strings.Contains(body, "BELUGA-") {
			t.Errorf("%s start does not say the bond's reference", role)
		}
	}
}

// TestPartyPageShowsBondReference: a solver without its bond is told to
// pay it in quoting the reference a sign-up prints (BELUGA-<PARTY>).
func TestPartyPageShowsBondReference(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	key, _, err := c.cd.Keys.Issue(context.Background(), "sabcdefg", auth.RoleSolver, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := c.browser()
	b.login(key)
	code, body := b.get("/solver")
	if code != 200 || !strings.Contains(body, `<code id="bond-ref">BELUGA-SABCDEFG</code>`) {
		t.Fatalf("solver page: %d, no bond reference", code)
	}
}
