package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/node"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// testClock is the service's clock, moved by the tests.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fakeNode stands in for the coordinator node: it serves the final state
// it is given and records cancellations.
type fakeNode struct {
	mu     sync.Mutex
	final  map[spec.JobID]*node.Final
	states map[spec.JobID]*spec.State
	ended  []spec.JobID
}

func (n *fakeNode) Progress(id spec.JobID) node.Progress {
	n.mu.Lock()
	defer n.mu.Unlock()
	return node.Progress{Final: n.final[id]}
}

func (n *fakeNode) FinalState(_ context.Context, id spec.JobID) (*spec.State, [32]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.final[id]
	if f == nil {
		return nil, [32]byte{}, node.ErrNoFinal
	}
	return n.states[id], f.FinalDigest, nil
}

func (n *fakeNode) JobEnded(_ context.Context, id spec.JobID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ended = append(n.ended, id)
}

// clientEnv is a real coordinator API over an in-memory service, served
// by httptest, with a client "acme" that has funds.
type clientEnv struct {
	t              *testing.T
	srv            *httptest.Server
	svc            *service.Service
	led            *ledger.Memory
	clk            *testClock
	node           *fakeNode
	key, opKey     string
	dir, specPaths string
}

func newClientEnv(t *testing.T) *clientEnv {
	t.Helper()
	ctx := context.Background()
	clk := &testClock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)}
	led := ledger.NewMemory(ledger.WithClock(clk.now))
	st, err := service.OpenStore("")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, led, st, service.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewKeys(st, rand.Reader, clk.now)
	key, _, err := keys.Issue(ctx, "acme", auth.RoleClient, 0)
	if err != nil {
		t.Fatal(err)
	}
	op, _, err := keys.Issue(ctx, "operator", auth.RoleOperator, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(svc, keys, nil)
	fn := &fakeNode{final: map[spec.JobID]*node.Final{}, states: map[spec.JobID]*spec.State{}}
	s.AttachNode(fn)
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); st.Close(); led.Close() })
	e := &clientEnv{t: t, srv: srv, svc: svc, led: led, clk: clk, node: fn, key: key, opKey: op, dir: t.TempDir()}
	e.deposit("client:acme", 1_000_000_000)
	return e
}

func (e *clientEnv) deposit(account string, micro int64) {
	e.t.Helper()
	ref, err := service.ParseAccountRef(account)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.RecordDeposit(context.Background(), service.Deposit{BankRef: fmt.Sprintf("w-%s-%d", account, micro), Account: ref, AmountMicroUSD: micro}); err != nil {
		e.t.Fatal(err)
	}
}

// available is the client's available funds.
func (e *clientEnv) available() int64 {
	e.t.Helper()
	a, err := e.led.Account(context.Background(), service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}.ID())
	if err != nil {
		e.t.Fatal(err)
	}
	return a.AvailableMicroUSD()
}

// specFile writes a small job spec (the synthetic example with seed) and
// returns its path.
func (e *clientEnv) specFile(seed uint64) string {
	e.t.Helper()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		e.t.Fatal(err)
	}
	s.Seed = seed
	b, err := s.Canonical()
	if err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.dir, fmt.Sprintf("job%d.json", seed))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// runJobCLI runs `beluga job args…` with the environment env (nothing
