//go:build linux

package idle

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPU samples the machine's CPUs: busy when processes other than this one
// used more than maxPct of the CPU time since the previous sample
// (/proc/stat minus /proc/self/stat).
func CPU(maxPct float64) Sampler {
	var lastTotal, lastBusy, lastSelf uint64
	return func() (Reading, error) {
		total, busy, err := procStat()
		if err != nil {
			return Reading{}, err
		}
		self, err := selfTicks()
		if err != nil {
			return Reading{}, err
		}
		dt, db, ds := total-lastTotal, busy-lastBusy, self-lastSelf
		first := lastTotal == 0
		lastTotal, lastBusy, lastSelf = total, busy, self
		if first || dt == 0 {
			return Reading{}, nil
		}
		others := float64(int64(db)-int64(ds)) / float64(dt) * 100
		if others > maxPct {
			return Reading{Busy: true, Why: fmt.Sprintf("other processes use %.0f%% of the CPUs", others)}, nil
		}
		return Reading{}, nil
	}
}

func procStat() (total, busy uint64, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("idle: unexpected /proc/stat")
	}
	var v []uint64
	for _, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		v = append(v, n)
		total += n
	}
	idle := v[3]
	if len(v) > 4 {
		idle += v[4] // iowait
	}
	return total, total - idle, nil
}

// selfTicks is this process's user + system time in clock ticks.
func selfTicks() (uint64, error) {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may contain spaces).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("idle: unexpected /proc/self/stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("idle: unexpected /proc/self/stat")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("idle: unexpected /proc/self/stat")
	}
	return u + s, nil
}
