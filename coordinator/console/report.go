package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/protocol/core/report"
)

// chart is a loss curve drawn as an inline SVG polyline.
type chart struct {
	W, H           int
	Points         string
	MinLoss        string
	MaxLoss        string
	Steps          int64
	LastStep       int64
	LastLoss       string
	N              int
	XLast, YLast   string
	Left, Right    int
	Top, Bottom    int
	Summary        string
	FirstLossLabel string
}

// lossChart draws losses over [0, steps]; nil without points.
func lossChart(ls []api.LossPoint, steps int64) *chart {
	if len(ls) == 0 || steps <= 0 {
		return nil
	}
	c := &chart{W: 640, H: 220, Left: 56, Right: 12, Top: 12, Bottom: 28, Steps: steps, N: len(ls)}
	lo, hi := ls[0].Loss, ls[0].Loss
	for _, p := range ls {
		lo, hi = min(lo, p.Loss), max(hi, p.Loss)
	}
	if hi-lo < 1e-9 {
		hi, lo = hi+0.5, max(0, lo-0.5)
	}
	pw, ph := float64(c.W-c.Left-c.Right), float64(c.H-c.Top-c.Bottom)
	var b strings.Builder
	var x, y float64
	for i, p := range ls {
		x = float64(c.Left) + float64(p.Step)/float64(steps)*pw
		y = float64(c.Top) + (hi-p.Loss)/(hi-lo)*ph
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64))
	}
	last := ls[len(ls)-1]
	c.Points, c.XLast, c.YLast = b.String(), strconv.FormatFloat(x, 'f', 1, 64), strconv.FormatFloat(y, 'f', 1, 64)
	c.MinLoss, c.MaxLoss = strconv.FormatFloat(lo, 'f', 3, 64), strconv.FormatFloat(hi, 'f', 3, 64)
	c.LastStep, c.LastLoss = last.Step, strconv.FormatFloat(last.Loss, 'f', 4, 64)
	c.FirstLossLabel = strconv.FormatFloat(ls[0].Loss, 'f', 4, 64)
	c.Summary = fmt.Sprintf("Training loss from %s at step %d to %s at step %d of %d (%d points).",
		c.FirstLossLabel, ls[0].Step, c.LastLoss, last.Step, steps, len(ls))
	return c
}

// reportData is the printable audit report.
type reportData struct {
	R        *report.Report
	Verified bool
	// VerifyErr says why the report does not verify (empty when it does).
	VerifyErr string
	Signer    string
	Summary   reportSummary
	Hashes    []hashRef
	hashIndex map[string]int
}

// reportSummary is the plain-language first part of the report.
type reportSummary struct {
	Model          string
	Steps          int64
	Checked        int64
	SegmentsPassed int
	SegmentsTotal  int
	Tiles          int
	Verdict        string
	ConfidencePPM  int64
	CheatPPM       int64
	ReplayedPPM    int64
	SolverMicroUSD int64
	AuditMicroUSD  int64
	FeeMicroUSD    int64
	RefundMicroUSD int64
	TotalMicroUSD  int64
	SlashedMicro   int64
	Verifiers      []string
}

// hashRef is one hash of the report, listed in full in the appendix.
type hashRef struct {
	ID, Label, Value string
}

// Hash returns the appendix anchor of value, adding it under label the
// first time (templates call it for every hash they show).
func (d *reportData) Hash(label, value string) string {
	if i, ok := d.hashIndex[value]; ok {
		return d.Hashes[i].ID
	}
	id := fmt.Sprintf("h%d", len(d.Hashes)+1)
	d.hashIndex[value] = len(d.Hashes)
	d.Hashes = append(d.Hashes, hashRef{ID: id, Label: label, Value: value})
	return id
}

func buildReport(b []byte) (*reportData, error) {
	d := &reportData{hashIndex: map[string]int{}}
	r, key, err := report.Verify(b, nil)
	if err != nil {
		d.VerifyErr = err.Error()
		if r, err = report.Decode(b); err != nil {
			return nil, err
		}
	} else {
		d.Verified, d.Signer = true, report.PeerID(key)
	}
	d.R = r
	s := &d.Summary
	if r.Spec != nil {
		s.Model, s.Steps = "MLP", r.Spec.Steps
		if r.Spec.IsGPT() {
			s.Model = "GPT"
		}
	}
	s.Verdict, s.ConfidencePPM, s.CheatPPM = r.Outcome.Verdict, r.Outcome.ConfidencePPM, r.Policy.CheatFractionPPM
	for _, a := range r.Audits {
		f := a.Signed.Findings
		s.Checked += f.StepsChecked
		s.ReplayedPPM = max(s.ReplayedPPM, f.ReplayedPPM)
		s.Verifiers = append(s.Verifiers, a.Verifier.Party)
		for _, sg := range f.Segments {
			if sg.Outcome == report.Skipped {
				continue // not checked: an earlier sample already failed
			}
			s.SegmentsTotal++
			if sg.Outcome == report.Match {
				s.SegmentsPassed++
			}
		}
		s.Tiles += len(f.Tiles)
	}
	for _, m := range r.Ledger {
		if m.Kind != report.Posted && m.Kind != report.PostPending {
			continue
		}
		switch {
		case strings.HasPrefix(m.Credit, "solver_earnings:"):
			s.SolverMicroUSD += m.AmountMicroUSD
		case strings.HasPrefix(m.Credit, "verifier_earnings:") && strings.HasPrefix(m.Debit, "escrow"):
			s.AuditMicroUSD += m.AmountMicroUSD
		case m.Credit == "platform_fees" && strings.HasPrefix(m.Debit, "escrow"):
			s.FeeMicroUSD += m.AmountMicroUSD
		case strings.HasPrefix(m.Credit, "client:") && strings.HasPrefix(m.Debit, "escrow"):
			s.RefundMicroUSD += m.AmountMicroUSD
		}
	}
	for _, sl := range r.Slashes {
		s.SlashedMicro += sl.AmountMicroUSD
	}
	s.TotalMicroUSD = s.SolverMicroUSD + s.AuditMicroUSD + s.FeeMicroUSD
	return d, nil
}

func (c *Console) reportPage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !jobIDPattern.MatchString(id) {
		c.render(w, r, http.StatusNotFound, "notfound", &view{Title: "No such job", Me: s.me})
		return
	}
	res := c.call(r.Context(), r, "GET", "/v1/jobs/"+id+"/report", s.key, nil, "")
	if !res.OK() {
		_, detail := res.problem()
		c.render(w, r, res.Status, "notfound", &view{Title: "No report", Me: s.me, Flash: detail})
		return
	}
	d, err := buildReport(res.Body)
	if err != nil {
		c.render(w, r, http.StatusBadGateway, "notfound", &view{Title: "Unreadable report", Me: s.me, Flash: "The stored report could not be read: " + err.Error()})
		return
	}
	c.render(w, r, http.StatusOK, "report", c.v(s, "Audit report "+short(id), d))
}
