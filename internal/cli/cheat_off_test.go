//go:build !belugacheat

package cli

// cheatBuild: this test binary is built without belugacheat.
const cheatBuild = false
