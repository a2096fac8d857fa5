package lifecycle

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// legal is the transition table written out again, by name, independently
// of the package's table.
var legal = map[string]string{
	"posted/match":                              "matched",
	"posted/cancel":                             "cancelled",
	"matched/start":                             "running",
	"matched/vanish":                            "resumable",
	"running/checkpoint":                        "running",
	"running/commit":                            "committed",
	"running/vanish":                            "resumable",
	"committed/open_audit":                      "audit_window",
	"audit_window/close_audit":                  "settled",
	"audit_window/dispute":                      "disputed",
	"disputed/rule_cheat":                       "adjudicated_cheat",
	"disputed/rule_false_accusation":            "adjudicated_false_accusation",
	"adjudicated_false_accusation/resume_audit": "audit_window",
	"resumable/match":                           "matched",
	"resumable/cancel":                          "cancelled",
	"audit_window/assign_audit":                 "audit_window",
	"posted/expire":                             "expired",
	"matched/expire":                            "expired",
	"running/expire":                            "expired",
	"committed/expire":                          "expired",
	"audit_window/expire":                       "expired",
	"disputed/expire":                           "expired",
	"adjudicated_false_accusation/expire":       "expired",
	"resumable/expire":                          "expired",
}

// TestTransitionTableExhaustive applies every event to every state.
func TestTransitionTableExhaustive(t *testing.T) {
	if len(States()) != 12 || len(Events()) != 14 {
		t.Fatalf("%d states, %d events: update this test", len(States()), len(Events()))
	}
	seen := 0
	for _, s := range States() {
		for _, e := range Events() {
			got, err := Apply(s, e)
			want, ok := legal[s.String()+"/"+e.String()]
			switch {
			case ok:
				seen++
				if err != nil || got.String() != want {
					t.Errorf("Apply(%s, %s) = %s, %v; want %s", s, e, got, err, want)
				}
			default:
				if !errors.Is(err, ErrIllegalTransition) || got != s {
					t.Errorf("Apply(%s, %s) = %s, %v; want ErrIllegalTransition and the state unchanged", s, e, got, err)
				}
				if err != nil && (!strings.Contains(err.Error(), s.String()) || !strings.Contains(err.Error(), e.String())) {
					t.Errorf("error %q does not name the state and event", err)
				}
			}
		}
	}
	if seen != len(legal) || len(Transitions()) != len(legal) {
		t.Fatalf("%d legal pairs applied, %d in the table, %d expected", seen, len(Transitions()), len(legal))
	}
	// Values outside the sets.
	for _, s := range []State{0, State(len(States()) + 1), 255} {
		if _, err := Apply(s, EventMatch); !errors.Is(err, ErrUnknownState) {
			t.Errorf("Apply(%d, match) = %v", s, err)
		}
	}
	for _, e := range []Event{0, Event(len(Events()) + 1), 255} {
		if _, err := Apply(Posted, e); !errors.Is(err, ErrUnknownEvent) {
			t.Errorf("Apply(posted, %d) = %v", e, err)
		}
	}
}

func TestTerminalAndAccepts(t *testing.T) {
	for _, s := range States() {
		acc := Accepts(s)
		if s.Terminal() != (len(acc) == 0) {
			t.Errorf("%s: terminal %v but accepts %v", s, s.Terminal(), acc)
		}
		for _, e := range acc {
			if _, ok := legal[s.String()+"/"+e.String()]; !ok {
				t.Errorf("%s accepts %s", s, e)
			}
		}
	}
	var terminal []string
	for _, s := range States() {
		if s.Terminal() {
			terminal = append(terminal, s.String())
		}
	}
	if strings.Join(terminal, ",") != "settled,adjudicated_cheat,cancelled,expired" {
		t.Fatalf("terminal states %v", terminal)
	}
}

// TestEveryStateReachableAndEnds checks the table's shape: every state is
// reachable from posted, and from every state some terminal state is
// reachable (no job can be stuck for good).
func TestEveryStateReachableAndEnds(t *testing.T) {
	reach := func(from State) map[State]bool {
		seen := map[State]bool{from: true}
		queue := []State{from}
		for len(queue) > 0 {
			s := queue[0]
			queue = queue[1:]
			for _, e := range Accepts(s) {
				n, _ := Apply(s, e)
				if !seen[n] {
					seen[n] = true
					queue = append(queue, n)
				}
			}
		}
		return seen
	}
	fromPosted := reach(Posted)
	for _, s := range States() {
		if !fromPosted[s] {
			t.Errorf("%s unreachable from posted", s)
		}
		ends := false
		for r := range reach(s) {
			ends = ends || r.Terminal()
		}
		if !ends {
			t.Errorf("no terminal state reachable from %s", s)
		}
	}
}

