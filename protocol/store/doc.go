// Package store is the solver's content-addressed checkpoint store.
//
// A chunk is at most commit.ChunkBytes (64 KiB) of a tensor's canonical
// bytes, and its ID is its leaf hash in the "beluga/chunks/v1" tree of the
// state digest (SPEC.md §11): commit.ChunkTree.Leaf(chunk). So every stored
// chunk is a leaf of some committed state, and a chunk fetched from anyone
// is checked against its ID alone, or against a state digest with a Merkle
// proof. A checkpoint is a Manifest (job, step, per tensor its name, shape,
// length, chunk IDs and chunk root; the state root and state digest) plus
// its chunks. Checkpoints that share a tensor, or chunks within a tensor
// (zeroed momenta), share the chunks.
//
// Badger (embedded, on disk or in memory) is the implementation to use;
// Memory keeps everything in maps. Both embed the same verification and GC
// logic over a small internal backend, and both pass storetest.RunConformance.
//
// # Guarantees
//
//   - Get never returns bytes that do not hash to the ID asked for
//     (ErrCorrupt instead). GetCheckpoint returns a state only if every
//     chunk matches its ID and its length, the manifest's roots and digest
//     are consistent, and the state rebuilt from the chunks hashes (with
//     commit.Hasher, as SPEC.md §11 defines) to the manifest's digest.
//     Compare Manifest.Digest with a committed digest to trust a checkpoint
//     from elsewhere.
//   - GetCheckpoint accepts only a manifest whose tensors are exactly those
//     of s.NewState(), names and shapes, in order, for the spec's own job ID
//     and a step in [0, s.Steps]; it allocates nothing on the manifest's say
//     so. DecodeManifest checks every count against the limits (MaxTensors,
//     MaxRank, MaxChunks, ...) and against the bytes left before it
//     allocates, so its allocation is bounded by a small multiple of its
//     input; it rejects any encoding but the canonical one.
//   - PutCheckpoint validates the state before writing anything, writes
//     only chunks not already stored (and rewrites any whose stored bytes
//     have rotted), and commits the manifest after its chunks are durable,
//     in one transaction with a check that they are present. A crash leaves
//     either no manifest (and garbage chunks, which GC removes) or the
//     complete checkpoint. A different state at a step already stored is
//     ErrConflict: states are deterministic, and records are not edited.
//
// # Garbage collection
//
// GC is mark and sweep: it reads every manifest, collects the chunk IDs
// they reference, and deletes every other chunk; then it reclaims badger's
// value log (RunValueLogGC(0.5) until there is nothing to do). Reference
// counts were the alternative; they were not chosen because every
// checkpoint would then write one counter per chunk, the all-zero chunks of
// momenta would be counters that every concurrent writer conflicts on, and
// a count that drifts (a bug, a torn restore) would stay wrong forever,
// whereas a sweep recomputes the truth from the manifests each time. The
// manifests are small (32 bytes per 64 KiB chunk), so marking is cheap.
//
// A chunk referenced by a committed manifest is never deleted:
//
//   - GC holds a lock that writers (Put, and PutCheckpoint from its first
//     chunk to its manifest commit) take shared, so no manifest commits and
//     no chunk is written between the mark and the end of the sweep. Badger
//     lets one process open a directory, so the lock covers every writer.
//   - The mark state lives only in memory and deletes are individual
//     transactions, each removing only unreferenced chunks. A crash at any
//     point leaves manifests untouched and some garbage undeleted; the next
//     GC starts over from the manifests.
//   - A manifest that does not decode stops GC with ErrCorrupt before
//     anything is deleted, since its references are unknown; delete that
//     checkpoint to let GC run.
//
// Chunks stored with Put and not yet referenced by a manifest are garbage
// to GC.
package store
