package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/rundir/rundirtest"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

// TestGPTJob: a solver trains an assigned GPT job on the corpus in its
// TextFile and commits the trace an honest local run commits (the same
// root and final digest); it serves the job's checkpoints, int64 second
// moments included, to a peer the coordinator grants them to, and another
// solver resumes the job from one of them to the same trace; a cheating
// solver commits honest digests up to its first fault and others after;
// each answers the referee with a GPT replay (its own fault included) that
// reaches the digests it committed; a solver without the corpus declines
// the assignment and says why.
func TestGPTJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	corpus := modeltest.Corpus(4, 3000)
	s := modeltest.TinyGPT(corpus, 15)
	data, err := model.NewTextData(s, corpus)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, honest, err := rundirtest.TrainData(ctx, filepath.Join(dir, "honest"), s, data)
	if err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(text, corpus, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newFakeCoordinator(t)
	start := func(textFile string, cheat *Cheat) (*p2p.Node, *Daemon, *recorder) {
		sn, err := p2p.New(ctx, p2p.WithAllow(c.n.ID()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sn.Close() })
		rec := &recorder{}
		d, err := Start(ctx, sn, Config{Coordinator: c.n.Addrs()[0], Dir: t.TempDir(), TextFile: textFile, CheatForTesting: cheat, Logger: rec.logger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return sn, d, rec
	}
	// The daemon's party in a dispute replays to the digests it committed.
	checkParty := func(d *Daemon, id spec.JobID, tc *wire.TraceCommit) {
		t.Helper()
		p, err := d.party(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tc.Entries {
			if e.Step != 6 && e.Step != 8 && e.Step != s.Steps {
				continue
			}
			got, err := p.DigestAt(ctx, e.Step)
			if err != nil {
				t.Fatal(err)
			}
			if got != e.Digest {
				t.Fatalf("the party's digest after %d steps is not the one committed", e.Step)
			}
		}
	}
	await := func() spec.JobID {
		t.Helper()
		select {
		case id := <-c.commits:
			return id
		case <-time.After(30 * time.Second):
			t.Fatal("no trace commitment")
		}
		return spec.JobID{}
	}

	sn, d, _ := start(text, nil)
	id := c.assign(t, sn, s)
	if got := await(); got != id {
		t.Fatalf("commitment of %s, want %s", got, id)
	}
	tc := c.committed(id)
	root, final := honest.Root(), honest.Entries[len(honest.Entries)-1].Digest
	if tc.TraceRoot != root || tc.FinalDigest != final || tc.Steps != s.Steps {
		t.Fatalf("the solver committed root %x, final %x; an honest run %x, %x", tc.TraceRoot[:6], tc.FinalDigest[:6], root[:6], final[:6])
	}
	checkParty(d, id, tc)
	// A granted peer fetches the checkpoint at step 10 from the solver.
	fetcher, err := p2p.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fetcher.Close()
	if _, err := fetcher.Connect(ctx, sn.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	grant, err := exchange.IssueGrant(c.n, id, fetcher.ID(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	st, err := exchange.FetchState(ctx, fetcher, []peer.ID{sn.ID()}, s, id, 10, honest.Entries[10].Digest, exchange.Options{Grant: grant})
	if err != nil {
		t.Fatalf("fetch the GPT checkpoint at step 10: %v", err)
	}
	if (&commit.Hasher{}).StateDigest(id, st) != honest.Entries[10].Digest || st.Tensors[2].DType != spec.DTypeInt64 {
		t.Fatal("the fetched checkpoint is not the committed state")
	}

	// Another solver resumes the job from the first one's checkpoint at
	// step 10 (fetched, checked against the committed digest) and commits
	// the same trace.
	rn, _, rrec := start(text, nil)
	js, _ := s.JSON()
	rgrant, err := exchange.IssueGrant(c.n, id, rn.ID(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := &wire.Assign{SpecJSON: js, ResumeStep: 10, ResumeDigest: honest.Entries[10].Digest, Providers: []peer.ID{sn.ID()},
		ProviderAddrs: sn.Addrs(), Entries: wire.TraceEntries(honest.Entries[:11]), Grant: rgrant}
	if _, err := c.n.Request(ctx, rn.ID(), wire.AssignProtocol, id, a, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	await()
	if got := c.committed(id); got.TraceRoot != root || got.FinalDigest != final {
		t.Fatal("the resumed GPT run committed another trace")
	}
	if ev, ok := rrec.find(EventResumedFrom); !ok || ev.attrs["step"] != "10" {
		t.Fatalf("no resume from step 10: %+v", ev)
	}

	// A cheater from step 6 on.
	cn, cd, _ := start(text, &Cheat{From: 6})
	c.assign(t, cn, s)
	await()
	cheat := c.committed(id)
	checkParty(cd, id, cheat)
	for i, e := range cheat.Entries {
		if same := e.Digest == honest.Entries[i].Digest; same != (e.Step <= 6) {
			t.Fatalf("cheater's digest at step %d equal to the honest one: %v", e.Step, same)
		}
	}

	// No corpus: the solver declines the assignment, saying why, and runs
	// nothing (the coordinator asks another solver).
	nn, nd, _ := start("", nil)
	_, err = c.n.Request(ctx, nn.ID(), wire.AssignProtocol, id, &wire.Assign{SpecJSON: mustJSON(t, s)}, wire.TypeAck)
	if !errors.Is(err, p2p.ErrRemote) || !strings.Contains(err.Error(), "data is not on this solver") || !strings.Contains(err.Error(), "text") {
		t.Fatalf("assignment to a solver without the corpus: %v", err)
	}
	nd.mu.Lock()
	idle := nd.job == (spec.JobID{})
	nd.mu.Unlock()
	if !idle {
		t.Fatal("a solver that declined a job runs it")
	}
}

func mustJSON(t *testing.T, s *spec.Spec) []byte {
	t.Helper()
	b, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
