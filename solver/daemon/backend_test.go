package daemon

import (
	"testing"

	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model"
)

// TestTrainsOn: a heartbeat names where the job's runner trains in the
// hello's words when they agree, and says "cpu (<kernel>)" for a job that auto put
// on the CPU while the hello says vulkan.
func TestTrainsOn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		hello string
		b     model.Backend
		want  string
	}{
		{"vulkan (llvmpipe)", model.BackendVulkan, "vulkan (llvmpipe)"},
		{"vulkan (llvmpipe)", model.BackendCPU, "cpu (" + kernel.Best().Name() + ")"},
		{"cpu (avx2)", model.BackendCPU, "cpu (avx2)"},
		{"", model.BackendCPU, "cpu (" + kernel.Best().Name() + ")"},
	} {
		d := &Daemon{cfg: Config{Backend: c.hello}}
		if got := d.trainsOn(c.b); got != c.want {
			t.Errorf("hello %q, runner on %s: heartbeat says %q, want %q", c.hello, c.b, got, c.want)
		}
	}
}
