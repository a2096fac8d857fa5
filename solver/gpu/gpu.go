// Package gpu finds the solver's accelerators. With cgo on Linux it asks
// NVIDIA's driver through go-nvml (model, memory, driver version,
// utilization and the processes using each GPU); elsewhere, and on
// machines without an NVIDIA driver, it reports that and the solver uses
// its CPU backend. It never lets an NVML failure crash the solver: NVML
// is called only after a successful Init (calling it after a failed Init
// aborts the process).
package gpu

import (
	"fmt"
	"strings"

	"github.com/beluga-compute/beluga/spec/kernel"
)

// Device is one GPU.
type Device struct {
	Index       int
	Name        string
	MemoryBytes uint64
}

// Sample is one reading of a device's activity.
type Sample struct {
	UtilizationPct uint32
	// ForeignPIDs are processes on the GPU that are not this one.
	ForeignPIDs []uint32
}

// Probe is what Detect found.
type Probe struct {
	Devices []Device
	Driver  string
	// Reason says why no GPU is used (no driver, a build without NVML).
	Reason string
	sample func(i int) (Sample, error)
}

// Detect probes the machine once.
func Detect() *Probe { return detect() }

// Backend names the training backend the solver will use.
func (p *Probe) Backend() string {
	if len(p.Devices) > 0 {
		return "nvidia"
	}
	return "cpu (" + kernel.Best().Name() + ")"
}

// Name is the first GPU's model, or "".
func (p *Probe) Name() string {
	if len(p.Devices) > 0 {
		return p.Devices[0].Name
	}
	return ""
}

// Describe is a line for the solver's log.
func (p *Probe) Describe() string {
	if len(p.Devices) == 0 {
		return fmt.Sprintf("%s; %s backend", p.Reason, p.Backend())
	}
	var parts []string
	for _, d := range p.Devices {
		parts = append(parts, fmt.Sprintf("GPU %d: %s, %d GiB", d.Index, d.Name, d.MemoryBytes>>30))
	}
	return strings.Join(parts, "; ") + ", driver " + p.Driver
}

// Sample reads device i's utilization and foreign processes.
func (p *Probe) Sample(i int) (Sample, error) {
	if p.sample == nil || i < 0 || i >= len(p.Devices) {
		return Sample{}, fmt.Errorf("gpu: no device %d", i)
	}
	return p.sample(i)
}
