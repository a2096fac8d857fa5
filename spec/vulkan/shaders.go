package vulkan

import "embed"

//go:generate sh shaders/gen.sh

// spirv holds the compiled shaders (shaders/*.spv, from shaders/*.comp by
// shaders/gen.sh); TestSPIRVCurrent fails when they are stale.
//
//go:embed shaders/*.spv
var spirv embed.FS

// shader returns the SPIR-V of the named shader.
func shader(name string) ([]byte, error) { return spirv.ReadFile("shaders/" + name + ".spv") }
