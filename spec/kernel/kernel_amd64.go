//go:build amd64 && !purego

package kernel

import "golang.org/x/sys/cpu"

//go:generate go run gen_asm.go -rows 6

// hasVNNI is read-only after package initialisation. x/sys/cpu reports the
// AVX-512 features only when the OS also saves the ZMM and mask registers.
var hasVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// splitRows is the row granularity Parallel splits on.
const splitRows = panelRows

func best() Kernel {
	if k := vnniKernel(); k != nil {
		return k
	}
	return Generic()
}

func vnniKernel() Kernel {
	if !hasVNNI {
		return nil
	}
	return vnni{}
}

// vnni is the AVX-512 VNNI kernel: VPDPWSSD multiplies 32 int16 pairs and
// adds them into 16 int32 lanes without saturation (wrapping, like Go).
type vnni struct{}

func (vnni) Name() string { return nameAVX512VNNI }

func (vnni) Gemm(c []int32, ldc int, a []int16, lda int, b *Packed, m int) {
	if !checkGemm(c, ldc, a, lda, b, m) {
		return
	}
	// Column panels of 64 outside, row blocks inside (in assembly): a
	// panel of B is reused by every row block while it is hot in cache.
	n, k2 := b.n, b.pairRows()
	full, tail := m/panelRows, m%panelRows
	for n0 := 0; n0 < n; n0 += panelCols {
		w := min(panelCols, n-n0)
		nb := (w + ColumnAlign - 1) / ColumnAlign
		mask := uint16(0xffff)
		if r := w % ColumnAlign; r != 0 {
			mask = uint16(1)<<r - 1
		}
		bp := &b.data[n0*2]
		if full > 0 {
			panel(panelRows, nb, &a[0], uintptr(lda)*2, bp, uintptr(b.stride)*4,
				&c[n0], uintptr(ldc)*4, k2, full, mask)
		}
		if tail > 0 {
			i := full * panelRows
			panel(tail, nb, &a[i*lda], uintptr(lda)*2, bp, uintptr(b.stride)*4,
				&c[i*ldc+n0], uintptr(ldc)*4, k2, 1, mask)
		}
	}
}
