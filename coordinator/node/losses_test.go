package node

import "testing"

// TestLossCurveThinned: the loss curve keeps every heartbeat's loss until
// it holds maxLosses points, then drops every other one, so it always
// spans the run from its first step to its newest; stale or lossless
// heartbeats add nothing.
func TestLossCurveThinned(t *testing.T) {
	t.Parallel()
	var j job
	j.noteLoss(1, 0) // no loss reported
	for step := int64(1); step <= 1000; step++ {
		j.noteLoss(step, 100_000-step)
		j.noteLoss(step, 5) // the same step again: not news
	}
	if n := len(j.losses); n == 0 || n > maxLosses {
		t.Fatalf("%d points kept", n)
	}
	if j.losses[0].Step != 1 || j.losses[len(j.losses)-1].Step != 1000 {
		t.Fatalf("curve spans steps %d..%d", j.losses[0].Step, j.losses[len(j.losses)-1].Step)
	}
	for i := 1; i < len(j.losses); i++ {
		if j.losses[i].Step <= j.losses[i-1].Step || j.losses[i].LossQ16 != 100_000-j.losses[i].Step {
			t.Fatalf("point %d: %+v after %+v", i, j.losses[i], j.losses[i-1])
		}
	}
}
