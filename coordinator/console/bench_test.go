package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/console"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// BenchmarkPages times the console's pages, each one full request over
// HTTP (log-in cookie, in-process API calls, template), on a coordinator
// holding 1,000 jobs of one client. BENCHMARKS.md ("Web console") records
// the numbers; the budget is 300 ms a page.
//
//	go test -run '^$' -bench BenchmarkPages -benchtime 20x ./coordinator/console
func BenchmarkPages(b *testing.B) {
	c := newCoord(b)
	ctx := context.Background()
	svc := c.cd.Service
	if _, err := svc.RecordDeposit(ctx, service.Deposit{BankRef: "bench", Account: service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}, AmountMicroUSD: 1 << 50}); err != nil {
		b.Fatal(err)
	}
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		b.Fatal(err)
	}
	var last string
	for i := range 1000 {
		s.Seed = uint64(i + 1)
		js, _ := s.JSON()
		j, err := svc.PostJob(ctx, service.PostJobRequest{ClientID: "acme", Spec: js})
		if err != nil {
			b.Fatal(err)
		}
		last = j.ID
	}
	clientKey, _, _ := c.cd.Keys.Issue(ctx, "acme", auth.RoleClient, 0)
	solverKey, _, _ := c.cd.Keys.Issue(ctx, "sgpu1", auth.RoleSolver, 0)
	login := func(key string) *http.Client {
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse(c.srv.URL)
		jar.SetCookies(u, []*http.Cookie{{Name: console.CookieName, Value: key}})
		return &http.Client{Jar: jar}
	}
	pages := []struct {
		name, path string
		client     *http.Client
	}{
		{"landing", "/", http.DefaultClient},
		{"client", "/client", login(clientKey)},
		{"job", "/jobs/" + last, login(clientKey)},
		{"job-live", "/jobs/" + last + "/live", login(clientKey)},
		{"solver", "/solver", login(solverKey)},
		{"operator", "/operator", login(c.opKey)},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := p.client.Get(c.srv.URL + p.path)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n < 200 {
					b.Fatalf("%s: %d, %d bytes", p.path, resp.StatusCode, n)
				}
			}
		})
	}
}