// else of the process's) and returns the exit status and output.
func runJobCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	root := &cobra.Command{Use: "beluga", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newJobCmdEnv(func(k string) string { return env[k] }))
	var out, errb bytes.Buffer
	root.SetArgs(append([]string{"job"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.Execute()
	code := 0
	if err != nil {
		fmt.Fprintln(&errb, "beluga:", err)
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return code, out.String(), errb.String()
}

// cli runs a job command against the env's coordinator with the client's
// key, and no config file.
func (e *clientEnv) cli(args ...string) (int, string, string) {
	e.t.Helper()
	env := map[string]string{"XDG_CONFIG_HOME": e.dir, envCoordinator: e.srv.URL, envAPIKey: e.key}
	return runJobCLI(e.t, env, args...)
}

// post posts the spec with seed through the CLI and returns the job ID.
func (e *clientEnv) post(seed uint64) string {
	e.t.Helper()
	code, out, errs := e.cli("post", "--spec", e.specFile(seed), "--json")
	if code != 0 {
		e.t.Fatalf("post: exit %d: %s", code, errs)
	}
	var j struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || len(j.ID) != 64 {
		e.t.Fatalf("post printed %q (%v)", out, err)
	}
	return j.ID
}

// TestJobPostListPaginates: three jobs posted through the CLI are listed
// newest first, two to a page; the second page holds the oldest and no
// cursor; --all follows the pages; another client sees none of them.
func TestJobPostListPaginates(t *testing.T) {
	t.Parallel()
	e := newClientEnv(t)
	var ids []string
	for seed := uint64(1); seed <= 3; seed++ {
		ids = append(ids, e.post(seed))
		e.clk.add(time.Minute)
	}
	code, out, errs := e.cli("list", "--limit", "2", "--json")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errs)
	}
	var page api.List[api.JobSummary]
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Items[0].ID != ids[2] || page.Items[1].ID != ids[1] || page.NextCursor == "" {
		t.Fatalf("first page: %+v", page)
	}
	code, out, errs = e.cli("list", "--limit", "2", "--cursor", page.NextCursor, "--json")
	if code != 0 {
		t.Fatalf("list page 2: exit %d: %s", code, errs)
	}
	page = api.List[api.JobSummary]{}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].ID != ids[0] || page.NextCursor != "" {
		t.Fatalf("second page: %+v", page)
	}
	code, out, _ = e.cli("list", "--limit", "2", "--all")
	if code != 0 || strings.Count(out, "\n") != 4 || !strings.Contains(out, ids[0]) || !strings.Contains(out, ids[2]) || strings.Contains(out, "more:") {
		t.Fatalf("list --all: exit %d:\n%s", code, out)
	}
	code, out, _ = e.cli("list", "--limit", "1")
	if code != 0 || !strings.Contains(out, "more: beluga job list --cursor ") {
		t.Fatalf("human list does not say how to page on: %s", out)
	}
	code, _, errs = e.cli("list", "--cursor", "garbage")
	if code == 0 || !strings.Contains(errs, "cursor") {
		t.Fatalf("bad cursor: exit %d: %s", code, errs)
	}
	// Another client's key lists nothing.
	other, _, err := auth.NewKeys(e.svc.Store(), rand.Reader, e.clk.now).Issue(context.Background(), "globex", auth.RoleClient, 0)
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ = runJobCLI(t, map[string]string{"XDG_CONFIG_HOME": e.dir, envCoordinator: e.srv.URL, envAPIKey: other}, "list")
	if code != 0 || strings.TrimSpace(out) != "no jobs" {
		t.Fatalf("another client's list: exit %d: %s", code, out)
	}
}

// TestJobStatusAndCancelRefunds: status shows a posted job; cancel returns
// the whole escrow to the client's available funds, tells the node, and
// the status says cancelled; running cancel again is a retry; watch ends with
// exit 1 for a cancelled job.
func TestJobStatusAndCancelRefunds(t *testing.T) {
	t.Parallel()
	e := newClientEnv(t)
	before := e.available()
	id := e.post(7)
	if e.available() >= before {
		t.Fatalf("posting locked nothing: %d then %d", before, e.available())
	}
	code, out, errs := e.cli("status", id)
	if code != 0 || !strings.Contains(out, "posted") || !strings.Contains(out, id) {
		t.Fatalf("status: exit %d: %s %s", code, out, errs)
	}
	code, out, errs = e.cli("cancel", id)
	if code != 0 || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: exit %d: %s %s", code, out, errs)
	}
	if got := e.available(); got != before {
		t.Fatalf("available funds after cancel %d, before posting %d", got, before)
	}
	if err := ledger.CheckInvariants(context.Background(), e.led); err != nil {
		t.Fatal(err)
	}
	e.node.mu.Lock()
	told := len(e.node.ended) == 1 && e.node.ended[0].String() == id
	e.node.mu.Unlock()
	if !told {
		t.Fatalf("the node was not told of the cancellation: %v", e.node.ended)
	}
	// Running it again is a retry: the same answer, nothing moves.
	if code, out, errs = e.cli("cancel", id); code != 0 || !strings.Contains(out, "cancelled") || e.available() != before {
		t.Fatalf("second cancel: exit %d: %s %s", code, out, errs)
	}
	if code, out, _ = e.cli("status", id, "--json"); code != 0 || !strings.Contains(out, `"state": "cancelled"`) {
		t.Fatalf("status after cancel: %s", out)
	}
	if code, _, errs = e.cli("watch", id, "--interval", "1ms"); code != 1 || !strings.Contains(errs, "ended cancelled") {
		t.Fatalf("watch of a cancelled job: exit %d: %s", code, errs)
	}
}

