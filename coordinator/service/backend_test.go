package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
)

// TestStartRecordsBackend: starting a job records, with its solver's
// assignment, the backend the solver said it trains on; it is kept in the
// stored record, bounded and valid UTF-8 whatever the solver sent, and a
// second solver's assignment (a resumed job) gets its own.
func TestStartRecordsBackend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newMemService(t)
	fund(t, s)
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 2_000_000_000, Capacity: 1, TTL: time.Hour}))
	j := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, 7), MaxPriceNanoUSDPerCU: 3_000_000_000}))
	if j.State != lifecycle.Matched || j.Solvers[0].Backend != "" {
		t.Fatalf("matched job: %+v", j)
	}
	const vk = "vulkan (llvmpipe (LLVM 19.1.7, 256 bits))"
	if j = must(s.Start(ctx, j.ID, vk)); j.State != lifecycle.Running || j.Solvers[0].Backend != vk {
		t.Fatalf("started job: state %s, solvers %+v", j.State, j.Solvers)
	}
	if got := must(s.Job(ctx, mustJobID(j.ID))).Solvers[0].Backend; got != vk {
		t.Fatalf("stored record's backend %q, want %q", got, vk)
	}

	// A hostile hello: long and not UTF-8.
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 2_000_000_000, Capacity: 1, TTL: time.Hour}))
	j2 := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, 8), MaxPriceNanoUSDPerCU: 3_000_000_000}))
	if j2.State != lifecycle.Matched {
		t.Fatalf("second job %s", j2.State)
	}
	j2 = must(s.Start(ctx, j2.ID, "\xff"+strings.Repeat("é", 400)))
	if b := j2.Solvers[0].Backend; len(b) > MaxBackendBytes || !utf8.ValidString(b) || !strings.HasPrefix(b, "?é") {
		t.Fatalf("recorded backend of %d bytes, valid UTF-8 %v: %q", len(b), utf8.ValidString(b), b)
	}
}

// TestSetBackend: the current solver's heartbeat word replaces its
// hello's in its assignment; another party cannot set it.
func TestSetBackend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newMemService(t)
	fund(t, s)
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 2_000_000_000, Capacity: 1, TTL: time.Hour}))
	j := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, 9), MaxPriceNanoUSDPerCU: 3_000_000_000}))
	must(s.Start(ctx, j.ID, "vulkan (GPU)"))
	if err := s.SetBackend(ctx, j.ID, "gpu2", "cpu (avx2)"); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("another party set the backend: %v", err)
	}
	noErr(t, s.SetBackend(ctx, j.ID, "gpu1", "cpu (avx2)"))
	if b := must(s.Job(ctx, mustJobID(j.ID))).Solvers[0].Backend; b != "cpu (avx2)" {
		t.Fatalf("backend %q after SetBackend", b)
	}
}
