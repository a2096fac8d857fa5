package api

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// TextCorpus is the answer to PUT /v1/data and GET /v1/data/{root}: a
// stored text corpus as a spec names it (data.text.root, data.text.bytes).
type TextCorpus struct {
	Root  string `json:"root"`
	Bytes int    `json:"bytes"`
}

// UploadTimeout bounds the time a corpus upload's body may take to arrive.
const UploadTimeout = 10 * time.Minute

// putData stores the body, a GPT's text corpus, under its text root
// (service.PutText). The same bytes give the same answer: no
// Idempotency-Key is needed.
func (s *Server) putData(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.admit(w, r, []auth.Role{auth.RoleClient}); !ok {
		return
	}
	// A corpus may take longer to arrive than the server's read timeout
	// allows a request; it gets UploadTimeout (where the server supports
	// deadlines).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(UploadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, service.MaxTextUpload))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the corpus is over %d bytes (64 MiB); nothing was stored", service.MaxTextUpload))
		return
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "read body")
		return
	}
	write(w, s.storeText(body))
}

// storeText stores a corpus and answers with its root and size.
func (s *Server) storeText(body []byte) response {
	root, n, err := s.svc.PutText(body)
	if err != nil {
		return fromErr(err)
	}
	s.log.Info("text corpus stored", "root", hex.EncodeToString(root[:8]), "bytes", n)
	return jsonResponse(http.StatusOK, TextCorpus{Root: hex.EncodeToString(root[:]), Bytes: n})
}

// getData says whether a corpus is stored, and its size.
func (s *Server) getData(r *http.Request, p auth.Principal) response {
	if err := p.Require(auth.RoleClient, auth.RoleOperator); err != nil {
		return fromErr(err)
	}
	b, err := hex.DecodeString(r.PathValue("root"))
	if err != nil || len(b) != 32 {
		return errResponse(http.StatusBadRequest, "invalid_request", "a corpus root is 64 hex digits")
	}
	root := [32]byte(b)
	n, ok, err := s.svc.TextSize(root)
	if err != nil {
		return fromErr(err)
	}
	if !ok {
		return errResponse(http.StatusNotFound, "not_found", "no corpus with this root is stored; upload it with PUT /v1/data")
	}
	return jsonResponse(http.StatusOK, TextCorpus{Root: hex.EncodeToString(root[:]), Bytes: n})
}
