package gptref

import (
	"math"

	"github.com/beluga-compute/beluga/spec/fixed"
	"github.com/beluga-compute/beluga/spec/gpt"
)

// The forward operators of SPEC.md §20.10–§20.12. Each run function reads
// its inputs in the order of its Op.Inputs (already checked against their
// shapes and ranges) and returns its outputs in the order of Op.Outputs.

// quantizeWeights: §20.10, (Pq, e_P) = Norm(P, −24, b).
func (m *dims) quantizeWeights(_ int64, in [][]int64, _ *arith) [][]int64 {
	q, e := quantize(in[0], -masterFrac, m.bits)
	return [][]int64{q, {e}}
}

// embed: §20.11.1, x[r][i] = Sat32(RoundShift(tok_emb[token_r][i] + pos_emb[j][i], 8)).
func (m *dims) embed(_ int64, in [][]int64, _ *arith) [][]int64 {
	tok, pos, tokens := in[0], in[1], in[2]
	x := make([]int64, m.n*m.d)
	for r := range m.n {
		v, j := int(tokens[r]), r%m.t
		for i := range m.d {
			x[r*m.d+i] = clampAt(siteEmbed, roundShift(tok[v*m.d+i]+pos[j*m.d+i], masterFrac-actFrac), math.MinInt32, math.MaxInt32)
		}
	}
	return [][]int64{x}
}

// rmsnorm: §20.11.2, row by row: y, ρ, s and (yq, e_y) = NormRow(y, −16, b).
func (m *dims) rmsnorm(_ int64, in [][]int64, _ *arith) [][]int64 {
	x, d := in[0], m.d
	y := make([]int64, m.n*d)
	rho, s, ey := make([]int64, m.n), make([]int64, m.n), make([]int64, m.n)
	xs := make([]int64, d)
	for r := range m.n {
		row := x[r*d : (r+1)*d]
		var top int64
		for _, v := range row {
			top = max(top, bitLen(v))
		}
		s[r] = max(0, top-rmsBits)
		var sum int64 // ≤ D·2^48
		for i, v := range row {
			xs[i] = roundShift(v, s[r])
			sum += xs[i] * xs[i]
		}
		rho[r] = isqrt(sum / int64(d))
		if rho[r] == 0 {
			continue // the whole row 0
		}
		for i := range d {
			y[r*d+i] = roundDiv(xs[i]<<actFrac, rho[r])
		}
	}
	for r := range ey {
		ey[r] = -actFrac
	}
	yq, eq := quantizeRows(y, d, ey, m.bits)
	return [][]int64{y, rho, s, yq, eq}
}

// matmulT is the product x·wᵀ of x [rows, k] and w [out, k] (both
// quantised operands, so every sum stays below 2^44).
func matmulT(x, w []int64, rows, k, out int) []int64 {
	y := make([]int64, rows*out)
	for r := range rows {
		xr := x[r*k : (r+1)*k]
		for o := range out {
			var acc int64
			for i, wv := range w[o*k : (o+1)*k] {
				acc += xr[i] * wv
			}
			y[r*out+o] = acc
		}
	}
	return y
}

// qkv: §20.11.3, Y = y1q·qkvqᵀ (row r at e1[r] + e_qkv), and NormRow of each
// column block [0, D), [D, 2D), [2D, 3D) of each row on its own.
func (m *dims) qkv(_ int64, in [][]int64, _ *arith) [][]int64 {
	yq, ey, wq, ew := in[0], in[1], in[2], in[3][0]
	d := m.d
	y := matmulT(yq, wq, m.n, d, 3*d)
	var res [3][]int64
	var exps [3][]int64
	for k := range 3 {
		res[k], exps[k] = make([]int64, m.n*d), make([]int64, m.n)
		for r := range m.n {
			q, e := quantize(y[r*3*d+k*d:r*3*d+(k+1)*d], ey[r]+ew, m.bits)
			copy(res[k][r*d:], q)
			exps[k][r] = e
		}
	}
	return [][]int64{res[0], res[1], res[2], exps[0], exps[1], exps[2]}
}

