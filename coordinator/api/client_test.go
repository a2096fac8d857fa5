package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/node"
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/gpt"
)

// stubNode is a JobNode with canned answers.
type stubNode struct {
	mu       sync.Mutex
	progress node.Progress
	state    *spec.State
	err      error
	fetches  int
}

func (n *stubNode) Progress(spec.JobID) node.Progress {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.progress
}

func (n *stubNode) FinalState(context.Context, spec.JobID) (*spec.State, [32]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fetches++
	if n.err != nil {
		return nil, [32]byte{}, n.err
	}
	var d [32]byte
	if n.progress.Final != nil {
		d = n.progress.Final.FinalDigest
	}
	return n.state, d, nil
}

func (n *stubNode) JobEnded(context.Context, spec.JobID) {}

func (e *env) attach(n JobNode) {
	e.t.Helper()
	e.srv.Config.Handler.(*Server).AttachNode(n)
}

func (e *env) postJob(seed uint64) string {
	e.t.Helper()
	c, b := e.do("POST", "/v1/jobs", e.client, "post-"+string(rune('a'+seed)), jobBody(e.t, seed, 0))
	if c != 201 {
		e.t.Fatalf("post: %d %s", c, b)
	}
	var j struct{ ID string }
	json.Unmarshal(b, &j)
	return j.ID
}

func testState(t testing.TB) (*spec.Spec, *spec.State) {
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	st := s.NewState()
	st.Step = s.Steps
	for ti := range st.Tensors {
		for i := range st.Tensors[ti].Data {
			st.Tensors[ti].Data[i] = int32(i*31+ti) - 5000
		}
	}
	return s, st
}

// TestWeightsRoundTrip: a state encoded as a weights file decodes to the
// same state, whose digest is unchanged; the file is a safetensors file
// (8-byte header length, JSON header padded to 8 bytes).
func TestWeightsRoundTrip(t *testing.T) {
	t.Parallel()
	s, st := testState(t)
	id, _ := s.ID()
	var h commit.Hasher
	d := h.StateDigest(id, st)
	b, err := EncodeWeights(&Weights{Job: id, StateDigest: d, MasterFrac: s.Numeric.MasterFrac, State: st})
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(b); n%8 != 0 || !json.Valid(b[8:8+n]) {
		t.Fatalf("header of %d bytes", n)
	}
	w, err := DecodeWeights(b)
	if err != nil {
		t.Fatal(err)
	}
	if w.Job != id || w.StateDigest != d || w.MasterFrac != s.Numeric.MasterFrac || h.StateDigest(id, w.State) != d {
		t.Fatalf("decoded %+v", w)
	}
	for _, bad := range [][]byte{nil, b[:7], b[:len(b)-1], append(bytes.Clone(b), 0, 0, 0, 0)} {
		if _, err := DecodeWeights(bad); !errors.Is(err, ErrWeightsFile) {
			t.Errorf("%d bytes decoded: %v", len(bad), err)
		}
	}
}

// TestWeightsRoundTripGPT: a GPT state, whose second moments are int64
// tensors, round-trips too (I64 in the header, 8 bytes per value), with the
// GPT's 24 fractional bits; the digest is unchanged.
func TestWeightsRoundTripGPT(t *testing.T) {
	t.Parallel()
	s := spec.ExampleGPT()
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	gs := c.Init()
	for i := range gs.V {
		for j := range gs.V[i] {
			gs.V[i][j] = int64(j)<<33 | int64(i) // both halves used
		}
	}
	st := spec.GPTTensors(c, gs)
	id, _ := s.ID()
	var h commit.Hasher
	d := h.StateDigest(id, st)
	b, err := EncodeWeights(&Weights{Job: id, StateDigest: d, MasterFrac: gpt.MasterFrac, State: st})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b[:binary.LittleEndian.Uint64(b)+8], []byte(`"I64"`)) {
		t.Fatal("no I64 tensor in the header")
	}
	w, err := DecodeWeights(b)
	if err != nil {
		t.Fatal(err)
	}
	if w.MasterFrac != gpt.MasterFrac || h.StateDigest(id, w.State) != d {
		t.Fatalf("decoded state differs (master_frac %d)", w.MasterFrac)
	}
	back, err := spec.GPTFromState(c, w.State)
	if err != nil || back.V[1][5] != gs.V[1][5] {
		t.Fatalf("GPT state from the file: %v", err)
	}
}

// FuzzDecodeWeights: whatever decodes re-encodes to a file that decodes
// to the same state, and nothing panics.
func FuzzDecodeWeights(f *testing.F) {
	s, st := testState(f)
	id, _ := s.ID()
	b, _ := EncodeWeights(&Weights{Job: id, MasterFrac: 16, State: st})
	f.Add(b)
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{}              "))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := DecodeWeights(b)
		if err != nil {
			return
		}
		again, err := EncodeWeights(w)
		if err != nil {
			t.Fatal(err)
		}
		w2, err := DecodeWeights(again)
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		var h commit.Hasher
		if h.StateRoot(w.State) != h.StateRoot(w2.State) {
			t.Fatal("round trip changed the state")
		}
	})
}

