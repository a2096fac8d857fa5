package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/spec/vulkan"
)

// cheatReport is what the test reads of a cheater's audit report.
type cheatReport struct {
	Solvers []struct {
		PeerID string `json:"peer_id"`
		Party  string `json:"party"`
	} `json:"solvers"`
	Audits []struct {
		Signed struct {
			Findings struct {
				Verdict string `json:"verdict"`
			} `json:"findings"`
		} `json:"signed"`
	} `json:"audits"`
	Disputes []struct {
		Solver       string `json:"solver"`
		FirstBadStep int64  `json:"first_bad_step"`
		Loser        string `json:"loser"`
	} `json:"disputes"`
	Slashes []struct {
		Role           string `json:"role"`
		PeerID         string `json:"peer_id"`
		AmountMicroUSD int64  `json:"amount_micro_usd"`
	} `json:"slashes"`
	Ledger []struct {
		Code           string `json:"code"`
		Kind           string `json:"kind"`
		Credit         string `json:"credit"`
		AmountMicroUSD int64  `json:"amount_micro_usd"`
	} `json:"ledger"`
	Outcome struct {
		State string `json:"state"`
	} `json:"outcome"`
}

// partyMoney is what the test reads of GET /v1/parties/{id}.
type partyMoney struct {
	BondMicroUSD     int64 `json:"bond_micro_usd"`
	BondHeldMicroUSD int64 `json:"bond_held_micro_usd"`
	EarningsMicroUSD int64 `json:"earnings_micro_usd"`
}

// TestJourneyCheater is the network catching a lying solver, every party
// its own process (the verifier replaying on Vulkan where there is a
// device): the solver runs a test build of the binary (-tags
// belugacheat) that corrupts its training state from step 5 on and lies
// about it in the dispute; the verifier's replay finds the mismatch, the
// coordinator referees the dispute between the two processes over libp2p
// and rules against the solver. The job ends adjudicated_cheat: the signed
// report names the solver as the loser at the first corrupted step and
// its bond slashed, the client's escrow is refunded and the slash paid
// to it, the verifier earns its bounty, and the cheater earns nothing.
func TestJourneyCheater(t *testing.T) {
	t.Parallel() // with TestInferenceCheater: both mostly wait on the network
	if testing.Short() {
		t.Skip("starts the real binary as separate processes with a cheating solver (~30 s)")
	}
	const cheatFrom = 5
	// The verifier replays on Vulkan where there is a device (lavapipe in
	// CI): a GPU verifier catches a CPU solver's lie.
	var verifierExtra []string
	if devs, err := vulkan.Devices(); (err == nil && len(devs) > 0) || os.Getenv("BELUGA_REQUIRE_VULKAN") == "1" {
		verifierExtra = []string{"--backend", "vulkan"}
	}
	j, solver, verifier := networkWith(t, "belugacheat", []string{"--cheat-from-step", strconv.Itoa(cheatFrom)}, verifierExtra)
	if verifierExtra != nil {
		verifier.p.wait(regexp.MustCompile(`backend: vulkan`), 30*time.Second)
	}
	solver.p.wait(regexp.MustCompile(`this solver cheats`), 30*time.Second)

	specFile := filepath.Join(j.dir, "mlp.json")
	if err := os.WriteFile(specFile, []byte(run(t, j.bin, nil, "spec", "example", "--steps", "40", "--seed", "53")), 0o644); err != nil {
		t.Fatal(err)
	}
	var posted jobStatus
	if err := json.Unmarshal([]byte(j.client("post", "--spec", specFile, "--json")), &posted); err != nil || posted.ID == "" {
		t.Fatalf("post: %v %+v", err, posted)
	}
	// watch exits 1 for a job that did not settle, and says how it ended.
	out, err := runErr(j.bin, j.env, "job", "watch", posted.ID)
	if err == nil || !strings.Contains(out, "adjudicated_cheat") {
		t.Fatalf("job watch: %v, want the job to end adjudicated_cheat:\n%s\nsolver:\n%s\nverifier:\n%s", err, out, solver.p.output(), verifier.p.output())
	}

	var rep cheatReport
	j.report(posted.ID, "report.json", &rep)
	if rep.Outcome.State != "adjudicated_cheat" || len(rep.Solvers) != 1 || rep.Solvers[0].Party != solver.party {
		t.Fatalf("report: outcome %s, solvers %+v; want adjudicated_cheat, run by %s", rep.Outcome.State, rep.Solvers, solver.party)
	}
	cheater := rep.Solvers[0].PeerID
	if len(rep.Disputes) != 1 || rep.Disputes[0].Loser != "solver" || rep.Disputes[0].Solver != cheater || rep.Disputes[0].FirstBadStep != cheatFrom {
		t.Fatalf("report disputes %+v; want one, lost by the solver %s at step %d", rep.Disputes, cheater, cheatFrom)
	}
	if len(rep.Slashes) != 1 || rep.Slashes[0].Role != "solver" || rep.Slashes[0].PeerID != cheater || rep.Slashes[0].AmountMicroUSD <= 0 {
		t.Fatalf("report slashes %+v; want the solver's bond alone", rep.Slashes)
	}
	failed := false
	for _, a := range rep.Audits {
		failed = failed || a.Signed.Findings.Verdict == "fail"
	}
	if !failed {
		t.Fatalf("no failed audit in the report: %+v", rep.Audits)
	}
	// The job's ledger: the client's escrow is released whole (its lock
	// voided), and the slashed bond goes to the client and, as its
	// bounty, to the verifier.
	moved := map[string]int64{}
	for _, m := range rep.Ledger {
		moved[m.Code+" "+m.Kind+" → "+m.Credit] += m.AmountMicroUSD
	}
	escrow := "escrow:" + posted.ID
	locked, refunded := moved["lock_client_escrow pending → "+escrow], moved["refund_client_escrow void_pending → "+escrow]
	toClient, bounty := moved["slash_solver_bond_to_client posted → client:acme"], moved["pay_verifier_bounty posted → verifier_earnings:"+verifier.party]
	if locked <= 0 || refunded != locked || toClient <= 0 || bounty <= 0 || toClient+bounty != rep.Slashes[0].AmountMicroUSD {
		t.Fatalf("the job's ledger: escrow locked %d refunded %d µ$; slash of %d µ$ paid %d to the client, %d to the verifier:\n%v",
			locked, refunded, rep.Slashes[0].AmountMicroUSD, toClient, bounty, moved)
	}

	// The parties' money, as the operator reads it: the cheater's bond is
	// short of the 100 dollars deposited by the slash, nothing is held and
	// nothing earned; the verifier earned its bounty.
	var sp, vp partyMoney
	for _, p := range []struct {
		party, role string
		into        *partyMoney
	}{{solver.party, "solver", &sp}, {verifier.party, "verifier", &vp}} {
		if code, _ := httpJSON(t, http.MethodGet, j.http+"/v1/parties/"+p.party+"?role="+p.role, j.opKey, nil, p.into); code != http.StatusOK {
			t.Fatalf("GET /v1/parties/%s: %d", p.party, code)
		}
	}
	if sp.EarningsMicroUSD != 0 || sp.BondHeldMicroUSD != 0 || sp.BondMicroUSD != 100_000_000-rep.Slashes[0].AmountMicroUSD {
		t.Fatalf("the cheater after its slash: %+v; want a bond of 100 dollars less the %d µ$ slash, none held, nothing earned", sp, rep.Slashes[0].AmountMicroUSD)
	}
	if vp.EarningsMicroUSD != bounty || vp.BondHeldMicroUSD != 0 || vp.BondMicroUSD != 100_000_000 {
		t.Fatalf("the verifier that caught it: %+v; want its %d µ$ bounty earned and its whole bond free", vp, bounty)
	}
}

