package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
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
// its own process: the solver runs a test build of the binary (-tags
// belugacheat) that corrupts its training state from step 5 on and lies
// about it in the dispute; the verifier's replay finds the mismatch, the
// coordinator referees the dispute between the two processes over libp2p
// and rules against the solver. The job ends adjudicated_cheat: the signed
// report names the solver as the loser at the first corrupted step and
// its bond slashed, the client's escrow is refunded and the slash paid
// to it, the verifier earns its bounty, and the cheater earns nothing.
func TestJourneyCheater(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary as separate processes with a cheating solver (~30 s)")
	}
	const cheatFrom = 5
	j, solver, verifier := networkWith(t, "belugacheat", []string{"--cheat-from-step", strconv.Itoa(cheatFrom)}, nil)
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

	reportFile := filepath.Join(j.dir, "report.json")
	j.client("report", posted.ID, "-o", reportFile)
	run(t, j.bin, nil, "report", "verify", reportFile, "--coordinator-key", j.p2pAddr)
	b, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep cheatReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v", err)
	}
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