// TestRandomWalk drives jobs with random events, legal or not, and checks
// that illegal events change nothing, legal ones follow the table, and
// money actions follow the rules: escrow is locked exactly once, before
// anything else; a bond is locked on every match; every disputed entry
// locks a verifier bond; a job ends with exactly one of settlement, cheat
// ruling or cancellation.
func TestRandomWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 7))
	events := Events()
	endings := map[State]int{}
	for job := range 5000 {
		s := Posted
		acts := slices.Clone(Actions(Posted))
		matches, assigns, disputes := 0, 0, 0
		for step := 0; !s.Terminal() && step < 200; step++ {
			e := events[rng.IntN(len(events))]
			n, err := Apply(s, e)
			_, ok := legal[s.String()+"/"+e.String()]
			if ok != (err == nil) {
				t.Fatalf("job %d: Apply(%s, %s) error %v, table says legal=%v", job, s, e, err, ok)
			}
			if err != nil {
				if n != s {
					t.Fatalf("job %d: failed transition moved %s to %s", job, s, n)
				}
				continue
			}
			if n == Matched {
				matches++
			}
			if n == Disputed {
				disputes++
			}
			if e == EventAssignAudit {
				assigns++
			}
			s = n
			acts = append(acts, EventActions(e)...)
			acts = append(acts, Actions(s)...)
		}
		count := func(a Action) int {
			n := 0
			for _, x := range acts {
				if x == a {
					n++
				}
			}
			return n
		}
		if acts[0] != LockClientEscrow || count(LockClientEscrow) != 1 {
			t.Fatalf("job %d: escrow actions %v", job, acts)
		}
		// A verifier's bond is locked per assigned audit, never per dispute.
		if count(LockSolverBond) != matches || count(LockVerifierBond) != assigns {
			t.Fatalf("job %d: %d matches, %d audits assigned, %d disputes, actions %v", job, matches, assigns, disputes, acts)
		}
		if !s.Terminal() {
			continue
		}
		endings[s]++
		if refunds := count(RefundClientEscrow) + count(RefundClientRemainder); refunds != 1 {
			t.Fatalf("job %d ended %s with %d refunds: %v", job, s, refunds, acts)
		}
		if count(PaySolversProRata) != map[bool]int{true: 1}[s == Settled] {
			t.Fatalf("job %d ended %s, actions %v", job, s, acts)
		}
	}
	for _, s := range []State{Settled, AdjudicatedCheat, Cancelled, Expired} {
		if endings[s] == 0 {
			t.Errorf("the walk never ended in %s: too few steps?", s)
		}
	}
}

func TestActions(t *testing.T) {
	want := map[State]string{
		Posted:                     "lock_client_escrow",
		Matched:                    "lock_solver_bond",
		Running:                    "",
		Committed:                  "",
		AuditWindow:                "",
		Settled:                    "pay_solvers_pro_rata,pay_verifiers,charge_fee,refund_client_remainder,release_solver_bonds,release_verifier_bond",
		Disputed:                   "",
		AdjudicatedCheat:           "slash_solver_bond_to_client,pay_verifier_bounty,release_verifier_bond,refund_client_escrow,release_solver_bonds",
		AdjudicatedFalseAccusation: "slash_verifier_bond_to_solver",
		Resumable:                  "",
		Cancelled:                  "refund_client_escrow,release_solver_bonds",
		Expired:                    "refund_client_escrow,release_solver_bonds,release_verifier_bond",
	}
	for _, s := range States() {
		var names []string
		for _, a := range Actions(s) {
			names = append(names, a.String())
		}
		if got := strings.Join(names, ","); got != want[s] {
			t.Errorf("Actions(%s) = %s, want %s", s, got, want[s])
		}
	}
	if Actions(0) != nil {
		t.Error("actions for an unknown state")
	}
	for _, e := range Events() {
		var names []string
		for _, a := range EventActions(e) {
			names = append(names, a.String())
		}
		want := ""
		if e == EventAssignAudit {
			want = "release_verifier_bond,lock_verifier_bond"
		}
		if got := strings.Join(names, ","); got != want {
			t.Errorf("EventActions(%s) = %s, want %s", e, got, want)
		}
	}
	for a := LockClientEscrow; a < numActions; a++ {
		if strings.HasPrefix(a.String(), "Action(") {
			t.Errorf("action %d has no name", a)
		}
	}
}

