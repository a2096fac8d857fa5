package model

import "github.com/beluga-compute/beluga/spec/catalog"

// ErrDataMismatch: the bytes found do not match the spec's commitment. It
// is catalog.ErrDataMismatch, so either name matches with errors.Is.
var ErrDataMismatch = catalog.ErrDataMismatch
