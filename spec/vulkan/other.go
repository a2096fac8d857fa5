//go:build !(((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64)) || novulkan

package vulkan

import (
	"fmt"
	"runtime"
	"time"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

var errPlatform = fmt.Errorf("%w: the Vulkan backend is not built for %s/%s", ErrNoDevice, runtime.GOOS, runtime.GOARCH)

// Devices lists the Vulkan devices: none on this platform.
func Devices() ([]DeviceInfo, error) { return nil, errPlatform }

// DeviceOption narrows which device Open picks.
type DeviceOption func()

// WithDeviceIndex picks the device at index i of Devices().
func WithDeviceIndex(i int) DeviceOption { return func() {} }

// GPUOnly refuses devices that are not a GPU.
func GPUOnly() DeviceOption { return func() {} }

// WithIntegerDot forces the integer dot-product path on or off.
func WithIntegerDot(on bool) DeviceOption { return func() {} }

// Device is an open Vulkan device: never on this platform.
type Device struct{}

// Open returns an error wrapping ErrNoDevice on this platform.
func Open(opts ...DeviceOption) (*Device, error) { return nil, errPlatform }

// Info describes the device.
func (d *Device) Info() DeviceInfo { return DeviceInfo{} }

// Close releases the device.
func (d *Device) Close() error { return nil }

// LastSubmit returns when the device last finished work: never.
func (d *Device) LastSubmit() time.Time { return time.Time{} }

// Option configures a Trainer.
type Option func()

// WithDevice trains on d.
func WithDevice(d *Device) Option { return func() {} }

// WithData keeps the training set on the device.
func WithData(ds *dataset.Dataset) Option { return func() {} }

// WithDeviceOptions passes opts to Open.
func WithDeviceOptions(opts ...DeviceOption) Option { return func() {} }

// Trainer is the Vulkan MLP trainer: unavailable on this platform.
type Trainer struct{ st *spec.State }

// New returns an error wrapping ErrNoDevice on this platform.
func New(s *spec.Spec, st *spec.State, opts ...Option) (*Trainer, error) { return nil, errPlatform }

// Device describes the trainer's device.
func (t *Trainer) Device() DeviceInfo { return DeviceInfo{} }

// State returns the state.
func (t *Trainer) State() *spec.State { return t.st }

// Sync fails on this platform.
func (t *Trainer) Sync() error { return errPlatform }

// Steps returns the state's step count.
func (t *Trainer) Steps() int64 { return t.st.Step }

// Step fails on this platform.
func (t *Trainer) Step(x [][]uint8, y []uint8) (int64, error) { return 0, errPlatform }

// Resident reports whether the training set is on the device: never.
func (t *Trainer) Resident() bool { return false }

// IntegerDot reports whether the products run on integer dot products:
// never.
func (t *Trainer) IntegerDot() bool { return false }

// StepIndices fails on this platform.
func (t *Trainer) StepIndices(idx []int) (int64, error) { return 0, errPlatform }

// Predict fails on this platform.
func (t *Trainer) Predict(x [][]uint8, out []int) error { return errPlatform }

// Close does nothing.
func (t *Trainer) Close() error { return nil }
