package vulkan

import "errors"

// ErrNoDevice: no Vulkan loader, or no device that can run the backend
// (compute queue, shaderInt64, enough memory), on this machine.
var ErrNoDevice = errors.New("vulkan: no usable Vulkan device")

// ErrUnsupported: the job is one this backend does not train (a GPT), or
// needs more than the device's limits allow.
var ErrUnsupported = errors.New("vulkan: not supported")

// ErrClosed: the trainer or device was closed.
var ErrClosed = errors.New("vulkan: closed")
