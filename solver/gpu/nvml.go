//go:build cgo && linux

package gpu

import (
	"fmt"
	"os"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// lib is the NVML entry point; tests substitute go-nvml's mocks.
var lib nvml.Interface = nvml.New()

func detect() *Probe { return detectWith(lib) }

func detectWith(l nvml.Interface) *Probe {
	if ret := l.Init(); ret != nvml.SUCCESS {
		return &Probe{Reason: fmt.Sprintf("no NVIDIA driver found (NVML: %s)", l.ErrorString(ret))}
	}
	// From here NVML is initialised; it stays so for Sample.
	p := &Probe{}
	if v, ret := l.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		p.Driver = v
	}
	n, ret := l.DeviceGetCount()
	if ret != nvml.SUCCESS {
		p.Reason = "NVML: " + l.ErrorString(ret)
		return p
	}
	var handles []nvml.Device
	for i := range n {
		d, ret := l.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			continue
		}
		dev := Device{Index: i}
		if name, ret := d.GetName(); ret == nvml.SUCCESS {
			dev.Name = name
		}
		if m, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
			dev.MemoryBytes = m.Total
		}
		p.Devices = append(p.Devices, dev)
		handles = append(handles, d)
	}
	if len(p.Devices) == 0 {
		p.Reason = "no NVIDIA GPU found"
	}
	self := uint32(os.Getpid())
	p.sample = func(i int) (Sample, error) {
		d := handles[i]
		var s Sample
		u, ret := d.GetUtilizationRates()
		if ret != nvml.SUCCESS {
			return s, fmt.Errorf("gpu %d: utilization: %s", i, l.ErrorString(ret))
		}
		s.UtilizationPct = u.Gpu
		for _, get := range []func() ([]nvml.ProcessInfo, nvml.Return){d.GetComputeRunningProcesses, d.GetGraphicsRunningProcesses} {
			ps, ret := get()
			if ret != nvml.SUCCESS {
				continue
			}
			for _, pi := range ps {
				if pi.Pid != self {
					s.ForeignPIDs = append(s.ForeignPIDs, pi.Pid)
				}
			}
		}
		return s, nil
	}
	return p
}