// TestJobCancelRunningRefused: a job a solver is running cannot be
// cancelled; the error says why in words, with no Go names.
func TestJobCancelRunningRefused(t *testing.T) {
	t.Parallel()
	e := newClientEnv(t)
	id := e.runningJob(11)
	code, _, errs := e.cli("cancel", id)
	if code != 1 || !strings.Contains(errs, "only a job waiting for a solver") || strings.Contains(errs, "service.") || strings.Contains(errs, "lifecycle") {
		t.Fatalf("cancel of a running job: exit %d: %s", code, errs)
	}
}

// runningJob posts a job and has the market match it to a bonded solver,
// which starts it.
func (e *clientEnv) runningJob(seed uint64) string {
	e.t.Helper()
	ctx := context.Background()
	e.deposit("solver_bond:gpu1", 1_000_000_000)
	if _, err := e.svc.PostAsk(ctx, service.Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 1_000, Capacity: 4, TTL: time.Hour}); err != nil {
		e.t.Fatal(err)
	}
	id := e.post(seed)
	if _, err := e.svc.Advance(ctx, id, lifecycle.EventStart); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// committedJob is runningJob taken to its audit window, with the fake
// node holding a final state whose digest it reports as committed.
func (e *clientEnv) committedJob(seed uint64) (string, *spec.State) {
	e.t.Helper()
	ctx := context.Background()
	id := e.runningJob(seed)
	for _, ev := range []lifecycle.Event{lifecycle.EventCommit, lifecycle.EventOpenAudit} {
		if _, err := e.svc.Advance(ctx, id, ev); err != nil {
			e.t.Fatal(err)
		}
	}
	rec, err := e.svc.Job(ctx, mustJobID(e.t, id))
	if err != nil {
		e.t.Fatal(err)
	}
	sp, err := spec.Decode(rec.Spec)
	if err != nil {
		e.t.Fatal(err)
	}
	st := sp.NewState()
	st.Step = sp.Steps
	for ti := range st.Tensors {
		for i := range st.Tensors[ti].Data {
			st.Tensors[ti].Data[i] = int32(ti*1_000_003+i*7919) - 1<<20
		}
	}
	jid := mustJobID(e.t, id)
	var h commit.Hasher
	d := h.StateDigest(jid, st)
	e.node.mu.Lock()
	e.node.final[jid] = &node.Final{Steps: sp.Steps, FinalDigest: d, TraceRoot: [32]byte{1}}
	e.node.states[jid] = st
	e.node.mu.Unlock()
	return id, st
}

