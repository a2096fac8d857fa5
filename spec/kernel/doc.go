// Package kernel multiplies int16 matrices exactly: C = A·B with int16
// inputs and int32 results, the inner loop of integer neural-network
// training. Generic is portable Go; on amd64 CPUs with AVX-512 VNNI, Best
// uses VPDPWSSD, which multiplies 32 int16 pairs and adds them into 16
// int32 lanes per instruction. Parallel splits a product across goroutines.
//
// # Semantics
//
// For m < M and n < N,
//
//	C[m][n] = Σ_{k<K} A[m][k] · B[k][n]
//
// computed in int32 two's-complement arithmetic: the result is the exact
// integer sum reduced modulo 2³², which is the exact sum whenever that fits
// in int32 (the caller's accumulator bounds guarantee it does). No kernel
// saturates, not even on (-32768)·(-32768) + (-32768)·(-32768) = 2³¹.
//
// A is row-major int16 with row stride lda ≥ K. The kernels read A in
// int32 pairs (A[m][2j], A[m][2j+1]), so for odd K the element just past
// each row, A[m][K], must exist; its value is ignored because it meets a
// zero row of B. C is row-major int32 with stride ldc ≥ N; Gemm overwrites
// columns [0, N) of its M rows and writes nothing else.
//
// # Packed layout
//
// B is passed as a Packed, filled by PackB (from B row-major) or
// PackBTransposed (from Bᵀ row-major, as for a weight matrix W with
// B = Wᵀ). With K2 = ceil(K/2) and Np = N rounded up to a multiple of 16
// (ColumnAlign),
//
//	data[(k/2)*Np*2 + n*2 + k%2] = B[k][n]
//
// so pair-row j holds, for each column n, the pair (B[2j][n], B[2j+1][n])
// that one VPDPWSSD lane multiplies with the pair of A above. Row K (for odd
// K) and columns N..Np-1 are zero. The vector kernel keeps 6 rows × 64
// columns of C in 24 ZMM registers and, per pair-row, loads 4 vectors of B
// and broadcasts one pair of A per row.
//
// # Determinism
//
// Every kernel, thread count and split gives bit-identical C. Each output
// is a sum of the same K products; integer addition modulo 2³² is
// associative and commutative, so the order and grouping in which a kernel
// adds them (VPDPWSSD lanes, partial sums for narrow panels, the scalar
// loop) cannot change the result, and Parallel assigns each output element
// to exactly one goroutine, so nothing is summed across threads. Nothing
// depends on floating point, rounding modes or uninitialised memory; the
// package has no mutable global state.
//
// The build tag purego removes the assembly, making Best the same as
// Generic; tests run both and compare them with a naive int64 product.
package kernel
