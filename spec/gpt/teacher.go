package gpt

import "fmt"

// Positions runs ONE forward pass (SPEC.md §20.11) over text as one
// window at positions 0, 1, … (1 ≤ len(text) ≤ Context) and calls fn with
// the logits and exponent of each position r = from … len(text)−1, in
// order, stopping at fn's first error. Because the forward pass is causal,
// the logits at r are exactly those Logits(text[:r+1]) returns, so one
// call checks every byte a generation appended (a teacher-forced pass).
// fn must not keep z past its return.
func (g *Generator) Positions(text []byte, from int, fn func(r int, z []int64, e int) error) error {
	T := g.c.Context
	if len(text) < 1 || len(text) > T {
		return fmt.Errorf("%w: text of %d bytes, want 1 to %d", ErrConfig, len(text), T)
	}
	if from < 0 || from >= len(text) {
		return fmt.Errorf("%w: first position %d outside the text's %d bytes", ErrConfig, from, len(text))
	}
	window := make([]byte, T)
	copy(window, text)
	g.tr.forward(window)
	for r := from; r < len(text); r++ {
		if err := fn(r, g.tr.logits[r*Vocab:(r+1)*Vocab], g.tr.logitsE(r)); err != nil {
			return err
		}
	}
	return nil
}

// Config returns the model's configuration (Batch 1).
func (g *Generator) Config() Config { return g.c }
