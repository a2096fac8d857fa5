package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// TestTaskWithAnotherBeaconThanPublishedIsRefused: a coordinator that
// publishes one beacon for a job on the audits topic and hands a verifier
// a task with another cannot steer that verifier's sample.
func TestTaskWithAnotherBeaconThanPublishedIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newFakeCoordinator(t, p2p.WithPubSub())
	cn := c.n
	if _, err := cn.Join(wire.AuditsTopic, wire.TypeAuditTask); err != nil {
		t.Fatal(err)
	}
	vn, err := p2p.New(ctx, p2p.WithAllow(cn.ID()), p2p.WithPubSub())
	if err != nil {
		t.Fatal(err)
	}
	defer vn.Close()
	rec := newRecorder()
	d, err := Start(ctx, vn, Config{Coordinator: cn.Addrs()[0], Logger: rec.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for deadline := time.Now().Add(5 * time.Second); len(cn.PubSub.ListPeers(wire.AuditsTopic)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the verifier never joined the audits topic")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	s.Steps = 4
	js, _ := s.JSON()
	id, _ := s.ID()
	published := &wire.AuditTask{Solver: vn.ID(), TraceRoot: [32]byte{1}, Beacon: []byte("published beacon"), SpecJSON: js}
	if err := cn.Publish(ctx, wire.AuditsTopic, id, published); err != nil {
		t.Fatal(err)
	}
	if ev := rec.wait(t, "saw the audit open", 5*time.Second); ev.attrs["job"] != id.String()[:12] {
		t.Fatalf("event %+v", ev)
	}
	other := *published
	other.Beacon = []byte("another beacon")
	_, err = cn.Request(ctx, vn.ID(), wire.AuditProtocol, id, &other, wire.TypeAck)
	if err == nil || !strings.Contains(err.Error(), "not the one published") {
		t.Fatalf("a task with another beacon than the published one: %v", err)
	}
	rec.wait(t, "refused an audit: its beacon is not the published one", time.Second)
}

// TestPruneKeepsTheNewestReplicaOfLiveJobsOnly: older replicas of a job go
// when a newer one lands, and every replica of a job silent for longer
// than ReplicaTTL goes; their chunks are collected.
func TestPruneKeepsTheNewestReplicaOfLiveJobsOnly(t *testing.T) {
	ctx := context.Background()
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	d := newDaemon(nil, Config{ReplicaTTL: time.Hour}, "")
	put := func(job spec.JobID, step int64) {
		st := s.Init()
		st.Step = step
		st.Layer(0, spec.TensorWeight)[0] = int32(step) + int32(job[0])
		if _, err := d.replicas.PutCheckpoint(ctx, job, st); err != nil {
			t.Fatal(err)
		}
	}
	live, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	gone := spec.JobID{2}
	put(gone, 10)
	d.replicaSeen[gone] = time.Now().Add(-2 * time.Hour)
	put(live, 10)
	put(live, 20)
	before, _ := d.replicas.Stats(ctx)
	if err := d.prune(ctx, live); err != nil {
		t.Fatal(err)
	}
	if steps, _ := d.replicas.ListCheckpoints(ctx, live); len(steps) != 1 || steps[0] != 20 {
		t.Fatalf("live job keeps %v, want [20]", steps)
	}
	if steps, _ := d.replicas.ListCheckpoints(ctx, gone); len(steps) != 0 {
		t.Fatalf("silent job keeps %v", steps)
	}
	after, _ := d.replicas.Stats(ctx)
	if after.Manifests != 1 || after.Chunks >= before.Chunks {
		t.Fatalf("stats before %+v, after %+v", before, after)
	}
	if _, err := d.replicas.GetCheckpoint(ctx, s, live, 20); err != nil {
		t.Fatalf("the kept replica no longer opens: %v", err)
	}
}
