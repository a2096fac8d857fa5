package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/protocol/rundir/rundirtest"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

// TestGPTAuditOverTheNetwork: a verifier audits a GPT job as it audits an
// MLP: it reads the corpus from its TextFile (checked against the spec's
// root), fetches the sampled segments' checkpoints from the solver's
// store over the exchange (int64 second moments included), replays them
// with the GPT and reports a pass for the honest trace and a failure, at
// the tampered step, for a trace whose digest at one step is not the
// run's; its party in a dispute replays the GPT. A verifier without the
// corpus reports nothing and says why.
func TestGPTAuditOverTheNetwork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	corpus := modeltest.Corpus(5, 3000)
	s := modeltest.TinyGPT(corpus, 12)
	s.CheckpointInterval = 4
	data, err := model.NewTextData(s, corpus)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	job, tr, err := rundirtest.TrainData(ctx, filepath.Join(dir, "run"), s, data)
	if err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(text, corpus, 0o644); err != nil {
		t.Fatal(err)
	}
	cs, err := store.Open(filepath.Join(dir, "run", rundir.StoreDir))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	c := newFakeCoordinator(t)
	sn, err := p2p.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	exchange.Serve(sn, exchange.FromStore(cs), exchange.ServeConfig{Coordinator: c.n.ID()})
	start := func(textFile string) (*p2p.Node, *Daemon, *recorder) {
		vn, err := p2p.New(ctx, p2p.WithAllow(c.n.ID()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { vn.Close() })
		rec := newRecorder()
		d, err := Start(ctx, vn, Config{Coordinator: c.n.Addrs()[0], TextFile: textFile, Logger: rec.logger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return vn, d, rec
	}
	vn, vd, _ := start(text)
	js, _ := s.JSON()
	grant, err := exchange.IssueGrant(c.n, job, vn.ID(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	task := func(entries []wire.TraceEntry) *wire.AuditTask {
		root := wire.Trace(job, entries).Root()
		return &wire.AuditTask{Solver: sn.ID(), TraceRoot: root, Beacon: []byte("gpt beacon"), SpecJSON: js, Entries: entries,
			Providers: []peer.ID{sn.ID()}, ProviderAddrs: sn.Addrs(), Grant: grant}
	}
	audit := func(vn *p2p.Node, tk *wire.AuditTask) *wire.AuditReport {
		t.Helper()
		if _, err := c.n.Request(ctx, vn.ID(), wire.AuditProtocol, job, tk, wire.TypeAck); err != nil {
			t.Fatal(err)
		}
		select {
		case rep := <-c.reports:
			return rep
		case <-time.After(20 * time.Second):
			t.Fatal("no report")
		}
		return nil
	}
	honest := wire.TraceEntries(tr.Entries)
	if rep := audit(vn, task(honest)); !rep.Pass || rep.StepsChecked == 0 {
		t.Fatalf("honest GPT run: pass %v, %d steps checked, %s", rep.Pass, rep.StepsChecked, rep.Reason)
	}
	// Its party in a dispute replays the GPT honestly on its corpus.
	p, err := vd.party(job)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.DigestAt(ctx, 9); err != nil || got != tr.Entries[9].Digest {
		t.Fatalf("the verifier's party after 9 steps: %v", err)
	}
	// A fresh verifier (audits of a job are one per verifier) on a trace
	// that commits a wrong digest after step 7.
	vn2, _, _ := start(text)
	grant, _ = exchange.IssueGrant(c.n, job, vn2.ID(), time.Hour)
	bad := append([]wire.TraceEntry(nil), honest...)
	bad[7].Digest[0] ^= 1
	rep := audit(vn2, task(bad))
	if rep.Pass || rep.FirstBadStep < 6 || rep.FirstBadStep > 7 {
		t.Fatalf("tampered GPT trace: pass %v, first bad step %d (%s)", rep.Pass, rep.FirstBadStep, rep.Reason)
	}
	// Without the corpus the audit does not run.
	vn3, _, rec := start("")
	if _, err := c.n.Request(ctx, vn3.ID(), wire.AuditProtocol, job, task(honest), wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	if ev := rec.wait(t, "audit failed to run", 10*time.Second); !strings.Contains(ev.attrs["err"], "text") {
		t.Fatalf("event %+v", ev)
	}
}
