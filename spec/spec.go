// Package spec defines a Beluga training job: its specification, the
// canonical encoding whose hash is the job ID, and the layer plan that the
// reference step (spec/ref) and the fast engine (spec/engine) both execute.
//
// SPEC.md beside this file is normative; this package implements its
// sections "Job spec", "Canonical encoding and job ID" and "Validation".
//
// # Guarantees
//
// A Spec that passes Validate has every dimension, count and numeric format
// inside fixed bounds, and every integer accumulator of its training step
// provably fits in int32 (see Plan and SPEC.md §"Accumulator bounds"). Decode
// rejects unknown fields, trailing data and inputs over MaxSpecBytes before
// anything else is allocated.
package spec

// Version is the spec version this package implements.
const Version = 1

// Spec is a training job. The JSON form is what clients write; Canonical is
// what gets hashed into the job ID.
type Spec struct {
	Version   int       `json:"version"`
	Name      string    `json:"name"`
	Model     Model     `json:"model"`
	Numeric   Numeric   `json:"numeric"`
	Optimizer Optimizer `json:"optimizer"`
	Data      Data      `json:"data"`
	// Seed fixes weight initialisation and the batch order.
	Seed uint64 `json:"seed"`
	// Steps is the number of optimizer steps the job runs.
	Steps int64 `json:"steps"`
	// BatchSize is the number of samples per step.
	BatchSize int `json:"batch_size"`
	// CheckpointInterval is K: a full checkpoint is kept every K steps.
	CheckpointInterval int64 `json:"checkpoint_interval"`
	// DigestInterval is how often (in steps) the solver commits a state
	// digest; 1 commits after every step.
	DigestInterval int64 `json:"digest_interval"`
	Audit          Audit `json:"audit"`
}

// Model is a sequence of layers followed by a loss.
type Model struct {
	Layers []Layer `json:"layers"`
	Loss   string  `json:"loss"`
}

// Layer operations. Version 1 knows these; anything else is rejected, so a
// later version can add conv2d and others without old solvers misreading it.
const (
	OpLinear = "linear"
	OpReLU   = "relu"
)

// LossSoftmaxCrossEntropy is the only loss of version 1.
const LossSoftmaxCrossEntropy = "softmax_cross_entropy"

// Layer is one operation. Fields that an op does not use must be zero.
type Layer struct {
	Op string `json:"op"`
	// Out is the output width of a linear layer.
	Out int `json:"out,omitempty"`
}

// Numeric fixes the integer formats. A value with b magnitude bits and f
// fractional bits is an integer v with |v| ≤ 2^b - 1 meaning v / 2^f.
// Input features are bytes with 8 fractional bits (byte/256).
type Numeric struct {
	ActBits    int `json:"act_bits"`
	ActFrac    int `json:"act_frac"`
	WeightBits int `json:"weight_bits"`
	WeightFrac int `json:"weight_frac"`
	// MasterFrac is the fractional bits of the int32 master weights, biases
	// and momentum buffers that the optimizer updates.
	MasterFrac int `json:"master_frac"`
	// GradBits is the magnitude bits of every back-propagated gradient
	// tensor; each carries its own power-of-two exponent.
	GradBits  int `json:"grad_bits"`
	LogitBits int `json:"logit_bits"`
	LogitFrac int `json:"logit_frac"`
}

// InputFrac is the fractional bits of input features (bytes/256).
const InputFrac = 8

// Optimizer is SGD with momentum and a piecewise-linear integer learning rate.
type Optimizer struct {
	Kind string `json:"kind"`
	// Momentum is μ = Num / 2^Shift.
	Momentum Ratio `json:"momentum"`
	// LRShift: the learning rate at step t is LR(t) / 2^LRShift, applied to
	// the gradient summed (not averaged) over the batch.
	LRShift int       `json:"lr_shift"`
	LR      []LRPoint `json:"lr"`
}

// OptimizerSGDMomentum is the only optimizer of version 1.
const OptimizerSGDMomentum = "sgd_momentum"

// Ratio is Num / 2^Shift.
type Ratio struct {
	Num   int64 `json:"num"`
	Shift int   `json:"shift"`
}

// LRPoint is one knot of the learning-rate schedule.
type LRPoint struct {
	Step  int64 `json:"step"`
	Value int64 `json:"value"`
}

// Data names the training and test sets by commitment.
type Data struct {
	// Source tells a solver where to find bytes that match the commitments:
	// "synthetic" (regenerated from Synthetic), "fashion-mnist" (the IDX files
	// of Debian's dataset-fashion-mnist) or "idx" (IDX files given locally).
	Source    string         `json:"source"`
	Synthetic *SyntheticData `json:"synthetic,omitempty"`
	Train     DatasetRef     `json:"train"`
	Test      *DatasetRef    `json:"test,omitempty"`
}

// Data sources.
const (
	SourceSynthetic    = "synthetic"
	SourceFashionMNIST = "fashion-mnist"
	SourceIDX          = "idx"
)

// SyntheticData are the parameters of a generated dataset.
type SyntheticData struct {
	Seed  uint64 `json:"seed"`
	Train int    `json:"train"`
	Test  int    `json:"test"`
}

// DatasetRef is a dataset by commitment: the Merkle root over its samples.
type DatasetRef struct {
	Root     string `json:"root"`
	Count    int    `json:"count"`
	Features int    `json:"features"`
	Classes  int    `json:"classes"`
}

// Audit is the client's audit policy: how much cheating it tolerates
// undetected and with what confidence it must be caught.
type Audit struct {
	// CheatFractionPPM: cheating on at least this fraction of steps (parts
	// per million) must be caught...
	CheatFractionPPM int64 `json:"cheat_fraction_ppm"`
	// ConfidencePPM: ...with at least this probability.
	ConfidencePPM int64 `json:"confidence_ppm"`
	// Confidential jobs are audited by zk proofs instead of replays.
	Confidential bool `json:"confidential"`
}
