package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
)

// apiClient calls the coordinator's HTTP API for `beluga job`.
type apiClient struct {
	base, key string
	hc        *http.Client
}

// Bounds on what the client reads.
const (
	maxAPIResponseBytes = 16 << 20
	maxWeightsBytes     = 4 << 30
	apiTimeout          = 30 * time.Second
	downloadTimeout     = 10 * time.Minute
)

// apiError is an error the coordinator answered, in user terms.
type apiError struct {
	Status int
	Code   string
	// Message is the coordinator's explanation (the problem's detail, or
	// the legacy body's message).
	Message string
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if hint := codeHints[e.Code]; hint != "" && !strings.Contains(msg, hint) {
		msg += " (" + hint + ")"
	}
	return "the coordinator refused: " + msg
}

// codeHints say what the user can do about an error code.
var codeHints = map[string]string{
	"unauthorized":       "check the API key: --api-key, BELUGA_API_KEY or the config file",
	"forbidden":          "this needs a client API key",
	"insufficient_funds": "your funds do not cover the escrow; ask the operator to record a deposit",
	"busy":               "retry in a little while",
	"unavailable":        "retry later",
}

// readAPIError reads an error response: RFC 9457 problem details
// (application/problem+json: type, title, status, detail and a code
// member) or the older {"error": {"code", "message"}}; anything else is
// reported by its status and a little of its text.
func readAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &apiError{Status: resp.StatusCode}
	var doc struct {
		// RFC 9457.
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Code   string `json:"code"`
		// Legacy.
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &doc) == nil {
		switch {
		case doc.Error != nil:
			e.Code, e.Message = doc.Error.Code, doc.Error.Message
			return e
		case doc.Detail != "" || doc.Title != "" || doc.Code != "":
			e.Code, e.Message = doc.Code, doc.Detail
			if e.Message == "" {
				e.Message = doc.Title
			}
			if e.Code == "" && doc.Type != "" && doc.Type != "about:blank" {
				e.Code = doc.Type[strings.LastIndexAny(doc.Type, "/#")+1:]
			}
			return e
		}
	}
	text := strings.TrimSpace(string(b))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "" && ct != "text/plain" && !strings.HasSuffix(ct, "json") {
		text = ""
	}
	e.Message = fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if text != "" {
		e.Message += ": " + text
	}
	return e
}

// request sends one request; a non-2xx answer is an *apiError.
func (c *apiClient) request(ctx context.Context, method, path, idem string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build the request: %w", err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, connError(c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}

// connError says why the coordinator could not be reached, in user terms.
func connError(base string, err error) error {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("the coordinator at %s did not answer in time", base)
	case errors.As(err, &oe) && oe.Op == "dial":
		return fmt.Errorf("cannot reach the coordinator at %s (is it running, and is that its --listen address?)", base)
	}
	return fmt.Errorf("talking to the coordinator at %s: %v", base, err)
}

// call sends a request and decodes the JSON answer into out (nil: drop
// it); it returns the raw answer too.
func (c *apiClient) call(ctx context.Context, method, path, idem string, body []byte, out any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	resp, err := c.request(ctx, method, path, idem, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponseBytes+1))
	if err != nil {
		return nil, connError(c.base, err)
	}
	if len(b) > maxAPIResponseBytes {
		return nil, fmt.Errorf("the coordinator's answer is over %d bytes", maxAPIResponseBytes)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("the coordinator's answer to %s %s is not what this client understands (%s); is the client older than the coordinator?", method, path, jsonProblem(err))
		}
	}
	return b, nil
}
