//go:build !(((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64)) || novulkan

package vulkan

import "github.com/beluga-compute/beluga/spec/gpt"

// GPTTrainer runs training steps of one GPT job on a Vulkan device; on
// this platform there is none.
type GPTTrainer struct{ st *gpt.State }

// NewGPT returns ErrNoDevice on this platform.
func NewGPT(c gpt.Config, st *gpt.State, opts ...Option) (*GPTTrainer, error) {
	return nil, errPlatform
}

// Device returns the zero DeviceInfo.
func (t *GPTTrainer) Device() DeviceInfo { return DeviceInfo{} }

// Config returns the zero configuration.
func (t *GPTTrainer) Config() gpt.Config { return gpt.Config{} }

// IntegerDot reports whether the products run on integer dot products:
// never.
func (t *GPTTrainer) IntegerDot() bool { return false }

// State returns the state.
func (t *GPTTrainer) State() *gpt.State { return t.st }

// Sync returns ErrNoDevice.
func (t *GPTTrainer) Sync() error { return errPlatform }

// Steps returns the state's step count.
func (t *GPTTrainer) Steps() int64 { return t.st.Step }

// Step returns ErrNoDevice.
func (t *GPTTrainer) Step(b gpt.Batch) (gpt.StepResult, error) { return gpt.StepResult{}, errPlatform }

// Loss returns ErrNoDevice.
func (t *GPTTrainer) Loss(b gpt.Batch, windows int) (int64, error) { return 0, errPlatform }

// Close does nothing.
func (t *GPTTrainer) Close() error { return nil }
