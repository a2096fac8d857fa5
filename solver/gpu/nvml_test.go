//go:build cgo && linux

package gpu

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

// TestDetectDGXA100 runs detection against go-nvml's mock of a DGX A100
// (eight A100s): the real NVML code path, without a GPU.
func TestDetectDGXA100(t *testing.T) {
	p := detectWith(dgxa100.New())
	if len(p.Devices) != 8 {
		t.Fatalf("%d devices: %s", len(p.Devices), p.Describe())
	}
	if p.Backend() != "nvidia" || p.Name() == "" || p.Devices[0].MemoryBytes == 0 {
		t.Fatalf("probe %+v", p)
	}
	t.Log(p.Describe())
}
