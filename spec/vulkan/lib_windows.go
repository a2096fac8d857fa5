//go:build windows && (amd64 || arm64) && !novulkan

package vulkan

import (
	"fmt"
	"os"
	"syscall"
)

// openLoader opens vulkan-1.dll (or $BELUGA_VULKAN_LIB) and returns its
// vkGetInstanceProcAddr.
func openLoader() (lib, gipa uintptr, err error) {
	name := "vulkan-1.dll"
	if p := os.Getenv("BELUGA_VULKAN_LIB"); p != "" {
		name = p
	}
	h, err := syscall.LoadLibrary(name)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: no Vulkan loader (%s: %v)", ErrNoDevice, name, err)
	}
	sym, err := syscall.GetProcAddress(h, "vkGetInstanceProcAddr")
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s has no vkGetInstanceProcAddr: %v", ErrNoDevice, name, err)
	}
	return uintptr(h), sym, nil
}
