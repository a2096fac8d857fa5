//go:build !(cgo && linux)

package gpu

func detect() *Probe {
	return &Probe{Reason: "this build has no NVIDIA support (NVML needs cgo on Linux)"}
}