func TestTextRoundTrip(t *testing.T) {
	for _, s := range States() {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("state %s: %v, %v", s, back, err)
		}
	}
	for _, e := range Events() {
		b, err := e.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Event
		if err := back.UnmarshalText(b); err != nil || back != e {
			t.Errorf("event %s: %v, %v", e, back, err)
		}
	}
	var s State
	for _, bad := range []string{"", "Posted", "bogus"} {
		if err := s.UnmarshalText([]byte(bad)); !errors.Is(err, ErrUnknownState) {
			t.Errorf("UnmarshalText(%q) = %v", bad, err)
		}
	}
	var e Event
	if err := e.UnmarshalText([]byte("")); !errors.Is(err, ErrUnknownEvent) {
		t.Errorf("event UnmarshalText(\"\") = %v", err)
	}
	if _, err := State(0).MarshalText(); !errors.Is(err, ErrUnknownState) {
		t.Error("marshalled state 0")
	}
	data, err := json.Marshal(map[string]State{"state": AuditWindow})
	if err != nil || string(data) != `{"state":"audit_window"}` {
		t.Fatalf("JSON %s, %v", data, err)
	}
}

func TestProRata(t *testing.T) {
	tests := []struct {
		total   int64
		weights []int64
		want    []int64
	}{
		{100, []int64{1}, []int64{100}},
		{100, []int64{1, 1}, []int64{50, 50}},
		{100, []int64{1, 1, 1}, []int64{34, 33, 33}}, // ties: the earlier solver
		{101, []int64{1, 1}, []int64{51, 50}},
		{10, []int64{3, 3, 4}, []int64{3, 3, 4}},
		{10, []int64{1, 2, 2}, []int64{2, 4, 4}},
		{7, []int64{5, 0, 5}, []int64{4, 0, 3}},
		{0, []int64{3, 4}, []int64{0, 0}},
		{1, []int64{2, 3}, []int64{0, 1}}, // largest remainder wins, not the first
		{999_999, []int64{6000, 4000}, []int64{599_999, 400_000}},
		{math.MaxInt64, []int64{math.MaxInt64 - 1, 1}, []int64{math.MaxInt64 - 1, 1}},
		{math.MaxInt64, []int64{1, 1}, []int64{math.MaxInt64/2 + 1, math.MaxInt64 / 2}},
	}
	for _, tt := range tests {
		got, err := ProRata(tt.total, tt.weights)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ProRata(%d, %v) = %v, %v; want %v", tt.total, tt.weights, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		total   int64
		weights []int64
	}{
		{-1, []int64{1}},
		{10, nil},
		{10, []int64{0, 0}},
		{10, []int64{1, -1}},
		{10, []int64{math.MaxInt64, 1}},
	} {
		if _, err := ProRata(bad.total, bad.weights); !errors.Is(err, ErrInvalidSplit) {
			t.Errorf("ProRata(%d, %v) = %v, want ErrInvalidSplit", bad.total, bad.weights, err)
		}
	}
}

// TestProRataRandom checks the guarantees against exact big-integer
// arithmetic on random inputs, large values included.
func TestProRataRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		n := 1 + rng.IntN(6)
		weights := make([]int64, n)
		limit := []int64{10, 1_000_000, math.MaxInt64 / int64(n)}[rng.IntN(3)]
		for i := range weights {
			if rng.IntN(5) > 0 {
				weights[i] = rng.Int64N(limit)
			}
		}
		total := []int64{rng.Int64N(100), rng.Int64N(1 << 40), rng.Int64N(math.MaxInt64)}[rng.IntN(3)]
		shares, err := ProRata(total, weights)
		var sumW int64
		for _, w := range weights {
			sumW += w
		}
		if sumW == 0 {
			if !errors.Is(err, ErrInvalidSplit) {
				t.Fatalf("ProRata(%d, %v) = %v with no weight", total, weights, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ProRata(%d, %v): %v", total, weights, err)
		}
		var sum int64
		for i, s := range shares {
			sum += s
			// floor ≤ s ≤ ceil of total × w / Σw.
			exact := new(big.Int).Mul(big.NewInt(total), big.NewInt(weights[i]))
			floor, rem := new(big.Int).QuoRem(exact, big.NewInt(sumW), new(big.Int))
			lo, hi := floor.Int64(), floor.Int64()
			if rem.Sign() > 0 {
				hi++
			}
			if s < lo || s > hi {
				t.Fatalf("ProRata(%d, %v)[%d] = %d, exact share in [%d, %d]", total, weights, i, s, lo, hi)
			}
		}
		if sum != total {
			t.Fatalf("ProRata(%d, %v) sums to %d", total, weights, sum)
		}
	}
}