// TestJobDownloadVerified: the final weights are downloaded, checked
// against the committed final digest and saved; the file decodes to the
// state. When the state served does not match the digest (one value
// changed), the download fails and nothing is saved. A confidential job
// is refused in plain words.
func TestJobDownloadVerified(t *testing.T) {
	t.Parallel()
	e := newClientEnv(t)
	id, st := e.committedJob(21)
	out := filepath.Join(e.dir, "w.safetensors")
	code, stdout, errs := e.cli("download", id, "-o", out)
	if code != 0 || !strings.Contains(stdout, "matches the committed final digest") {
		t.Fatalf("download: exit %d: %s %s", code, stdout, errs)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	w, err := api.DecodeWeights(b)
	if err != nil {
		t.Fatal(err)
	}
	if w.State.Step != st.Step || len(w.State.Tensors) != len(st.Tensors) || w.State.Tensors[2].Data[5] != st.Tensors[2].Data[5] || w.State.Tensors[2].Name != st.Tensors[2].Name {
		t.Fatalf("the saved file is not the state")
	}

	// Tampered: the node serves another state under the committed digest.
	jid := mustJobID(t, id)
	bad := &spec.State{Step: st.Step}
	for _, tn := range st.Tensors {
		bad.Tensors = append(bad.Tensors, spec.Tensor{Name: tn.Name, Shape: tn.Shape, Data: append([]int32(nil), tn.Data...)})
	}
	bad.Tensors[0].Data[0] ^= 1
	e.node.mu.Lock()
	e.node.states[jid] = bad
	e.node.mu.Unlock()
	out2 := filepath.Join(e.dir, "tampered.safetensors")
	code, _, errs = e.cli("download", id, "-o", out2)
	if code != 1 || !strings.Contains(errs, "do not match the committed final digest") {
		t.Fatalf("tampered download: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(out2); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a tampered download was saved: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(e.dir, ".tampered*")); len(m) > 0 {
		t.Fatalf("temporary files left: %v", m)
	}

	// A job with no final digest yet.
	posted := e.post(22)
	if code, _, errs = e.cli("download", posted); code != 1 || !strings.Contains(errs, "no committed final digest") {
		t.Fatalf("download of a posted job: exit %d: %s", code, errs)
	}
}

// TestLoadWeightsPython: scripts/load_weights.py reads a weights file's
// tensors (names, shapes, values, in order) and metadata; run with
// python3 when NumPy is installed, skipped otherwise.
func TestLoadWeightsPython(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts python3 (about a second)")
	}
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.ID()
	st := s.NewState()
	st.Step = s.Steps
	for ti := range st.Tensors {
		for i := range st.Tensors[ti].Data {
			st.Tensors[ti].Data[i] = int32(ti*1_000_003+i*7919) - 1<<20
		}
	}
	b, err := api.EncodeWeights(&api.Weights{Job: id, MasterFrac: s.Numeric.MasterFrac, State: st})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runLoadWeights(t, path)
	var sum struct {
		JobID      string `json:"job_id"`
		Step       int64  `json:"step"`
		MasterFrac int    `json:"master_frac"`
		Tensors    []struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
			First int64  `json:"first"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("load_weights.py printed %s: %v", out, err)
	}
	if sum.JobID != id.String() || sum.Step != st.Step || sum.MasterFrac != s.Numeric.MasterFrac || len(sum.Tensors) != len(st.Tensors) {
		t.Fatalf("load_weights.py: %+v", sum)
	}
	for i, tn := range st.Tensors {
		if sum.Tensors[i].Name != tn.Name || sum.Tensors[i].First != int64(tn.Data[0]) || fmt.Sprint(sum.Tensors[i].Shape) != fmt.Sprint(tn.Shape) {
			t.Fatalf("load_weights.py tensor %d: %+v, want %s %v %d", i, sum.Tensors[i], tn.Name, tn.Shape, tn.Data[0])
		}
	}
}

// runLoadWeights runs scripts/load_weights.py --summary on path and returns
// what it printed; it skips t when no python3 with NumPy is installed.
func runLoadWeights(t *testing.T, path string) []byte {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if _, err := exec.LookPath(py); err != nil {
			continue
		}
		out, err := exec.Command(py, "../../scripts/load_weights.py", "--summary", path).CombinedOutput()
		if err != nil && bytes.Contains(out, []byte("No module named 'numpy'")) {
			continue
		}
		if err != nil {
			t.Fatalf("load_weights.py: %v\n%s", err, out)
		}
		return out
	}
	t.Skip("python3 with NumPy not installed")
	return nil
}

// TestLoadWeightsPythonGPT: load_weights.py reads a GPT's weights file,
// whose second moments are int64 (I64) tensors.
func TestLoadWeightsPythonGPT(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts python3 (about a second)")
	}
	s := spec.ExampleGPT()
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	gs := c.Init()
	gs.V[0][0] = -3 << 40
	st := spec.GPTTensors(c, gs)
	id, _ := s.ID()
	b, err := api.EncodeWeights(&api.Weights{Job: id, MasterFrac: 24, State: st})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gpt.safetensors")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Tensors []struct {
			Name  string `json:"name"`
			First int64  `json:"first"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal(runLoadWeights(t, path), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Tensors) != len(st.Tensors) || sum.Tensors[2].Name != st.Tensors[2].Name || sum.Tensors[2].First != -3<<40 ||
		sum.Tensors[0].First != int64(gs.W[0][0]) {
		t.Fatalf("load_weights.py on a GPT: %+v", sum.Tensors[:3])
	}
}

// TestJobConfigPrecedence: flags override the environment, which
// overrides the config file; `config set` writes a file only its owner can
// read, which the next command uses.
func TestJobConfigPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "beluga", "client.json")
	env := map[string]string{"XDG_CONFIG_HOME": dir}
	if code, _, errs := runJobCLI(t, env, "config", "set", "--coordinator", "file.example:8700", "--api-key", "file-key"); code != 0 {
		t.Fatalf("config set: %s", errs)
	}
	if st, err := os.Stat(cfg); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", st, err)
	}
	show := func(env map[string]string, args ...string) map[string]string {
		t.Helper()
		code, out, errs := runJobCLI(t, env, append([]string{"config", "show", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("config show: %s", errs)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := show(env)
	if m["coordinator"] != "http://file.example:8700" || !strings.HasPrefix(m["coordinator_from"], "config file") || m["api_key"] != "file-k…" {
		t.Fatalf("file only: %v", m)
	}
	env[envCoordinator], env[envAPIKey] = "http://env.example:1", "env-key"
	if m = show(env); m["coordinator"] != "http://env.example:1" || m["api_key_from"] != "environment "+envAPIKey {
		t.Fatalf("env over file: %v", m)
	}
	if m = show(env, "--coordinator", "https://flag.example/", "--api-key", "flagkey"); m["coordinator"] != "https://flag.example" || m["coordinator_from"] != "flag --coordinator" || m["api_key"] != "flagke…" {
		t.Fatalf("flag over env: %v", m)
	}
	// The file's settings reach the server: a request carries its key.
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items":[]}`))
	}))
	defer srv.Close()
	if code, _, errs := runJobCLI(t, map[string]string{"XDG_CONFIG_HOME": dir}, "list", "--coordinator", srv.URL); code != 0 || got != "Bearer file-key" {
		t.Fatalf("list with the file's key: exit %d, %q: %s", code, got, errs)
	}
	// Missing settings and bad files are explained.
	empty := map[string]string{"XDG_CONFIG_HOME": t.TempDir()}
	if code, _, errs := runJobCLI(t, empty, "list"); code != 1 || !strings.Contains(errs, "no coordinator address") || !strings.Contains(errs, envCoordinator) {
		t.Fatalf("no settings: exit %d: %s", code, errs)
	}
	if code, _, errs := runJobCLI(t, empty, "list", "--coordinator", "/ip4/127.0.0.1/tcp/4001"); code != 1 || !strings.Contains(errs, "libp2p address") {
		t.Fatalf("multiaddr: exit %d: %s", code, errs)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"coordinator": 5}`), 0o600)
	if code, _, errs := runJobCLI(t, env, "list", "--config", bad); code != 1 || !strings.Contains(errs, `"coordinator" must be a string`) {
		t.Fatalf("bad config: exit %d: %s", code, errs)
	}
}

// TestJobQuoteTable: quote renders POST /v1/quote's lines as a table (a
// fake coordinator, the endpoint being another's work), sends the same
// body as post, and reads RFC 9457 problem details as well as the older
// error body, in words.
func TestJobQuoteTable(t *testing.T) {
	t.Parallel()
	var body []byte
	problem := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/quote" || r.Header.Get("Idempotency-Key") == "" {
			http.NotFound(w, r)
			return
		}
		body = make([]byte, r.ContentLength)
		r.Body.Read(body)
		if problem {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(422)
			w.Write([]byte(`{"type":"https://beluga.example/problems/insufficient_funds","title":"Insufficient funds","status":422,"detail":"client acme cannot escrow 5 micro-dollars","code":"insufficient_funds"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"compute_units":1234,"lines":[{"item":"solver","micro_usd":1500000,"detail":"1234 CU at the market"},{"item":"audit","micro_usd":120000,"detail":"replays 8% of steps"},{"item":"fee","micro_usd":75000,"detail":"5% of the solver cost"}],"total_micro_usd":1695000,"price_nano_usd_per_cu":1215559}`))
	}))
	defer srv.Close()
	e := &clientEnv{t: t, dir: t.TempDir()}
	p := e.specFile(3)
	env := map[string]string{envCoordinator: srv.URL, envAPIKey: "k", "XDG_CONFIG_HOME": e.dir}
	code, out, errs := runJobCLI(t, env, "quote", "--spec", p)
	if code != 0 {
		t.Fatalf("quote: exit %d: %s", code, errs)
	}
	for _, want := range []string{"solver", "$1.500000", "audit", "$0.120000", "fee", "$0.075000", "total", "$1.695000", "1234 compute units", "$0.001215559 per unit"} {
		if !strings.Contains(out, want) {
			t.Errorf("quote table lacks %q:\n%s", want, out)
		}
	}
	var sent map[string]json.RawMessage
	if err := json.Unmarshal(body, &sent); err != nil || sent["spec"] == nil {
		t.Fatalf("quote body %s: %v", body, err)
	}
	if code, _, errs = runJobCLI(t, env, "quote", "--spec", p, "--max-price", "$0.0000025"); code != 0 {
		t.Fatalf("quote --max-price: exit %d: %s", code, errs)
	}
	sent = nil
	if err := json.Unmarshal(body, &sent); err != nil || string(sent["max_price_nano_usd_per_cu"]) != "2500" {
		t.Fatalf("quote body with a price cap %s: %v", body, err)
	}
	// A server that is not a coordinator (a 404 without an error code).
	if code, _, errs = runJobCLI(t, map[string]string{envCoordinator: srv.URL + "/elsewhere", envAPIKey: "k", "XDG_CONFIG_HOME": e.dir}, "quote", "--spec", p); code != 1 || !strings.Contains(errs, "is the coordinator address the HTTP API of a Beluga coordinator?") {
		t.Fatalf("not a coordinator: exit %d: %s", code, errs)
	}
	problem = true
	code, _, errs = runJobCLI(t, env, "quote", "--spec", p)
	if code != 1 || !strings.Contains(errs, "cannot escrow 5 micro-dollars") || !strings.Contains(errs, "deposit") {
		t.Fatalf("problem details: exit %d: %s", code, errs)
	}
}

// TestReadAPIErrorBothFormats: the error reader takes problem details and
// the legacy body; other answers are reported by status and text.
func TestReadAPIErrorBothFormats(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ct, body, code, msg string
	}{
		{"application/problem+json", `{"type":"about:blank","title":"Not Found","status":404,"detail":"no such job","code":"not_found"}`, "not_found", "no such job"},
		{"application/json", `{"error":{"code":"conflict","message":"job x was posted with other terms"}}`, "conflict", "job x was posted with other terms"},
		{"application/problem+json", `{"type":"https://x/problems/busy","title":"Busy","status":503}`, "busy", "Busy"},
		{"text/html", `<html>bad gateway</html>`, "", "HTTP 502 Bad Gateway"},
	} {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", c.ct)
		rec.WriteHeader(502)
		rec.WriteString(c.body)
		err := readAPIError(rec.Result())
		var ae *apiError
		if !errors.As(err, &ae) || ae.Code != c.code || ae.Message != c.msg || strings.Contains(err.Error(), "<html>") {
			t.Errorf("%s: %#v", c.body, err)
		}
	}
}

// TestJobArgs: a malformed job ID is a usage error in words; an unknown
// job is the coordinator's "no such job"; a prefix of 6 or more digits
// names the caller's one job that starts with it.
func TestJobArgs(t *testing.T) {
	t.Parallel()
	e := newClientEnv(t)
	if code, _, errs := e.cli("status", "abc"); code != exitUsage || !strings.Contains(errs, "64 hex digits") {
		t.Fatalf("bad id: exit %d: %s", code, errs)
	}
	if code, _, errs := e.cli("status", hex.EncodeToString(make([]byte, 32))); code != 1 || !strings.Contains(errs, "no such job") {
		t.Fatalf("unknown job: exit %d: %s", code, errs)
	}
	// A prefix of one of the caller's jobs names it.
	id := e.post(41)
	if code, out, errs := e.cli("status", strings.ToUpper(id[:8])); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("status by prefix: exit %d: %s %s", code, out, errs)
	}
	other := "000000"
	if id[0] == '0' {
		other = "ffffff"
	}
	if code, _, errs := e.cli("status", other); code != 1 || !strings.Contains(errs, "no job of yours starts with "+other) {
		t.Fatalf("unknown prefix: exit %d: %s", code, errs)
	}
	if code, _, errs := runJobCLI(t, map[string]string{envCoordinator: e.srv.URL, envAPIKey: "bk_nope", "XDG_CONFIG_HOME": e.dir}, "list"); code != 1 || !strings.Contains(errs, "API key") {
		t.Fatalf("bad key: exit %d: %s", code, errs)
	}
}

func mustJobID(t *testing.T, s string) spec.JobID {
	t.Helper()
	id, err := spec.ParseJobID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestParseNanoUSD: dollar amounts become whole nano-dollars; more than
// nine decimals, signs and junk are refused.
func TestParseNanoUSD(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0.0000025": 2500, "$1.5": 1_500_000_000, "2": 2_000_000_000, ".000000001": 1, "0": 0} {
		if got, err := parseNanoUSD(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0.0000000001", "-1", "1e-6", "abc", "1.2.3", "99999999999999999999"} {
		if got, err := parseNanoUSD(in); err == nil {
			t.Errorf("%q accepted as %d", in, got)
		}
	}
}

// firstWrite is an io.Writer that closes wrote at its first write.
type firstWrite struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *firstWrite) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() == 0 {
		close(w.wrote)
	}
	return w.buf.Write(b)
}

func (w *firstWrite) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestJobWatchUntilSettled: watch prints the job's line, keeps asking,
// prints the change when the job settles, says how to download, and
// exits 0.
func TestJobWatchUntilSettled(t *testing.T) {
	t.Parallel()
	e := newClientEnv(t)
	id, _ := e.committedJob(31)
	out := &firstWrite{wrote: make(chan struct{})}
	root := &cobra.Command{Use: "beluga", SilenceUsage: true, SilenceErrors: true}
	env := map[string]string{"XDG_CONFIG_HOME": e.dir, envCoordinator: e.srv.URL, envAPIKey: e.key}
	root.AddCommand(newJobCmdEnv(func(k string) string { return env[k] }))
	root.SetArgs([]string{"job", "watch", id, "--interval", "5ms"})
	root.SetOut(out)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.Execute() }()
	<-out.wrote // it saw the job in its audit window
	if _, err := e.svc.Settle(context.Background(), id, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("watch: %v\n%s", err, out)
	}
	s := out.String()
	if !strings.Contains(s, "audit_window") || !strings.Contains(s, "settled") || !strings.Contains(s, "beluga job download "+id) {
		t.Fatalf("watch printed:\n%s", s)
	}
}
