// Package dataset holds the labelled samples that deterministic integer
// training reads, and commits to them so that a verifier can check any one
// sample against a single root.
//
// A Dataset is N samples of D uint8 features (one contiguous row-major
// buffer of N·D bytes) with one uint8 label each, below the class count C.
// Datasets come from three places:
//
//   - IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed:
//     ReadIDX, LoadIDXPair, LoadFashionMNIST;
//   - Synthetic, a generator that uses only integer arithmetic on
//     spec/prng streams, so any implementation reproduces it bit for bit;
//   - New, for samples built elsewhere.
//
// # Guarantees
//
// Every *Dataset this package returns has passed Validate: sizes agree and
// every label is below C. Nothing here uses non-integer arithmetic, so the
// same inputs give the same bytes on every platform.
//
// ReadIDX checks the header against Limits before it allocates, and grows its
// buffer only as data actually arrives, so a hostile header cannot make it
// allocate more than the input justifies (at most twice what was read, and
// never more than Limits.MaxElements).
//
// # Soundness
//
// Commit builds a Merkle tree tagged "beluga/samples/v1" over the samples,
// leaf i hashing le32(i) || label || features. A proof for sample i checks
// its features, its label and its position: see SampleLeaf for why the index
// is inside the leaf as well as in the proof.
//
// Commit streams: it hashes the leaves a chunk at a time and folds them
// into the tree as they come, holding one hash per tree level beside the
// samples, and Synthetic commits to its samples while generating them. So
// checking a dataset against a commitment costs the samples' own memory
// and no more, which is what spec.MaxDatasetBytes bounds.
//
// # Text
//
// A Text is a byte corpus for byte-level language models (at most
// MaxTextBytes, 256 MiB), such as the "fortunes" corpus (LoadFortunes). It
// commits to a Merkle tree tagged "beluga/text/v1" whose leaf i hashes
// le32(i) || chunk i, the chunks being 4096 bytes (the last may be shorter);
// the dataset is named by (root, byte count). NewTextSplit keeps the last
// bytes for validation; TrainWindows draws each step's windows of T+1 bytes
// from spec/prng, ValWindows tiles the validation bytes; a TextWindowProof
// carries the whole chunks under a window, so VerifyWindow checks any window
// against the root and the byte count alone.
package dataset
