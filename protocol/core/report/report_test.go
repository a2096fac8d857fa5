package report_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/challenge"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/spectest"
)

func key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
}

func peerOf(k ed25519.PrivateKey) string { return report.PeerID(k.Public().(ed25519.PublicKey)) }

// fixture is a settled job's report: a public job of 1000 steps with a
// digest every 10, audited by one verifier that replayed the segments the
// beacon draws, and the ledger of a settlement.
func fixture(t testing.TB) (*report.Report, ed25519.PrivateKey) {
	s, err := spectest.MLP(64)
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.DigestInterval, s.CheckpointInterval = 1000, 100, 1000
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	job, _ := s.ID()
	tr := &trace.Trace{Job: job}
	for i := range s.Digests() {
		step, _ := trace.StepAt(s, i)
		tr.Entries = append(tr.Entries, trace.Entry{Step: step, Digest: merkle.Digest(sha256.Sum256(binary.LittleEndian.AppendUint64(nil, uint64(i))))})
	}
	root := tr.Root()
	proof, err := tr.Prove(len(tr.Entries) - 1)
	if err != nil {
		t.Fatal(err)
	}
	var sib []string
	for _, d := range proof.Siblings {
		sib = append(sib, hex.EncodeToString(d[:]))
	}
	beacon := []byte("beluga test beacon")
	required, err := report.RequiredSamples(s)
	if err != nil {
		t.Fatal(err)
	}
	N := len(tr.Entries) - 1
	picked, err := challenge.Sample(challenge.Seed(job, root, beacon), N, int(required))
	if err != nil {
		t.Fatal(err)
	}
	solver, verifier, coord := key(1), key(2), key(3)
	f := report.Findings{JobID: job.String(), Solver: peerOf(solver), TraceRoot: hex.EncodeToString(root[:]), Beacon: hex.EncodeToString(beacon),
		Method: report.MethodReplay, Population: int64(N), Verdict: report.Pass, ConfidencePPM: 990_000}
	for _, p := range picked {
		a, b := tr.Entries[p], tr.Entries[p+1]
		f.Segments = append(f.Segments, report.SegmentCheck{Segment: int64(p), FromStep: a.Step, ToStep: b.Step, Outcome: report.Match})
		f.StepsChecked += b.Step - a.Step
	}
	f.ReplayedPPM = f.StepsChecked * 1_000_000 / s.Steps
	sf, err := report.SignFindings(&f, verifier)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	committed := at(60)
	esc := report.EscrowAccount(job.String())
	r := &report.Report{
		Version: report.Version, JobID: job.String(), Spec: s, Client: "client-1",
		Dataset: report.Dataset{Source: s.Data.Source, TrainRoot: s.Data.Train.Root},
		Solvers: []report.Party{{PeerID: peerOf(solver), Party: "solver-x", Steps: s.Steps}},
		Trace: &report.Trace{Root: hex.EncodeToString(root[:]), Steps: s.Steps, DigestInterval: s.DigestInterval, Entries: s.Digests(),
			FinalDigest: hex.EncodeToString(tr.Entries[N].Digest[:]), FinalProof: sib},
		Beacon: &report.Beacon{Value: hex.EncodeToString(beacon), Source: report.BeaconSource, DrawnAt: committed},
		Policy: report.Policy{CheatFractionPPM: s.Audit.CheatFractionPPM, ConfidencePPM: s.Audit.ConfidencePPM, RequiredSamples: required},
		Audits: []report.Audit{{Verifier: report.Party{PeerID: peerOf(verifier), Party: "verifier-y"}, ReportedAt: at(70), Signed: *sf}},
		Ledger: []report.Movement{
			{TransferID: "01", Seq: 1, At: at(0), Code: "lock_client_escrow", Kind: report.Pending, Debit: "client:client-1", Credit: esc, AmountMicroUSD: 1000},
			{TransferID: "02", Seq: 2, At: at(1), Code: "lock_solver_bond", Kind: report.Pending, Debit: "solver_bond:solver-x", Credit: esc, AmountMicroUSD: 500},
			{TransferID: "03", Seq: 5, At: at(70), Code: "pay_solvers_pro_rata", Kind: report.PostPending, Debit: "client:client-1", Credit: esc, AmountMicroUSD: 1000, PendingID: "01"},
			{TransferID: "04", Seq: 6, At: at(70), Code: "pay_solvers_pro_rata", Kind: report.Posted, Debit: esc, Credit: "solver_earnings:solver-x", AmountMicroUSD: 900},
			{TransferID: "05", Seq: 7, At: at(70), Code: "charge_fee", Kind: report.Posted, Debit: esc, Credit: "platform_fees", AmountMicroUSD: 100},
			{TransferID: "06", Seq: 8, At: at(70), Code: "release_solver_bonds", Kind: report.VoidPending, Debit: "solver_bond:solver-x", Credit: esc, AmountMicroUSD: 500, PendingID: "02"},
		},
		Disputes: []report.Dispute{}, Slashes: []report.Slash{},
		Outcome: report.Outcome{State: report.StateSettled, Verdict: report.Pass, ConfidencePPM: 990_000},
		Times:   report.Times{PostedAt: at(0), CommittedAt: &committed, EndedAt: at(70), IssuedAt: at(71)},
	}
	if err := r.Sign(coord); err != nil {
		t.Fatal(err)
	}
	return r, coord
}

