package gptref

import "github.com/beluga-compute/beluga/spec/gpt"

// The backward operators of SPEC.md §20.13. Gradients between operators
// carry one exponent per tensor ([1] tensors).

// productBackward: §20.13, a product y = xq·Wqᵀ given its output gradient
// (gq, eg) already normalised to b bits: the input rows aligned to
// E = max_r e_x[r], dW = gqᵀ·x' (exponent eg + E) and dx = gq·Wq (exponent
// eg + e_W).
func (m *dims) productBackward(gq []int64, eg int64, xq, ex, wq []int64, ew int64) [][]int64 {
	out := len(gq) / m.n
	k := len(xq) / m.n
	e := ex[0]
	for _, v := range ex {
		e = max(e, v)
	}
	x := make([]int64, len(xq))
	for r := range m.n {
		for i := range k {
			x[r*k+i] = roundShift(xq[r*k+i], e-ex[r])
		}
	}
	dw := make([]int64, out*k)
	for o := range out {
		for i := range k {
			var acc int64 // ≤ N·(2^b)² ≤ 2^44
			for r := range m.n {
				acc += gq[r*out+o] * x[r*k+i]
			}
			dw[o*k+i] = acc
		}
	}
	dx := make([]int64, m.n*k)
	for r := range m.n {
		for i := range k {
			var acc int64
			for o := range out {
				acc += gq[r*out+o] * wq[o*k+i]
			}
			dx[r*k+i] = acc
		}
	}
	return [][]int64{dw, {eg + e}, dx, {eg + ew}}
}

// linearBackward: (gq, e_g) = Norm(g, e, b), then productBackward.
// Inputs: g, g.exp, xq, xq.exp (per row), Wq, Wq.exp.
func (m *dims) linearBackward(_ int64, in [][]int64, _ *arith) [][]int64 {
	gq, eg := quantize(in[0], in[1][0], m.bits)
	return m.productBackward(gq, eg, in[2], in[3], in[4], in[5][0])
}

// qkvBackward: (gq, e_g) = NormParts of [dQ | dK | dV] to b bits, then the
// qkv product's productBackward. Inputs: dQ, dQ.exp, dK, dK.exp, dV,
// dV.exp, y1q, y1q.exp, qkvq, qkvq.exp.
func (m *dims) qkvBackward(_ int64, in [][]int64, _ *arith) [][]int64 {
	parts, eg := quantizeParts([]block{{in[0], in[1][0]}, {in[2], in[3][0]}, {in[4], in[5][0]}}, m.bits)
	d := m.d
	gq := make([]int64, m.n*3*d)
	for r := range m.n {
		for k := range 3 {
			copy(gq[r*3*d+k*d:r*3*d+(k+1)*d], parts[k][r*d:(r+1)*d])
		}
	}
	return m.productBackward(gq, eg, in[6], in[7], in[8], in[9][0])
}

// rmsnormBackward: §20.13, RMSNorm backward of the output gradient (d, e)
// with the forward's y, ρ and s. Inputs: d, d.exp, y, rho, s.
func (m *dims) rmsnormBackward(_ int64, in [][]int64, ar *arith) [][]int64 {
	q, e := quantize(in[0], in[1][0], gradBits)
	y, rho, s := in[2], in[3], in[4]
	d := m.d
	smin := s[0]
	for _, v := range s {
		smin = min(smin, v)
	}
	dx := make([]int64, m.n*d)
	for r := range m.n {
		if rho[r] == 0 {
			continue
		}
		var c int64 // |q| ≤ 2^24, |y| ≤ 2^24, D ≤ 2^12: ≤ 2^60
		for i := range d {
			c += q[r*d+i] * y[r*d+i]
		}
		cbar := roundDiv(c, int64(d)<<actFrac)
		for i := range d {
			t := ar.add(q[r*d+i], -roundShift(ar.mul(y[r*d+i], cbar), 16))
			dx[r*d+i] = roundDiv(ar.lsh(t, rmsBits-s[r]+smin), rho[r])
		}
	}
	return [][]int64{dx, {e - smin + actFrac - rmsBits}}
}

// add: §20.13, (dx, e_x) = Add((dx, e_x), (dn, e_n)) of §20.9.
func (m *dims) add(_ int64, in [][]int64, _ *arith) [][]int64 {
	v, e := addGrads(in[0], in[1][0], in[2], in[3][0])
	return [][]int64{v, {e}}
}

