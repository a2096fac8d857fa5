package idle

import (
	"fmt"

	"github.com/beluga-compute/beluga/solver/gpu"
)

// GPU samples a GPU: busy when a process other than the solver uses it, or
// when its utilization is above maxUtilPct while the solver is not
// running (ours reports whether the solver is using it now).
func GPU(p *gpu.Probe, device int, maxUtilPct uint32, ours func() bool) Sampler {
	return func() (Reading, error) {
		s, err := p.Sample(device)
		if err != nil {
			return Reading{}, err
		}
		if len(s.ForeignPIDs) > 0 {
			return Reading{Busy: true, Why: fmt.Sprintf("process %d is using GPU %d", s.ForeignPIDs[0], device)}, nil
		}
		if !ours() && s.UtilizationPct > maxUtilPct {
			return Reading{Busy: true, Why: fmt.Sprintf("GPU %d at %d%% utilization", device, s.UtilizationPct)}, nil
		}
		return Reading{}, nil
	}
}