// attention: §20.11.3, per window b and head h: scores S, the causal
// integer softmax P (Q(b)), the value weights P' aligned to the largest
// value exponent seen, O = P'·V; then (Oq, eO) = NormRow(O) to b bits.
func (m *dims) attention(_ int64, in [][]int64, _ *arith) [][]int64 {
	q, k, v, eq, ek, ev := in[0], in[1], in[2], in[3], in[4], in[5]
	d, t, dh := m.d, m.t, m.dh
	p := make([]int64, m.batch*m.heads*t*t)
	o := make([]int64, m.n*d)
	eo := make([]int64, m.n)
	s := make([]int64, t)
	for b := range m.batch {
		for h := range m.heads {
			cols := h * dh
			for i := range t {
				ri := b*t + i
				ekMax, evMax := ek[b*t], ev[b*t]
				for j := range i + 1 {
					ekMax, evMax = max(ekMax, ek[b*t+j]), max(evMax, ev[b*t+j])
				}
				ei := eq[ri] + ekMax
				var top int64
				for j := range i + 1 {
					rj := b*t + j
					var acc int64
					for c := cols; c < cols+dh; c++ {
						acc += q[ri*d+c] * k[rj*d+c]
					}
					s[j] = roundShift(acc, ekMax-ek[rj])
					if j == 0 || s[j] > top {
						top = s[j]
					}
				}
				eps := make([]int64, i+1)
				var sum int64
				for j := range i + 1 {
					u := capAt(shiftRound((top-s[j])*m.kappa, ei))
					eps[j] = fixed.Exp2NegQ15(u)
					sum += eps[j]
				}
				row := p[((b*m.heads+h)*t+i)*t:]
				for j := range i + 1 {
					row[j] = (eps[j]<<m.bits + sum/2) / sum
				}
				for j := range i + 1 {
					pj := roundShift(row[j], evMax-ev[b*t+j])
					for c := cols; c < cols+dh; c++ {
						o[ri*d+c] += pj * v[(b*t+j)*d+c]
					}
				}
				eo[ri] = -int64(m.bits) + evMax // the same for every head
			}
		}
	}
	oq, eoq := quantizeRows(o, d, eo, m.bits)
	return [][]int64{p, oq, eoq}
}

// residual: §20.11.3, the out (or down) product a = aq·Wqᵀ added to the
// residual stream: x[r] = Sat32(x[r] + ShiftRound(a[r], e_a[r] + e_W + 16)).
func (m *dims) residual(_ int64, in [][]int64, _ *arith) [][]int64 {
	aq, ea, wq, ew, x := in[0], in[1], in[2], in[3][0], in[4]
	k := len(aq) / m.n
	a := matmulT(aq, wq, m.n, k, m.d)
	res := make([]int64, m.n*m.d)
	for r := range m.n {
		for i := range m.d {
			// |x| < 2^31, so clamping the addend to ±2^33 first leaves
			// the saturated sum unchanged and keeps it inside int64.
			add := fixed.Clamp(shiftRound(a[r*m.d+i], ea[r]+ew+actFrac), -1<<33, 1<<33)
			res[r*m.d+i] = clampAt(siteResidual, x[r*m.d+i]+add, math.MinInt32, math.MaxInt32)
		}
	}
	return [][]int64{res}
}

// up: §20.11.3, Z = y2q·upqᵀ and u[r] = Sat32(ShiftRound(Z[r], e2[r] + e_up + 16)).
func (m *dims) up(_ int64, in [][]int64, _ *arith) [][]int64 {
	yq, ey, wq, ew := in[0], in[1], in[2], in[3][0]
	z := matmulT(yq, wq, m.n, m.d, m.f)
	for r := range m.n {
		for i := range m.f {
			z[r*m.f+i] = clampAt(siteUp, shiftRound(z[r*m.f+i], ey[r]+ew+actFrac), math.MinInt32, math.MaxInt32)
		}
	}
	return [][]int64{z}
}

// silu: §20.11.3, h = RoundShift(u·σ(u), 15), (hq, eh) = NormRow(h, −16, b).
func (m *dims) silu(_ int64, in [][]int64, _ *arith) [][]int64 {
	u := in[0]
	h := make([]int64, len(u))
	for i, v := range u {
		h[i] = roundShift(v*sigma(v), 15)
	}
	e := make([]int64, m.n)
	for r := range e {
		e[r] = -actFrac
	}
	hq, eh := quantizeRows(h, m.f, e, m.bits)
	return [][]int64{hq, eh}
}

// head: §20.11.4, z = y3q·headqᵀ, row r at e3[r] + e_head.
func (m *dims) head(_ int64, in [][]int64, _ *arith) [][]int64 {
	yq, ey, wq, ew := in[0], in[1], in[2], in[3][0]
	z := matmulT(yq, wq, m.n, m.d, gpt.Vocab)
	ez := make([]int64, m.n)
	for r := range ez {
		ez[r] = ey[r] + ew
	}
	return [][]int64{z, ez}
}

// loss: §20.12, per row the softmax gradient g (exponent −15) and loss_r in
// Q16 nats; the step's loss is Σ_r loss_r.
func (m *dims) loss(_ int64, in [][]int64, ar *arith) [][]int64 {
	z, ez, targets := in[0], in[1], in[2]
	const v = gpt.Vocab
	g := make([]int64, m.n*v)
	var total int64
	eps := make([]int64, v)
	for r := range m.n {
		row := z[r*v : (r+1)*v]
		top := row[0]
		for _, x := range row {
			top = max(top, x)
		}
		var sum int64
		for c, x := range row {
			u := capAt(shiftRound((top-x)*log2e, ez[r]))
			eps[c] = fixed.Exp2NegQ15(u)
			sum += eps[c]
		}
		y := int(targets[r])
		for c := range v {
			p := (eps[c]<<probBits + sum/2) / sum
			if c == y {
				p -= 1 << probBits
			}
			g[r*v+c] = p
		}
		lr := ar.add(roundShift(ln2*(fixed.Log2Q16(uint64(sum))-probBits<<16), 16), shiftRound(top-row[y], ez[r]+16))
		total = ar.add(total, lr)
	}
	return [][]int64{g, {-probBits}, {total}}
}
