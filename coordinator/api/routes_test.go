package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestWrongMethodIs405: a known path asked with another method gets 405
// with an Allow header and a problem (application/problem+json); before,
// the catch-all route answered 404 "no such endpoint". Unknown paths still
// get 404.
func TestWrongMethodIs405(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	job := "/v1/jobs/" + strings.Repeat("ab", 32)
	for _, c := range []struct {
		method, path string
		status       int
		allow        []string
	}{
		{"GET", "/v1/deposits", 405, []string{"POST"}},
		{"PUT", "/v1/jobs", 405, []string{"POST"}},
		{"DELETE", job, 405, []string{"GET", "HEAD"}},
		{"POST", job + "/audit", 405, []string{"GET", "HEAD"}},
		{"POST", "/v1/openapi.yaml", 405, []string{"GET", "HEAD"}},
		{"GET", "/v1/keys", 405, []string{"POST"}},
		{"GET", "/v1/nothing", 404, nil},
		{"POST", "/v2/jobs", 404, nil},
	} {
		req, _ := http.NewRequest(c.method, e.srv.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+e.operator)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb Problem
		err = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		want := map[int]string{404: "not_found", 405: "method_not_allowed"}[c.status]
		if resp.StatusCode != c.status || err != nil || eb.Code != want || resp.Header.Get("Content-Type") != ProblemContentType {
			t.Errorf("%s %s: %d %+v %v", c.method, c.path, resp.StatusCode, eb, err)
		}
		allow := resp.Header.Get("Allow")
		for _, m := range c.allow {
			if !strings.Contains(allow, m) {
				t.Errorf("%s %s: Allow %q lacks %s", c.method, c.path, allow, m)
			}
		}
		if c.allow == nil && allow != "" {
			t.Errorf("%s %s: Allow %q on a 404", c.method, c.path, allow)
		}
	}
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

// events returns the attributes of every record with message msg.
func (h *recorder) events(msg string) []map[string]slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]slog.Value
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		m := map[string]slog.Value{"level": slog.StringValue(r.Level.String())}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
		out = append(out, m)
	}
	return out
}

// TestRequestsAreLogged: every request is one structured "request" event
// (the access log) with its method, path, route, status, bytes, duration,
// remote address, error code and principal; failures the coordinator must
// look at (5xx, ledger_rejected) are at level ERROR with the error,
// refusals and successes at INFO, health probes and metric scrapes at
// DEBUG (WARN when not ready).
func TestRequestsAreLogged(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := newEnvLog(t, slog.New(rec))
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d1", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":5}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	if c, _ := e.do("POST", "/v1/jobs", e.client, "j1", jobBody(t, 1, 3_000_000)); c != 422 {
		t.Fatalf("unfunded job: %d", c)
	}
	e.led.Close() // the ledger goes away: the next deposit cannot apply
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d2", `{"bank_ref":"w2","account":"client:acme","amount_micro_usd":5}`); c != 503 {
		t.Fatalf("deposit on a closed ledger: %d %s", c, b)
	}
	ev := rec.events("request")
	if len(ev) != 3 {
		t.Fatalf("%d request events, want 3: %v", len(ev), ev)
	}
	want := []struct{ level, route, code, subject string }{
		{"INFO", "POST /v1/deposits", "", "operator"},
		{"INFO", "POST /v1/jobs", "insufficient_funds", "acme"},
		{"ERROR", "POST /v1/deposits", "unavailable", "operator"},
	}
	for i, w := range want {
		got := ev[i]
		if got["level"].String() != w.level || got["route"].String() != w.route || got["subject"].String() != w.subject {
			t.Errorf("event %d: %v, want %+v", i, got, w)
		}
		if c, ok := got["code"]; w.code != "" && (!ok || c.String() != w.code) {
			t.Errorf("event %d: code %v, want %s", i, got["code"], w.code)
		}
	}
	if _, ok := ev[2]["err"]; !ok {
		t.Errorf("the failed request's event has no error: %v", ev[2])
	}
	for i, got := range ev {
		if got["method"].String() != "POST" || got["path"].String() != strings.Fields(want[i].route)[1] ||
			got["bytes"].Int64() <= 0 || got["duration"].Kind() != slog.KindDuration || !strings.HasPrefix(got["remote"].String(), "127.0.0.1:") {
			t.Errorf("event %d lacks an access-log field: %v", i, got)
		}
	}
	// Probes and scrapes are DEBUG: a load balancer polling /healthz does
	// not fill the log.
	if c, _ := e.do("GET", "/healthz", "", "", ""); c != 503 {
		t.Fatalf("healthz on a closed ledger: %d", c)
	}
	if ev := rec.events("request"); len(ev) != 4 || ev[3]["route"].String() != "GET /healthz" || ev[3]["level"].String() != "WARN" {
		t.Errorf("an unhealthy probe is not a WARN event: %v", ev[len(ev)-1])
	}
}
