//go:build ((linux && !android) || (darwin && !ios)) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/ebitengine/purego"
)

// loaderNames are the Vulkan loaders tried in order: $BELUGA_VULKAN_LIB
// first when set, then the platform's loader (on macOS the LunarG loader,
// then MoltenVK itself, which also exports the API).
func loaderNames() []string {
	var names []string
	if p := os.Getenv("BELUGA_VULKAN_LIB"); p != "" {
		names = append(names, p)
	}
	if runtime.GOOS == "darwin" {
		return append(names, "libvulkan.1.dylib", "/usr/local/lib/libvulkan.1.dylib", "/opt/homebrew/lib/libvulkan.1.dylib",
			"libMoltenVK.dylib", "/usr/local/lib/libMoltenVK.dylib", "/opt/homebrew/lib/libMoltenVK.dylib")
	}
	return append(names, "libvulkan.so.1", "libvulkan.so")
}

// openLoader opens the first loader that exists and returns its
// vkGetInstanceProcAddr.
func openLoader() (lib, gipa uintptr, err error) {
	var tried []string
	for _, name := range loaderNames() {
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			tried = append(tried, err.Error())
			continue
		}
		sym, err := purego.Dlsym(h, "vkGetInstanceProcAddr")
		if err != nil || sym == 0 {
			tried = append(tried, fmt.Sprintf("%s: no vkGetInstanceProcAddr", name))
			continue
		}
		return h, sym, nil
	}
	return 0, 0, fmt.Errorf("%w: no Vulkan loader (%s)", ErrNoDevice, strings.Join(tried, "; "))
}