// cheatNet is a coordinator (its flags extra) serving a published GPT,
// fortunes-gpt, whose only solver is a test build (-tags belugacheat,
// --cheat-inference) that changes a byte of every answer before signing
// it, bonded $20; a client acme with $1; and copies of the model's run
// for verifiers.
type cheatNet struct {
	*journey
	cheatBin     string
	run          string // the model's run directory (the cheater's)
	clientKey    string
	base         string // the gateway, …/v1
	cheaterParty string
}

func newCheatNet(t *testing.T, extra ...string) *cheatNet {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the real binary as separate processes with a cheating inference solver (~30 s)")
	}
	const corpus = "/usr/share/games/fortunes"
	if _, err := os.Stat(filepath.Join(corpus, "fortunes")); err != nil {
		t.Skipf("the fortunes corpus is not installed (apt-get install fortunes): %v", err)
	}
	n := &cheatNet{journey: newJourney(t)}
	n.cheatBin = buildTagged(t, n.dir, "beluga-cheat", "belugacheat")
	n.run = filepath.Join(n.dir, "run-solver")
	run(t, n.bin, nil, "train", "--example", "gpt", "--steps", "3", "--out", n.run, "--quiet")
	n.coordinator(append([]string{"--inference-verify-ppm", "1000000"}, extra...)...) // every receipt checked
	run(t, n.bin, []string{"BELUGA_COORDINATOR=" + n.http}, "model", "publish", "--api-key", n.opKey, "--run", n.run,
		"--id", "fortunes-gpt", "--input-price", "1000", "--output-price", "2000")
	cheater := start(t, n.dir, "cheater", n.cheatBin, nil, "solver", "--coordinator", n.p2pAddr, "--dir", filepath.Join(n.dir, "cheater"),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--no-idle-check", "--serve-model", n.run, "--cheat-inference")
	n.cheaterParty = n.enrol(cheater, "solver", "20")
	cheater.wait(regexp.MustCompile(`tampers with every inference answer`), 60*time.Second)
	n.clientKey = strings.TrimSpace(n.operator("key", "--role", "client", "--subject", "acme"))
	n.operator("deposit", "--account", "client:acme", "--usd", "1", "--bank-ref", "wire-acme-1")
	n.base = n.http + "/v1"
	until(t, 30*time.Second, "the cheater announced fortunes-gpt", func() bool { return n.solvers() == 1 })
	return n
}

