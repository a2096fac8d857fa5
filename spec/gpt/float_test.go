package gpt

import (
	"math"
)

// floatModel is the float64 function the integer model approximates
// (SPEC.md's architecture), for tests: its loss on a batch and, by
// central differences, gradients of single weights.
type floatModel struct {
	c Config
	w [][]float64 // parameters in Params order, real values
}

func newFloatModel(c Config, st *State) *floatModel {
	f := &floatModel{c: c, w: make([][]float64, len(st.W))}
	for i, w := range st.W {
		f.w[i] = make([]float64, len(w))
		for j, v := range w {
			f.w[i][j] = float64(v) / (1 << MasterFrac)
		}
	}
	return f
}

func rmsnormF(x []float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	r := math.Sqrt(ss / float64(len(x)))
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v / r
	}
	return y
}

// matvec returns W·x for W [rows, in].
func matvec(w []float64, rows, in int, x []float64) []float64 {
	y := make([]float64, rows)
	for o := range rows {
		var s float64
		for i := range in {
			s += w[o*in+i] * x[i]
		}
		y[o] = s
	}
	return y
}

// loss returns the mean cross-entropy (nats) and the logits [N, V].
func (f *floatModel) loss(tokens, targets []byte) (float64, [][]float64) {
	c := f.c
	T, d, H, dh := c.Context, c.Dim, c.Heads, c.HeadDim()
	var total float64
	var logits [][]float64
	for b := range c.Batch {
		x := make([][]float64, T)
		for i := range T {
			x[i] = make([]float64, d)
			tok := int(tokens[b*T+i])
			for k := range d {
				x[i][k] = f.w[0][tok*d+k] + f.w[1][i*d+k]
			}
		}
		for l := range c.Layers {
			q, kk, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
			for i := range T {
				qkv := matvec(f.w[pQKV(l)], 3*d, d, rmsnormF(x[i]))
				q[i], kk[i], v[i] = qkv[:d], qkv[d:2*d], qkv[2*d:]
			}
			o := make([][]float64, T)
			for i := range T {
				o[i] = make([]float64, d)
				for h := range H {
					s := make([]float64, i+1)
					m := math.Inf(-1)
					for j := 0; j <= i; j++ {
						var dot float64
						for k := range dh {
							dot += q[i][h*dh+k] * kk[j][h*dh+k]
						}
						s[j] = dot / math.Sqrt(float64(dh))
						m = math.Max(m, s[j])
					}
					var z float64
					for j := range s {
						s[j] = math.Exp(s[j] - m)
						z += s[j]
					}
					for j := range s {
						for k := range dh {
							o[i][h*dh+k] += s[j] / z * v[j][h*dh+k]
						}
					}
				}
			}
			for i := range T {
				a := matvec(f.w[pOut(l)], d, d, o[i])
				for k := range d {
					x[i][k] += a[k]
				}
				u := matvec(f.w[pUp(l)], c.FF, d, rmsnormF(x[i]))
				for k, uv := range u {
					u[k] = uv / (1 + math.Exp(-uv))
				}
				m := matvec(f.w[pDown(l)], d, c.FF, u)
				for k := range d {
					x[i][k] += m[k]
				}
			}
		}
		for i := range T {
			z := matvec(f.w[2+4*c.Layers], Vocab, d, rmsnormF(x[i]))
			logits = append(logits, z)
			m := math.Inf(-1)
			for _, v := range z {
				m = math.Max(m, v)
			}
			var s float64
			for _, v := range z {
				s += math.Exp(v - m)
			}
			total += math.Log(s) + m - z[targets[b*T+i]]
		}
	}
	return total / float64(c.Tokens()), logits
}

// grad returns the derivative of the mean loss by weight j of parameter p.
func (f *floatModel) grad(p, j int, tokens, targets []byte) float64 {
	const h = 1e-5
	old := f.w[p][j]
	f.w[p][j] = old + h
	lp, _ := f.loss(tokens, targets)
	f.w[p][j] = old - h
	lm, _ := f.loss(tokens, targets)
	f.w[p][j] = old
	return (lp - lm) / (2 * h)
}
