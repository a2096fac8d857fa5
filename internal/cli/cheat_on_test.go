//go:build belugacheat

package cli

// cheatBuild: this test binary is built with belugacheat.
const cheatBuild = true
