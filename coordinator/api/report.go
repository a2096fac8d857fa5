package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/spec"
)

// getReport serves a job's signed audit report (protocol/core/report,
// SPEC.md §18): the file `beluga report verify` checks, as the
// coordinator node stored it when the job ended. The job's client and
// the operator may read it; anyone else gets the 404 of a job that does
// not exist.
func (s *Server) getReport(r *http.Request, p auth.Principal) response {
	j, e := s.jobFor(r, p)
	if e != nil {
		return *e
	}
	id, err := spec.ParseJobID(j.ID)
	if err != nil {
		return fromErr(err)
	}
	b, err := s.svc.Report(r.Context(), id)
	if errors.Is(err, service.ErrNotFound) {
		return errResponse(http.StatusNotFound, "report_not_ready", "the job has no audit report yet: it is issued when the job ends (state "+j.State.String()+" now)")
	}
	if err != nil {
		return fromErr(err)
	}
	return response{Status: http.StatusOK, Body: b}
}

// auditLogView is GET /v1/jobs/{id}/audit: the job's audit so far (the
// verifiers' signed findings and the disputes refereed), null before the
// first report.
type auditLogView struct {
	JobID string      `json:"job_id"`
	Audit *report.Log `json:"audit"`
}

func auditView(j *service.Job) auditLogView {
	v := auditLogView{JobID: j.ID}
	if len(j.Audit) > 0 {
		var l report.Log
		if json.Unmarshal(j.Audit, &l) == nil {
			v.Audit = &l
		}
	}
	return v
}
