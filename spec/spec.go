// Package spec defines a Beluga training job: its specification, the
// canonical encoding whose hash is the job ID, and the layer plan that the
// reference step (spec/ref) and the fast engine (spec/engine) both execute.
//
// A spec has one of two forms. An MLP (versions 1 and 2) trains linear and
// relu layers on a labelled dataset with SGD and momentum; Plan, NewState,
// Init and NewSampler describe its step. A GPT (version 2 only, IsGPT)
// trains the byte-level transformer of spec/gpt on a text corpus with
// AdamW; GPT and TextSplit describe it, and the MLP helpers above treat it
// as a model without linear layers (an empty Plan and State).
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

// Spec versions. Version 1 has MLPs only; version 2 adds the GPT and reads
// an MLP exactly as version 1 does. Version stays 1: code that builds an
// MLP spec with it keeps its job IDs.
const (
	Version  = 1
	Version2 = 2
	// LatestVersion is the highest version this package reads.
	LatestVersion = Version2
)

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

// Layer operations. An MLP has linear and relu layers; a GPT (version 2)
// is an embedding, transformer blocks, an rmsnorm and a linear head.
// Anything else is rejected, so a later version can add conv2d and others
// without old solvers misreading it.
const (
	OpLinear      = "linear"
	OpReLU        = "relu"
	OpEmbedding   = "embedding"
	OpTransformer = "transformer"
	OpRMSNorm     = "rmsnorm"
	// OpLayerNorm is the final norm of a model of GPT-2 blocks (SPEC.md
	// §22), served, not trained.
	OpLayerNorm = "layernorm"
)

// Values of the fields that select GPT-2 blocks (SPEC.md §22): a
// transformer layer's norm and activation. Absent, a block is §20's
// (rmsnorm, silu); no other value is accepted.
const (
	NormLayerNorm  = "layernorm"
	ActivationGELU = "gelu"
)

// Losses: an MLP's softmax cross-entropy over classes, a GPT's
// next-token cross-entropy over bytes.
const (
	LossSoftmaxCrossEntropy   = "softmax_cross_entropy"
	LossNextTokenCrossEntropy = "next_token_cross_entropy"
)

// Layer is one operation. Fields that an op does not use must be zero.
type Layer struct {
	Op string `json:"op"`
	// Out is the output width of a linear layer.
	Out int `json:"out,omitempty"`
	// Vocab, Context and Dim are a GPT embedding's vocabulary (256: bytes),
	// context length T and model width d.
	Vocab   int `json:"vocab,omitempty"`
	Context int `json:"context,omitempty"`
	Dim     int `json:"dim,omitempty"`
	// Heads and FF are a transformer block's attention heads and the
	// hidden width of its MLP.
	Heads int `json:"heads,omitempty"`
	FF    int `json:"ff,omitempty"`
	// Norm, Activation and Bias make a transformer block GPT-2's (SPEC.md
	// §22): NormLayerNorm, ActivationGELU and true, all three or none.
	Norm       string `json:"norm,omitempty"`
	Activation string `json:"activation,omitempty"`
	Bias       bool   `json:"bias,omitempty"`
	// Tied makes a GPT's linear head the token embedding (SPEC.md §22).
	Tied bool `json:"tied,omitempty"`
}

// Numeric fixes the integer formats. A value with b magnitude bits and f
// fractional bits is an integer v with |v| ≤ 2^b - 1 meaning v / 2^f.
// Input features are bytes with 8 fractional bits (byte/256). An MLP sets
// every field but Bits; a GPT sets only Bits.
type Numeric struct {
	// Bits is a GPT's magnitude bits of every matrix-product operand
	// (gpt.Config.Bits); the GPT's other formats are fixed by spec/gpt.
	Bits int `json:"bits,omitempty"`

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

// Optimizer is SGD with momentum (an MLP's) or AdamW (a GPT's), with a
// piecewise-linear integer learning rate.
type Optimizer struct {
	Kind string `json:"kind"`
	// Momentum is μ = Num / 2^Shift (sgd_momentum only).
	Momentum Ratio `json:"momentum"`
	// Beta1, Beta2, WeightDecay and Eps are AdamW's constants (adamw
	// only); Eps is in the units of gpt.Config.Eps. The tags let
	// strictjson treat them as optional (omitempty) and encoding/json omit
	// them when zero (omitzero), so an MLP's JSON is as in version 1.
	Beta1       Ratio `json:"beta1,omitempty,omitzero"`
	Beta2       Ratio `json:"beta2,omitempty,omitzero"`
	Eps         int64 `json:"eps,omitempty"`
	WeightDecay Ratio `json:"weight_decay,omitempty,omitzero"`
	// LRShift: the learning rate at step t is LR(t) / 2^LRShift, applied to
	// the gradient summed (not averaged) over the batch.
	LRShift int       `json:"lr_shift"`
	LR      []LRPoint `json:"lr"`
}

// Optimizers: SGD with momentum trains an MLP, AdamW a GPT; no other
// pairing exists.
const (
	OptimizerSGDMomentum = "sgd_momentum"
	OptimizerAdamW       = "adamw"
)

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

// Data names the training and test sets by commitment: an MLP's labelled
// samples (Train, Test) or a GPT's text corpus (Text).
type Data struct {
	// Source tells a solver where to find bytes that match the commitments:
	// "synthetic" (regenerated from Synthetic), "fashion-mnist" (the IDX files
	// of Debian's dataset-fashion-mnist) or "idx" (IDX files given locally)
	// for an MLP; "fortunes" (Debian's fortunes corpus) or "text" (a file
	// given locally) for a GPT.
	Source    string         `json:"source"`
	Synthetic *SyntheticData `json:"synthetic,omitempty"`
	Train     DatasetRef     `json:"train"`
	Test      *DatasetRef    `json:"test,omitempty"`
	Text      *TextData      `json:"text,omitempty"`
}

// Data sources.
const (
	SourceSynthetic    = "synthetic"
	SourceFashionMNIST = "fashion-mnist"
	SourceIDX          = "idx"
	SourceFortunes     = "fortunes"
	SourceText         = "text"
)

// TextData is a GPT's corpus by commitment (spec/dataset, "Text data")
// and how it is split.
type TextData struct {
	// Root is the corpus' text commitment (dataset.Text.Root), 64
	// lower-case hex digits; Bytes is its size.
	Root  string `json:"root"`
	Bytes int    `json:"bytes"`
	// ValBytes are the last bytes of the corpus, held out for validation
	// (dataset.NewTextSplit).
	ValBytes int `json:"val_bytes"`
	// EvalWindows caps the validation windows evaluated
	// (dataset.ValWindows).
	EvalWindows int `json:"eval_windows"`
}

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
