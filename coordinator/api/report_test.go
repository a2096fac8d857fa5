package api

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

// TestReportRoute: GET /v1/jobs/{id}/report answers 404 report_not_ready
// until the node stores the report, then the stored bytes to the job's
// client and the operator; another client gets the 404 of a job that
// does not exist.
func TestReportRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fund("acme")
	other := e.clientKey("beta")
	c, b := e.do("POST", "/v1/jobs", e.client, "j1", jobBody(t, 1, 3_000_000))
	if c != 201 {
		t.Fatalf("job: %d %s", c, b)
	}
	var j postedJob
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	path := "/v1/jobs/" + j.ID + "/report"
	if c, b := e.do("GET", path, e.client, "", ""); c != 404 || !bytes.Contains(b, []byte("report_not_ready")) {
		t.Fatalf("before the job ended: %d %s", c, b)
	}
	id, err := spec.ParseJobID(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The audit log so far is typed: null, then what the node logged.
	if c, b := e.do("GET", "/v1/jobs/"+j.ID+"/audit", e.client, "", ""); c != 200 || !bytes.Contains(b, []byte(`"audit":null`)) {
		t.Fatalf("audit before any report: %d %s", c, b)
	}
	if err := e.svc.SetAudit(context.Background(), j.ID, []byte(`{"audits":[],"disputes":[]}`)); err != nil {
		t.Fatal(err)
	}
	if c, b := e.do("GET", "/v1/jobs/"+j.ID+"/audit", e.client, "", ""); c != 200 || !bytes.Contains(b, []byte(`"audit":{"audits":[],"disputes":[]}`)) {
		t.Fatalf("audit log: %d %s", c, b)
	}
	stored := []byte(`{"version":1,"job_id":"` + j.ID + `"}`)
	if err := e.svc.SetReport(context.Background(), id, stored); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{e.client, e.operator} {
		if c, b := e.do("GET", path, k, "", ""); c != 200 || !bytes.Equal(bytes.TrimSpace(b), stored) {
			t.Fatalf("report: %d %s", c, b)
		}
	}
	missing := strings.Repeat("ab", 32)
	c1, b1 := e.do("GET", path, other, "", "")
	c2, b2 := e.do("GET", "/v1/jobs/"+missing+"/report", other, "", "")
	if c1 != 404 || c2 != 404 || string(bytes.Replace(b1, []byte(j.ID), []byte(missing), 1)) != string(b2) {
		t.Fatalf("someone else's report: %d %s; no job: %d %s", c1, b1, c2, b2)
	}
}
