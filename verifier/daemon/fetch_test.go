package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/datanet"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/protocol/rundir/rundirtest"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

// TestGPTAuditFetchesCorpus: a verifier without the job's corpus fetches
// it from the coordinator over libp2p, keeps it in its CorpusDir, and
// passes the honest run.
func TestGPTAuditFetchesCorpus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	corpus := modeltest.Corpus(9, 3000)
	s := modeltest.TinyGPT(corpus, 8)
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
	cs, err := store.Open(filepath.Join(dir, "run", rundir.StoreDir))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	c := newFakeCoordinator(t)
	datanet.Serve(c.n.Host, func([32]byte, int) ([]byte, bool, error) { return corpus, true, nil }, nil, nil)
	sn, err := p2p.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	exchange.Serve(sn, exchange.FromStore(cs), exchange.ServeConfig{Coordinator: c.n.ID()})
	vn, err := p2p.New(ctx, p2p.WithAllow(c.n.ID()))
	if err != nil {
		t.Fatal(err)
	}
	defer vn.Close()
	rec, corpora := newRecorder(), filepath.Join(dir, "corpora")
	d, err := Start(ctx, vn, Config{Coordinator: c.n.Addrs()[0], CorpusDir: corpora, Logger: rec.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	js, _ := s.JSON()
	grant, err := exchange.IssueGrant(c.n, job, vn.ID(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	entries := wire.TraceEntries(tr.Entries)
	tk := &wire.AuditTask{Solver: sn.ID(), TraceRoot: wire.Trace(job, entries).Root(), Beacon: []byte("fetch beacon"), SpecJSON: js, Entries: entries,
		Providers: []peer.ID{sn.ID()}, ProviderAddrs: sn.Addrs(), Grant: grant}
	if _, err := c.n.Request(ctx, vn.ID(), wire.AuditProtocol, job, tk, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	select {
	case rep := <-c.reports:
		if !rep.Pass || rep.StepsChecked == 0 {
			t.Fatalf("honest GPT run audited on a fetched corpus: pass %v, %d steps, %s", rep.Pass, rep.StepsChecked, rep.Reason)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no report")
	}
	rec.wait(t, datanet.EventFetched, time.Second)
	if b, err := os.ReadFile(filepath.Join(corpora, s.Data.Text.Root)); err != nil || !bytes.Equal(b, corpus) {
		t.Fatalf("the corpus is not kept in CorpusDir: %v", err)
	}
}
