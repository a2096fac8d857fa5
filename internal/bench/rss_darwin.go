package bench

import (
	"os"
	"syscall"
)

// maxRSSMiB is a finished process's peak resident memory (macOS reports
// ru_maxrss in bytes).
func maxRSSMiB(ps *os.ProcessState) float64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return float64(ru.Maxrss) / (1 << 20)
}
