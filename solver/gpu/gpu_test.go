package gpu

import (
	"strings"
	"testing"
)

// TestDetectWithoutDriver: on a machine without an NVIDIA driver (this
// one), Detect says so and falls back to the CPU; it must not crash.
func TestDetectWithoutDriver(t *testing.T) {
	p := Detect()
	if len(p.Devices) > 0 {
		t.Skipf("this machine has GPUs: %s", p.Describe())
	}
	if p.Reason == "" || !strings.Contains(p.Describe(), "cpu") {
		t.Fatalf("no reason or no CPU fallback: %q", p.Describe())
	}
	if _, err := p.Sample(0); err == nil {
		t.Fatal("sampling a missing device succeeded")
	}
	t.Log(p.Describe())
}