func marshal(t testing.TB, r *report.Report) []byte {
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRoundTripVerifies: a signed report survives encoding, decoding and
// re-formatting, and verifies with and without the coordinator's key
// pinned.
func TestRoundTripVerifies(t *testing.T) {
	t.Parallel()
	r, coord := fixture(t)
	b := marshal(t, r)
	got, signer, err := report.Verify(b, coord.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if !signer.Equal(coord.Public()) || got.JobID != r.JobID || len(got.Audits) != 1 {
		t.Fatalf("verified %s by %x", got.JobID, signer)
	}
	if !bytes.Equal(marshal(t, got), b) {
		t.Fatal("decode then encode changed the report")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatal(err)
	}
	if _, _, err := report.Verify(compact.Bytes(), nil); err != nil {
		t.Fatalf("a re-formatted report: %v", err)
	}
}

// TestTamperedFieldFails changes every value of the report in turn (each
// string, number and boolean, the signatures included) and checks that
// none of the results verifies.
func TestTamperedFieldFails(t *testing.T) {
	t.Parallel()
	r, coord := fixture(t)
	b := marshal(t, r)
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var paths []string
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(e, path+"/"+k)
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprint(path, "/", i))
			}
		default:
			paths = append(paths, path)
		}
	}
	walk(doc, "")
	if len(paths) < 100 {
		t.Fatalf("only %d fields", len(paths))
	}
	for _, p := range paths {
		var d any
		_ = json.Unmarshal(b, &d)
		set(d, p)
		nb, _ := json.Marshal(d)
		if _, _, err := report.Verify(nb, coord.Public().(ed25519.PublicKey)); err == nil {
			t.Errorf("changing %s: the report still verifies", p)
		}
	}
	// The signature in upper-case hex is not the canonical form.
	upper := bytes.Replace(b, []byte(r.Signature.Value), bytes.ToUpper([]byte(r.Signature.Value)), 1)
	if _, _, err := report.Verify(upper, nil); !errors.Is(err, report.ErrMalformed) {
		t.Errorf("an upper-case signature: %v", err)
	}
	// Dropping an audit's signature or the report's fails too.
	for _, drop := range []func(*report.Report){
		func(r *report.Report) { r.Signature = nil },
		func(r *report.Report) { r.Audits = nil },
		func(r *report.Report) { r.Ledger = r.Ledger[:len(r.Ledger)-1] },
	} {
		c, _ := fixture(t)
		drop(c)
		if _, _, err := report.Verify(marshal(t, c), nil); err == nil {
			t.Error("a report with a part removed verifies")
		}
	}
}

// set changes the leaf at path in doc.
func set(doc any, path string) {
	var parts []string
	for _, p := range bytes.Split([]byte(path[1:]), []byte("/")) {
		parts = append(parts, string(p))
	}
	cur := doc
	for i, p := range parts {
		last := i == len(parts)-1
		switch x := cur.(type) {
		case map[string]any:
			if last {
				x[p] = tweak(x[p])
				return
			}
			cur = x[p]
		case []any:
			var n int
			fmt.Sscan(p, &n)
			if last {
				x[n] = tweak(x[n])
				return
			}
			cur = x[n]
		}
	}
}

func tweak(v any) any {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "x"
		}
		b := []byte(x)
		if b[0] == '0' {
			b[0] = '1'
		} else {
			b[0] = '0'
		}
		return string(b)
	case float64:
		return x + 1
	case bool:
		return !x
	case nil:
		return 1
	}
	return v
}

