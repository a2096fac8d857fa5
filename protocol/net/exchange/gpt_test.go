package exchange

import (
	"context"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// TestFetchGPTState: a GPT's checkpoint (int32 weights and moments, int64
// second moments) travels and is rebuilt as the state that was stored,
// element types included; an MLP's spec refuses the same manifest.
func TestFetchGPTState(t *testing.T) {
	t.Parallel()
	corpus := modeltest.Corpus(2, 2000)
	s := modeltest.TinyGPT(corpus, 4)
	job, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	d, err := model.NewTextData(s, corpus)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := model.InitState(s)
	r, err := model.NewRunner(s, d, st, model.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // non-zero second moments
		if _, err := r.Step(); err != nil {
			t.Fatal(err)
		}
	}
	mem := store.NewMemory()
	man, err := mem.PutCheckpoint(context.Background(), job, r.State())
	if err != nil {
		t.Fatal(err)
	}
	holder, fetcher := node(t), node(t)
	serve(holder, mem)
	connect(t, fetcher, holder)
	got, err := FetchState(context.Background(), fetcher, []peer.ID{holder.ID()}, s, job, 2, man.Digest, granted(t, fetcher, job))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r.State()) {
		t.Fatal("the fetched GPT state is not the stored one")
	}
	// The manifest's tensors must be the spec's: an MLP's rebuild refuses them.
	chunks := map[store.ChunkID][]byte{}
	for _, id := range man.ChunkIDs() {
		chunks[id], _ = mem.Get(context.Background(), id)
	}
	if _, err := rebuild(s, &man, chunks); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	mlp, err := spectest.MLP(4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rebuild(mlp, &man, chunks); err == nil {
		t.Fatal("an MLP spec rebuilt a GPT's checkpoint")
	}
}
