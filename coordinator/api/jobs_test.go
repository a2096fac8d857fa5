package api

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/spec"
)

// clientKey issues a client key for subject through the API.
func (e *env) clientKey(subject string) string {
	e.t.Helper()
	c, b := e.do("POST", "/v1/keys", e.operator, "key-"+subject, `{"subject":"`+subject+`","role":"client"}`)
	if c != 201 {
		e.t.Fatalf("issue key: %d %s", c, b)
	}
	var out struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Key
}

func (e *env) fund(party string) {
	e.t.Helper()
	if c, b := e.do("POST", "/v1/deposits", e.operator, "fund-"+party, `{"bank_ref":"fund-`+party+`","account":"client:`+party+`","amount_micro_usd":1000000000}`); c != 201 {
		e.t.Fatalf("deposit: %d %s", c, b)
	}
}

type postedJob struct {
	ID       string          `json:"id"`
	ClientID string          `json:"client_id"`
	SpecID   string          `json:"spec_id"`
	Spec     json.RawMessage `json:"spec"`
}

// TestJobExistenceDoesNotLeak: another client asking for a job gets the
// very answer a job that does not exist gets (status and body), for the
// job and its audit (the problem's instance is the caller's own path);
// before, the bodies differed.
func TestJobExistenceDoesNotLeak(t *testing.T) {
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
	missing := strings.Repeat("ab", 32)
	for _, suffix := range []string{"", "/audit"} {
		c1, b1 := e.do("GET", "/v1/jobs/"+j.ID+suffix, other, "", "")
		c2, b2 := e.do("GET", "/v1/jobs/"+missing+suffix, other, "", "")
		// The bodies differ only in the instance, the path the caller
		// sent.
		b1 = bytes.Replace(b1, []byte(j.ID), []byte(missing), 1)
		if c1 != 404 || c1 != c2 || string(b1) != string(b2) {
			t.Errorf("GET %s: someone else's job: %d %s; no job: %d %s", suffix, c1, b1, c2, b2)
		}
		// The operator and the owner see it.
		if c, _ := e.do("GET", "/v1/jobs/"+j.ID+suffix, e.client, "", ""); c != 200 {
			t.Errorf("owner GET %s: %d", suffix, c)
		}
		if c, _ := e.do("GET", "/v1/jobs/"+j.ID+suffix, e.operator, "", ""); c != 200 {
			t.Errorf("operator GET %s: %d", suffix, c)
		}
	}
}

// TestTwoClientsPostOneSpec: jobs are per client. A second client posting
// a spec the first posted gets its own job (its own ID, escrow and
// posting), not a 409 that both refuses it and says the spec is taken;
// the owner's re-post still returns its own job.
func TestTwoClientsPostOneSpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.fund("acme")
	e.fund("beta")
	other := e.clientKey("beta")
	body := jobBody(t, 1, 3_000_000)
	var jobs []postedJob
	for _, k := range []string{e.client, other} {
		c, b := e.do("POST", "/v1/jobs", k, "j1", body)
		if c != 201 {
			t.Fatalf("post: %d %s", c, b)
		}
		var j postedJob
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	a, b := jobs[0], jobs[1]
	if a.ID == b.ID || a.ClientID != "acme" || b.ClientID != "beta" {
		t.Fatalf("two postings of one spec: %s/%s and %s/%s", a.ID, a.ClientID, b.ID, b.ClientID)
	}
	var req struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	posted, err := spec.Decode(req.Spec)
	if err != nil {
		t.Fatal(err)
	}
	specID, _ := posted.ID()
	for _, j := range jobs {
		// The spec offered to solvers is the client's with a posting tag
		// in its name; its hash is the job ID solvers train and commit to.
		if j.SpecID != specID.String() {
			t.Errorf("spec_id %s, want %s", j.SpecID, specID)
		}
		s, err := spec.Decode(j.Spec)
		if err != nil {
			t.Fatalf("offered spec: %v", err)
		}
		if id, _ := s.ID(); id.String() != j.ID {
			t.Errorf("job %s offers a spec with ID %s", j.ID, id)
		}
		if !strings.HasPrefix(s.Name, posted.Name+"#") {
			t.Errorf("offered name %q", s.Name)
		}
		s.Name = posted.Name
		if id, _ := s.ID(); id != specID {
			t.Errorf("the offered spec differs from the posted one beyond its name")
		}
	}
	// The owner's re-post with another idempotency key is the same job.
	if c, rb := e.do("POST", "/v1/jobs", e.client, "j2", body); c != 201 || !strings.Contains(string(rb), a.ID) {
		t.Fatalf("re-post: %d %s", c, rb)
	}
	// Each client sees its own job only.
	if c, _ := e.do("GET", "/v1/jobs/"+b.ID, e.client, "", ""); c != 404 {
		t.Errorf("acme read beta's job: %d", c)
	}
	if c, _ := e.do("GET", "/v1/jobs/"+b.ID, other, "", ""); c != 200 {
		t.Errorf("beta cannot read its job: %d", c)
	}
	// Two escrows.
	for _, j := range jobs {
		id, _ := spec.ParseJobID(j.ID)
		got, err := e.svc.Job(ctx, id)
		if err != nil || got.EscrowMicroUSD <= 0 {
			t.Fatalf("job %s: %+v %v", j.ID, got, err)
		}
	}
	if err := ledger.CheckInvariants(ctx, e.led); err != nil {
		t.Fatal(err)
	}
}