// TestWrongCoordinatorKeyFails: a report verifies only against the key
// it was signed with, when one is pinned; one re-signed by another key
// fails against the pinned one.
func TestWrongCoordinatorKeyFails(t *testing.T) {
	t.Parallel()
	r, _ := fixture(t)
	other := key(9)
	if _, _, err := report.Verify(marshal(t, r), other.Public().(ed25519.PublicKey)); !errors.Is(err, report.ErrBadSignature) {
		t.Fatalf("pinned to another key: %v", err)
	}
	r2, coord := fixture(t)
	if err := r2.Sign(other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := report.Verify(marshal(t, r2), coord.Public().(ed25519.PublicKey)); !errors.Is(err, report.ErrBadSignature) {
		t.Fatalf("re-signed by another key: %v", err)
	}
}

// TestForeignFindingsFail: findings signed by someone other than the
// verifier the report names are refused, and findings whose samples are
// not the ones the beacon draws are inconsistent even when validly signed.
func TestForeignFindingsFail(t *testing.T) {
	t.Parallel()
	r, coord := fixture(t)
	sf, err := report.SignFindings(&r.Audits[0].Signed.Findings, key(7))
	if err != nil {
		t.Fatal(err)
	}
	r.Audits[0].Signed = *sf
	_ = r.Sign(coord)
	if _, _, err := report.Verify(marshal(t, r), nil); !errors.Is(err, report.ErrInconsistent) {
		t.Fatalf("findings signed by another peer: %v", err)
	}
	r, coord = fixture(t)
	f := r.Audits[0].Signed.Findings
	f.Segments = f.Segments[1:]
	f.StepsChecked -= 100
	sf, _ = report.SignFindings(&f, key(2))
	r.Audits[0].Signed = *sf
	_ = r.Sign(coord)
	if _, _, err := report.Verify(marshal(t, r), nil); !errors.Is(err, report.ErrInconsistent) {
		t.Fatalf("a sample left out: %v", err)
	}
}

// TestPeerIDMatchesLibp2p: PeerID and KeyOfPeerID agree with libp2p's
// peer IDs of ed25519 keys.
func TestPeerIDMatchesLibp2p(t *testing.T) {
	t.Parallel()
	for seed := range byte(5) {
		k := key(seed)
		lk, err := crypto.UnmarshalEd25519PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(lk)
		if err != nil {
			t.Fatal(err)
		}
		if got := peerOf(k); got != id.String() {
			t.Fatalf("PeerID %s, libp2p %s", got, id)
		}
		pub, err := report.ParseKey("/ip4/127.0.0.1/tcp/4001/p2p/" + id.String())
		if err != nil || !pub.Equal(k.Public()) {
			t.Fatalf("ParseKey: %v", err)
		}
	}
	if _, err := report.KeyOfPeerID("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"); err == nil {
		t.Fatal("a non-ed25519 peer ID gave a key")
	}
}

// TestCanonical pins the canonical encoding on RFC 8785's rules for the
// values a report holds.
func TestCanonical(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"b": 1, "a": [true, null, "x\u0041\n\u001f\"\\é"], "aa": {}}`: `{"a":[true,null,"xA\n\u001f\"\\é"],"aa":{},"b":1}`,
		` -0 `:             `0`,
		`9007199254740991`: `9007199254740991`,
	} {
		got, err := report.Canonical([]byte(in), "")
		if err != nil || string(got) != want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{`1.5`, `1e3`, `9007199254740992`, `{"a":1,"a":2}`, `[1] 2`, "\"\xff\""} {
		if _, err := report.Canonical([]byte(in), ""); err == nil {
			t.Errorf("Canonical(%s) accepted", in)
		}
	}
}

// FuzzDecode: no input makes the decoder or the verifier panic, and what
// decodes re-encodes to something that decodes again.
func FuzzDecode(f *testing.F) {
	r, _ := fixture(f)
	b, _ := r.Marshal()
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{}`))
	sf, _ := r.Audits[0].Signed.Encode()
	f.Add(sf)
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := report.Decode(data); err == nil {
			again, err := r.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := report.Decode(again); err != nil {
				t.Fatalf("re-encoded report does not decode: %v", err)
			}
		}
		_, _, _ = report.Verify(data, nil)
		if sf, err := report.DecodeSignedFindings(data); err == nil {
			_, _ = sf.Verify()
		}
	})
}

// TestRender shows the parts a reader looks for.
func TestRender(t *testing.T) {
	t.Parallel()
	r, _ := fixture(t)
	var b bytes.Buffer
	if err := r.Render(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{r.JobID, "settled (audit pass", r.Trace.Root, r.Audits[0].Verifier.PeerID, "segment", "match", "charge_fee", "Signed by coordinator " + r.Signature.PeerID} {
		if !bytes.Contains(b.Bytes(), []byte(want)) {
			t.Errorf("rendering lacks %q:\n%s", want, b.String())
		}
	}
}

// TestSpecVectors pins SPEC.md §18.2's vectors: a peer ID, a canonical
// encoding and a findings signature.
func TestSpecVectors(t *testing.T) {
	t.Parallel()
	k := key(0)
	pub := k.Public().(ed25519.PublicKey)
	if hex.EncodeToString(pub) != "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29" || report.PeerID(pub) != "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN" {
		t.Fatalf("peer ID vector: %x %s", pub, report.PeerID(pub))
	}
	c, err := report.Canonical([]byte(`{"b": 1, "a": [true, null, "x\n\u0001é"]}`), "")
	if err != nil || string(c) != `{"a":[true,null,"x\n\u0001é"],"b":1}` {
		t.Fatalf("canonical vector: %s %v", c, err)
	}
	sig := ed25519.Sign(k, append([]byte(report.FindingsDomain+"\x00"), `{"job_id":"00"}`...))
	if hex.EncodeToString(sig) != "c6208921d0d69536d81ad84045e5603dbafc9755cec432174ac487e453a1884598328db1aad054f36883b75b871cbcb0641bc971bab439e6e3ed958d3407770b" {
		t.Fatalf("signature vector: %x", sig)
	}
}