// verifier starts a verifier process name (from bin, with extra flags)
// checking a copy of the model, enrolled and bonded $20; it returns the
// process and its party.
func (n *cheatNet) verifier(name, bin string, extra ...string) (*proc, string) {
	t := n.t
	t.Helper()
	runV := filepath.Join(n.dir, "run-"+name)
	if out, err := exec.Command("cp", "-r", n.run, runV).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	p := start(t, n.dir, name, bin, nil, append([]string{"verifier", "--coordinator", n.p2pAddr, "--dir", filepath.Join(n.dir, name),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--verify-model", runV}, extra...)...)
	return p, n.enrol(p, "verifier", "20")
}

// solvers is how many solvers serve fortunes-gpt, as GET /v1/models says.
func (n *cheatNet) solvers() int {
	var models struct {
		Data []struct {
			ID      string `json:"id"`
			Solvers int    `json:"solvers"`
		} `json:"data"`
	}
	httpJSON(n.t, "GET", n.base+"/models", n.clientKey, nil, &models)
	for _, m := range models.Data {
		if m.ID == "fortunes-gpt" {
			return m.Solvers
		}
	}
	return 0
}

// funds is the client's funds.
func (n *cheatNet) funds() int64 {
	var me struct {
		Funds int64 `json:"funds_micro_usd"`
	}
	httpJSON(n.t, "GET", n.base+"/me", n.clientKey, nil, &me)
	return me.Funds
}

// party reads a solver's or verifier's money.
func (n *cheatNet) party(party, role string) partyMoney {
	var m partyMoney
	if code, _ := httpJSON(n.t, http.MethodGet, n.http+"/v1/parties/"+party+"?role="+role, n.opKey, nil, &m); code != http.StatusOK {
		n.t.Fatalf("GET /v1/parties/%s: %d", party, code)
	}
	return m
}

// complete sends the test's completion request and wants an answer with
// a receipt.
func (n *cheatNet) complete() completion {
	var c completion
	if st, _ := httpJSON(n.t, "POST", n.base+"/completions", n.clientKey, cheatRequest, &c); st != 200 || c.Receipt == "" {
		n.t.Fatalf("completion: %d %+v", st, c)
	}
	return c
}

var cheatRequest = map[string]any{"model": "fortunes-gpt", "prompt": "Q: Who checks the checkers?\nA:", "max_tokens": 40, "temperature": 0.7, "seed": 11}

// TestInferenceCheater is the gateway catching a solver that signs false
// answers, every party its own process: the only solver serving the
// published model is a test build (-tags belugacheat, --cheat-inference)
// that changes a byte of every answer before signing it. The client gets
// its completion and receipt. The coordinator then restarts, no verifier
// having checked the sampled receipt (it is kept in the coordinator's
// store until checked); the verifier process, started only after the
// restart, recomputes the receipt and claims fraud; the coordinator plays the dispute with the two over
// libp2p and rules against the solver: the client's funds are back where
// they were, the cheater's bond is slashed by what the coordinator logs,
// the verifier earns its bounty, and the cheater is banned (the model has
// no solver left; the next request is refused and charges nothing). The
// receipt, checked offline with `beluga verify-inference`, fails too.
func TestInferenceCheater(t *testing.T) {
	t.Parallel() // with the other cheater tests
	n := newCheatNet(t)
	before := n.funds()
	c := n.complete()
	// The coordinator restarts with no verifier online; the verifier
	// starts only after that: the sampled receipt waits for it, stored.
	n.coord.stop(syscall.SIGTERM)
	n.coordinator("--inference-verify-ppm", "1000000")
	until(t, 30*time.Second, "the cheater announced fortunes-gpt to the restarted coordinator", func() bool { return n.solvers() == 1 })
	_, verifierParty := n.verifier("verifier", n.bin)
	slashed := n.coord.wait(regexp.MustCompile(`inference solver slashed.*solver=`+n.cheaterParty+`.*request=(\S+).*slashed_micro_usd=(\d+) refund_micro_usd=(\d+)`), 60*time.Second)
	if slashed[1] != c.ID {
		t.Fatalf("the cheater was slashed for request %s, want %s", slashed[1], c.ID)
	}
	slash, _ := strconv.ParseInt(slashed[2], 10, 64)
	if slash <= 0 {
		t.Fatalf("the cheater was slashed %s µ$", slashed[2])
	}

	// The client can see it too: the receipt does not verify offline.
	var rec json.RawMessage
	if st, _ := httpJSON(t, "GET", n.base+"/receipts/"+c.Receipt, n.clientKey, nil, &rec); st != 200 {
		t.Fatalf("receipt: %d %s", st, rec)
	}
	recFile := filepath.Join(n.dir, "receipt.json")
	if err := os.WriteFile(recFile, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runErr(n.bin, nil, "verify-inference", recFile, "--run", n.run); err == nil {
		t.Fatalf("a tampered answer's receipt verified offline:\n%s", out)
	}

	// Money: the client is whole, the cheater's bond paid for it, the
	// verifier earned its bounty.
	until(t, 10*time.Second, "the client refunded", func() bool { return n.funds() == before })
	if sp := n.party(n.cheaterParty, "solver"); sp.BondMicroUSD != 20_000_000-slash {
		t.Fatalf("the cheater's bond after a %d µ$ slash: %+v, want %d", slash, sp, 20_000_000-slash)
	}
	if vp := n.party(verifierParty, "verifier"); vp.EarningsMicroUSD <= 0 {
		t.Fatalf("the verifier that proved the fraud earned nothing: %+v", vp)
	}

	// Banned: the model has no solver, and a request is refused, free.
	until(t, 10*time.Second, "the cheater banned from fortunes-gpt", func() bool { return n.solvers() == 0 })
	var e completion
	if st, _ := httpJSON(t, "POST", n.base+"/completions", n.clientKey, cheatRequest, &e); st == 200 || e.Error == nil {
		t.Fatalf("a request to a model whose only solver is banned: %d %+v", st, e)
	}
	if got := n.funds(); got != before {
		t.Fatalf("the refused request changed the funds: %d → %d", before, got)
	}
}

// TestInferenceColluder is a second opinion catching a verifier that
// covers for a cheating solver, every party its own process: the only
// verifier online when the cheater answers is a test build
// (--cheat-pass) that passes every receipt. With every passed receipt
// drawn for a second opinion (--inference-second-opinion-ppm 1000000),
// the receipt waits for another verifier; an honest one, started then,
// claims fraud, the dispute game proves it, and the coordinator slashes
// the solver and the colluder (its whole verifier bond) and bans both:
// GET /metrics shows one fraud and one verifier left.
func TestInferenceColluder(t *testing.T) {
	t.Parallel() // with the other cheater tests
	n := newCheatNet(t, "--inference-second-opinion-ppm", "1000000")
	colluder, colluderParty := n.verifier("colluder", n.cheatBin, "--cheat-pass")
	colluder.wait(regexp.MustCompile(`rewrites every inference verdict`), 60*time.Second)
	n.coord.wait(regexp.MustCompile(`inference verifier announced`), 30*time.Second)
	before := n.funds()
	c := n.complete()
	n.coord.wait(regexp.MustCompile(`inference receipt verified.*receipt=`+c.Receipt+`.*verdict=pass`), 60*time.Second)
	_, honestParty := n.verifier("honest", n.bin)
	refuted := n.coord.wait(regexp.MustCompile(`inference pass refuted.*verifier=(\S+) request=(\S+) verifier_slashed_micro_usd=(\d+)`), 90*time.Second)
	if refuted[1] != colluderParty || refuted[2] != c.ID {
		t.Fatalf("pass refuted: %q, want the colluder %s on request %s", refuted[0], colluderParty, c.ID)
	}
	n.coord.wait(regexp.MustCompile(`inference solver slashed.*solver=`+n.cheaterParty+`.*request=`+c.ID), 10*time.Second)
	until(t, 10*time.Second, "the client refunded", func() bool { return n.funds() == before })
	if vp := n.party(colluderParty, "verifier"); vp.BondMicroUSD != 0 || vp.EarningsMicroUSD != 0 {
		t.Fatalf("the colluder after its slash: %+v, want its $20 bond gone, nothing earned", vp)
	}
	if vp := n.party(honestParty, "verifier"); vp.EarningsMicroUSD <= 0 || vp.BondMicroUSD != 20_000_000 {
		t.Fatalf("the honest verifier: %+v, want a bounty and its bond whole", vp)
	}
	_, metrics := httpText(t, n.http+"/metrics", n.opKey)
	for _, want := range []string{`beluga_inference_receipts_total{outcome="fraud"} 1`, `beluga_inference_peers{role="verifier"} 1`, `beluga_inference_peers{role="solver"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
