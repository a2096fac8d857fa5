package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
)

var errConflict = errors.New("a different model is published under this id")

// apiError is an OpenAI-style error object.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func newError(status int, typ, code, param, msg string) *apiError {
	e := &apiError{status: status, Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	if param != "" {
		e.Param = &param
	}
	return e
}

func (e *apiError) Error() string { return e.Message }

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]*apiError{"error": e})
}

func badRequest(code, param, msg string) *apiError {
	return newError(http.StatusBadRequest, "invalid_request_error", code, param, msg)
}
