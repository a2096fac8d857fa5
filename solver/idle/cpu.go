package idle

import (
	"fmt"
	"os"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/process"
)

// CPUTimes is one reading of CPU time, in seconds summed over every CPU:
// the whole machine's (Total and the part spent working, Busy) and this
// process's own (Self).
type CPUTimes struct {
	Total, Busy, Self float64
}

// ReadCPU reads the machine's and this process's CPU times with gopsutil
// (Linux /proc, macOS host_statistics and proc_pidinfo, Windows
// GetSystemTimes and GetProcessTimes).
func ReadCPU() (CPUTimes, error) {
	ts, err := cpu.Times(false)
	if err != nil {
		return CPUTimes{}, fmt.Errorf("read the machine's CPU times: %w", err)
	}
	if len(ts) == 0 {
		return CPUTimes{}, fmt.Errorf("read the machine's CPU times: none reported")
	}
	t := ts[0]
	total := t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		return CPUTimes{}, fmt.Errorf("read this process's CPU time: %w", err)
	}
	self, err := p.Times()
	if err != nil {
		return CPUTimes{}, fmt.Errorf("read this process's CPU time: %w", err)
	}
	return CPUTimes{Total: total, Busy: total - t.Idle - t.Iowait, Self: self.User + self.System}, nil
}

// CPU samples the machine's CPUs on Linux, macOS and Windows: busy when
// processes other than this one used more than maxPct of the CPU time
// since the previous sample.
func CPU(maxPct float64) Sampler { return CPUFrom(ReadCPU, maxPct) }

// CPUFrom is CPU over another reader of CPU times (tests inject one). The
// first sample only records the times and reads idle.
func CPUFrom(read func() (CPUTimes, error), maxPct float64) Sampler {
	var last CPUTimes
	first := true
	return func() (Reading, error) {
		now, err := read()
		if err != nil {
			return Reading{}, err
		}
		dt, db, ds := now.Total-last.Total, now.Busy-last.Busy, now.Self-last.Self
		was := first
		first, last = false, now
		if was || dt <= 0 {
			return Reading{}, nil
		}
		others := max(db-ds, 0) / dt * 100
		if others > maxPct {
			return Reading{Busy: true, Why: fmt.Sprintf("other processes use %.0f%% of the CPUs", others)}, nil
		}
		return Reading{}, nil
	}
}