// siluBackward: §20.13, σ' = RoundShift(σ·(2^15 + RoundShift(u·(2^15 − σ), 16)), 15)
// and du = dh·σ' at exponent e_h − 15. Inputs: dh, dh.exp, u.
func (m *dims) siluBackward(_ int64, in [][]int64, ar *arith) [][]int64 {
	dh, u := in[0], in[2]
	du := make([]int64, len(dh))
	for i, x := range u {
		s := sigma(x)
		ds := roundShift(s*(1<<15+roundShift(x*(1<<15-s), 16)), 15)
		du[i] = ar.mul(dh[i], ds)
	}
	return [][]int64{du, {in[1][0] - 15}}
}

// attentionBackward: §20.13, per window and head dP, dV, δ and dS; dS
// quantised over the whole layer; then dQ and dK. Inputs: dO, dO.exp, P,
// Q, K, V, Q.exp, K.exp, V.exp (the last three per row).
func (m *dims) attentionBackward(_ int64, in [][]int64, ar *arith) [][]int64 {
	doq, eo := quantize(in[0], in[1][0], m.bits)
	p, q, k, v, eq, ek, ev := in[2], in[3], in[4], in[5], in[6], in[7], in[8]
	d, t, dh, b := m.d, m.t, m.dh, int64(m.bits)
	gmax := func(e []int64) int64 {
		x := e[0]
		for _, y := range e {
			x = max(x, y)
		}
		return x
	}
	eQ, eK, eV := gmax(eq), gmax(ek), gmax(ev)
	ds := make([]int64, len(p))
	dv := make([]int64, m.n*d)
	dp := make([]int64, t)
	for bw := range m.batch {
		for h := range m.heads {
			cols := h * dh
			for i := range t {
				ri := bw*t + i
				row := p[((bw*m.heads+h)*t+i)*t : ((bw*m.heads+h)*t+i+1)*t]
				for j := i + 1; j < t; j++ {
					if row[j] != 0 {
						ar.reject("attention weights above the diagonal are not 0 (the causal mask)")
					}
				}
				var delta int64
				for j := range i + 1 {
					rj := bw*t + j
					var acc int64 // ≤ Dh·(2^b)²
					for c := cols; c < cols+dh; c++ {
						acc += doq[ri*d+c] * v[rj*d+c]
					}
					dp[j] = roundShift(acc, eV-ev[rj])
					delta = ar.add(delta, row[j]*dp[j])
				}
				for j := range t {
					rj := bw*t + j
					for c := cols; c < cols+dh; c++ {
						dv[rj*d+c] += row[j] * doq[ri*d+c]
					}
				}
				srow := ds[((bw*m.heads+h)*t+i)*t:]
				for j := range i + 1 {
					x := ar.mul(row[j], ar.add(dp[j]<<b, -delta))
					srow[j] = ar.mul(roundShift(x, 16), m.iota)
				}
			}
		}
	}
	dsq, es := quantize(ds, eo+eV-2*b, m.bits)
	dq, dk := make([]int64, m.n*d), make([]int64, m.n*d)
	for bw := range m.batch {
		for h := range m.heads {
			cols := h * dh
			for i := range t {
				ri := bw*t + i
				srow := dsq[((bw*m.heads+h)*t+i)*t:]
				for j := range i + 1 {
					rj := bw*t + j
					sk, sq := roundShift(srow[j], eK-ek[rj]), roundShift(srow[j], eQ-eq[ri])
					for c := cols; c < cols+dh; c++ {
						dq[ri*d+c] += sk * k[rj*d+c]
						dk[rj*d+c] += sq * q[ri*d+c]
					}
				}
			}
		}
	}
	return [][]int64{dq, {es + eK}, dk, {es + eQ}, dv, {-b + eo}}
}

// embedBackward: §20.13.3, dtok_emb[v] = Σ_{token_r = v} dx[r] and
// dpos_emb[j] = Σ_b dx[bT + j], both at the residual gradient's exponent.
// Inputs: dx, dx.exp, tokens.
func (m *dims) embedBackward(_ int64, in [][]int64, ar *arith) [][]int64 {
	dx, e, tokens := in[0], in[1][0], in[2]
	d := m.d
	dtok, dpos := make([]int64, gpt.Vocab*d), make([]int64, m.t*d)
	for r := range m.n {
		v, j := int(tokens[r]), r%m.t
		for i := range d {
			dtok[v*d+i] = ar.add(dtok[v*d+i], dx[r*d+i])
			dpos[j*d+i] = ar.add(dpos[j*d+i], dx[r*d+i])
		}
	}
	return [][]int64{dtok, {e}, dpos, {e}}
}
