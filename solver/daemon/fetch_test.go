package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/net/datanet"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

// TestGPTJobFetchesCorpus: a solver without the job's corpus (no --text
// file, or one holding another corpus) fetches it from the coordinator
// over libp2p, keeps it under its Dir, trains and commits; a coordinator
// that answers with other bytes (one byte flipped) is refused: the solver
// declines the job, keeps nothing and runs nothing.
func TestGPTJobFetchesCorpus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	corpus := modeltest.Corpus(7, 3000)
	s := modeltest.TinyGPT(corpus, 4)
	serve := func(c *fakeCoordinator, answer []byte) {
		datanet.Serve(c.n.Host, func([32]byte, int) ([]byte, bool, error) { return answer, true, nil }, nil, nil)
	}
	start := func(c *fakeCoordinator, textFile string) (*p2p.Node, *Daemon, *recorder, string) {
		sn, err := p2p.New(ctx, p2p.WithAllow(c.n.ID()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sn.Close() })
		rec, dir := &recorder{}, t.TempDir()
		d, err := Start(ctx, sn, Config{Coordinator: c.n.Addrs()[0], Dir: dir, TextFile: textFile, Logger: rec.logger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return sn, d, rec, dir
	}
	other := filepath.Join(t.TempDir(), "other.txt")
	if err := os.WriteFile(other, modeltest.Corpus(8, 3000), 0o644); err != nil {
		t.Fatal(err)
	}

	good := newFakeCoordinator(t)
	serve(good, corpus)
	for _, textFile := range []string{"", other} {
		sn, _, rec, dir := start(good, textFile)
		id := good.assign(t, sn, s)
		select {
		case got := <-good.commits:
			if got != id {
				t.Fatalf("commitment of %s, want %s", got, id)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no trace commitment from the solver that fetched its corpus")
		}
		if _, ok := rec.find(datanet.EventFetched); !ok {
			t.Fatalf("text file %q: no %q event", textFile, datanet.EventFetched)
		}
		cached, err := os.ReadFile(filepath.Join(dir, "data", "text", s.Data.Text.Root))
		if err != nil || !bytes.Equal(cached, corpus) {
			t.Fatalf("the corpus is not kept under the solver's dir: %v", err)
		}
	}

	liar := newFakeCoordinator(t)
	flipped := bytes.Clone(corpus)
	flipped[1234] ^= 1
	serve(liar, flipped)
	sn, d, _, dir := start(liar, "")
	id, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	_, err = liar.n.Request(ctx, sn.ID(), wire.AssignProtocol, id, &wire.Assign{SpecJSON: mustJSON(t, s)}, wire.TypeAck)
	if !errors.Is(err, p2p.ErrRemote) || !strings.Contains(err.Error(), "not the one the spec names") {
		t.Fatalf("assignment with a corrupted corpus: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "data", "text")); len(ents) != 0 {
		t.Fatalf("the solver kept %d files from a refused answer", len(ents))
	}
	d.mu.Lock()
	idle := d.job == [32]byte{}
	d.mu.Unlock()
	if !idle {
		t.Fatal("a solver that refused the corpus runs the job")
	}
}