// TestListJobsRoles: a solver's key may not list jobs (403); the
// operator sees every client's; a bad limit is a 400 in words.
func TestListJobsRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fund("acme")
	id := e.postJob(1)
	solver, _, err := auth.NewKeys(e.svc.Store(), rand.Reader, e.clk.now).Issue(context.Background(), "gpu1", auth.RoleSolver, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := e.do("GET", "/v1/jobs", solver, "", ""); c != 403 {
		t.Errorf("solver listed jobs: %d", c)
	}
	if c, b := e.do("GET", "/v1/jobs", e.operator, "", ""); c != 200 || !bytes.Contains(b, []byte(id)) {
		t.Errorf("operator list: %d %s", c, b)
	}
	if c, b := e.do("GET", "/v1/jobs?limit=0", e.client, "", ""); c != 400 || !bytes.Contains(b, []byte("limit")) {
		t.Errorf("limit=0: %d %s", c, b)
	}
}

// TestCancelIdempotencyPerJob: one Idempotency-Key used to cancel two
// jobs cancels both (the record is per job), and a replay for the same
// job is marked replayed.
func TestCancelIdempotencyPerJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fund("acme")
	a, b := e.postJob(1), e.postJob(2)
	for _, id := range []string{a, b} {
		if c, body := e.do("POST", "/v1/jobs/"+id+"/cancel", e.client, "same", ""); c != 200 || !bytes.Contains(body, []byte(`"state":"cancelled"`)) || !bytes.Contains(body, []byte(id)) {
			t.Fatalf("cancel %s: %d %s", id[:8], c, body)
		}
	}
	if c, body := e.do("POST", "/v1/jobs/"+a+"/cancel", e.client, "x", `{"why":1}`); c != 400 {
		t.Fatalf("cancel with a body: %d %s", c, body)
	}
}

// TestWeightsRefusals: without a node 503; a posted job has no final
// weights (409); a confidential job is refused with code confidential
// before the node is asked.
func TestWeightsRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fund("acme")
	id := e.postJob(1)
	if c, b := e.do("GET", "/v1/jobs/"+id+"/weights", e.client, "", ""); c != 409 || !bytes.Contains(b, []byte("no final weights")) {
		t.Fatalf("posted job: %d %s", c, b)
	}
	// A confidential job, taken to its audit window.
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	s.Audit.Confidential = true
	sb, _ := json.Marshal(s)
	c, b := e.do("POST", "/v1/jobs", e.client, "conf", `{"spec":`+string(sb)+`}`)
	if c != 201 {
		t.Skipf("confidential job not accepted here (%d %s)", c, b)
	}
	var j struct{ ID string }
	json.Unmarshal(b, &j)
	n := &stubNode{}
	e.attach(n)
	r := e.srv.Config.Handler.(*Server)
	rec, _ := e.svc.Job(context.Background(), mustID(t, j.ID))
	rec.State = lifecycle.AuditWindow
	if _, resp := r.weights(context.Background(), rec); resp.Status != 409 || !strings.Contains(string(resp.Body), "confidential") {
		t.Fatalf("confidential: %d %s", resp.Status, resp.Body)
	}
	if n.fetches != 0 {
		t.Fatal("the node was asked for a confidential job's state")
	}
}

// TestProgressETA: the ETA extrapolates the checkpoint times the node
// saw, the loss is the solver's last report in nats; a committed job
// shows its final digest instead.
func TestProgressETA(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fund("acme")
	id := e.postJob(1)
	rec, _ := e.svc.Job(context.Background(), mustID(t, id))
	t0 := e.clk.now()
	n := &stubNode{progress: node.Progress{ReportedStep: 30, LossQ16: 3 << 15, Checkpoints: []node.Mark{{Step: 10, At: t0}, {Step: 20, At: t0.Add(10 * time.Second)}}}}
	e.attach(n)
	p := e.srv.Config.Handler.(*Server).progress(rec)
	want := t0.Add(10*time.Second + time.Duration(rec.Steps-20)*time.Second)
	if p.StepsPerSecond != 1 || p.ETA == nil || !p.ETA.Equal(want) || p.ReportedStep != 30 || p.LastCheckpointStep != 20 || p.LastLoss == nil || *p.LastLoss != 1.5 {
		t.Fatalf("progress %+v, want eta %v", p, want)
	}
	n.progress.Final = &node.Final{Steps: rec.Steps, FinalDigest: [32]byte{0xab}}
	if c, b := e.do("GET", "/v1/jobs/"+id, e.client, "", ""); c != 200 || !bytes.Contains(b, []byte(`"final_digest":"ab00`)) || bytes.Contains(b, []byte(`"eta"`)) {
		t.Fatalf("committed progress: %d %s", c, b)
	}
}

func mustID(t *testing.T, s string) spec.JobID {
	t.Helper()
	id, err := spec.ParseJobID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
