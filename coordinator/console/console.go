package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CookieName is the log-in cookie: the visitor's API key.
const CookieName = "beluga_key"

// ContentSecurityPolicy is sent with every console response: scripts,
// styles, images and fetches from the coordinator's own origin only, no
// inline code, no framing.
const ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Config configures a console.
type Config struct {
	// P2PAddrs are the coordinator's libp2p addresses, for the solver's
	// and verifier's run commands (--coordinator); the first is shown.
	P2PAddrs []string
	// LinkLogin lets GET /login?key=KEY log in (the devnet prints such
	// links for its parties). Off by default: a key in a URL ends up in
	// browser history.
	LinkLogin bool
	// Logger receives the console's records (default: discarded).
	Logger *slog.Logger
}

// Console serves the web console over an API handler.
type Console struct {
	api   http.Handler
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
	// csrfKey keys the CSRF tokens; a new one per process (a restart
	// invalidates forms rendered before it, not the log-in).
	csrfKey [32]byte
}

// New returns a console that calls apiHandler (the coordinator's
// api.Server) for everything it shows and does.
func New(apiHandler http.Handler, cfg Config) (*Console, error) {
	c := &Console{api: apiHandler, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if _, err := rand.Read(c.csrfKey[:]); err != nil {
		return nil, err
	}
	if err := c.parse(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// Mount returns a handler serving the API's paths (/v1/…, /healthz,
// /metrics) from apiHandler and everything else from the console.
func Mount(apiHandler http.Handler, c *Console) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", apiHandler)
	mux.Handle("/healthz", apiHandler)
	mux.Handle("/metrics", apiHandler)
	mux.Handle("/", c)
	return mux
}

// ServeHTTP serves the console's pages with its security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" makes browsers send Origin: null on POSTs
	h.Set("X-Frame-Options", "DENY")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) parse() error {
	funcs := template.FuncMap{
		"usd": usd, "cents": cents, "nusd": nanoUSD, "short": short, "when": when, "pct": pct, "ppm": ppmPct,
		"add":   func(a, b int) int { return a + b },
		"sub":   func(a, b int) int { return a - b },
		"list":  func(s ...string) []string { return s },
		"bal":   func(m map[service.Kind]int64, k string) int64 { return m[service.Kind(k)] },
		"join":  strings.Join,
		"deref": func(p *int64) int64 { return *p },
		"loss":  func(p *float64) string { return strconv.FormatFloat(*p, 'f', 4, 64) },
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "parts" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return err
		}
		c.pages[base] = t
	}
	return nil
}

// view is what every page template gets.
type view struct {
	Title string
	Me    *api.Me
	CSRF  string
	// Idem is a fresh Idempotency-Key for the page's forms.
	Idem   string
	Flash  string
	Errors map[string]string
	Form   url.Values
	Data   any
}

// render writes page name with v, status code.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if v.Form == nil {
		v.Form = url.Values{}
	}
	if v.Errors == nil {
		v.Errors = map[string]string{}
	}
	if v.Idem == "" {
		v.Idem = newToken()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.ErrorContext(r.Context(), "console template failed", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; the operator is told", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fragment writes the template block name of page (a live region's
// contents) with data.
func (c *Console) fragment(w http.ResponseWriter, r *http.Request, page, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		c.log.ErrorContext(r.Context(), "console fragment failed", "page", page, "block", name, "err", err)
		http.Error(w, "fragment failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// csrf is the CSRF token of a session's key.
func (c *Console) csrf(key string) string {
	m := hmac.New(sha256.New, c.csrfKey[:])
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// sameOrigin refuses a cross-site POST: an Origin header, when the browser
// sends one, must name this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == "" // a sandboxed or privacy-stripped origin is refused
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// result is an API answer.
type result struct {
	Status int
	Body   []byte
	Header http.Header
}

// OK reports a 2xx answer.
func (r result) OK() bool { return r.Status/100 == 2 }

// problem is an API problem's detail and code.
func (r result) problem() (code, detail string) {
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
		Title  string `json:"title"`
	}
	if json.Unmarshal(r.Body, &p) != nil {
		return "internal", fmt.Sprintf("the coordinator answered %d", r.Status)
	}
	if p.Detail == "" {
		p.Detail = p.Title
	}
	return p.Code, p.Detail
}

// decode unmarshals the answer into v.
func (r result) decode(v any) error {
	if !r.OK() {
		_, d := r.problem()
		return fmt.Errorf("%s", d)
	}
	return json.Unmarshal(r.Body, v)
}

// bufWriter collects a handler's answer.
type bufWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufWriter) Header() http.Header { return b.h }
func (b *bufWriter) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}
func (b *bufWriter) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.buf.Write(p)
}

// call asks the API, in-process, as key (no key: anonymous); body, if not
// nil, is sent as JSON, and idem as the Idempotency-Key.
func (c *Console) call(ctx context.Context, r *http.Request, method, path, key string, body any, idem string) result {
	var rd io.Reader = http.NoBody
	if body != nil {
		var b []byte
		switch v := body.(type) {
		case []byte:
			b = v
		case json.RawMessage:
			b = v
		default:
			var err error
			if b, err = json.Marshal(v); err != nil {
				return result{Status: 500, Body: []byte(`{"code":"internal","detail":"encode request"}`)}
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return result{Status: 500, Body: []byte(`{"code":"internal","detail":"bad request path"}`)}
	}
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	w := &bufWriter{h: http.Header{}}
	c.api.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return result{Status: w.status, Body: w.buf.Bytes(), Header: w.h}
}

// session is the logged-in visitor, if any.
type session struct {
	key string
	me  *api.Me
	// formErr: a POST's form could not be read (too large, malformed).
	formErr error
}

// session reads the log-in cookie and asks the API who it is; nil when
// there is no cookie or the key no longer works.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	var me api.Me
	if c.call(r.Context(), r, "GET", "/v1/me", ck.Value, nil, "").decode(&me) != nil {
		return nil
	}
	return &session{key: ck.Value, me: &me}
}

// setKey logs the visitor in as key.
func setKey(w http.ResponseWriter, r *http.Request, key string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: key, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int((30 * 24 * time.Hour).Seconds())})
}

func clearKey(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// home is a role's dashboard.
func home(role string) string {
	switch role {
	case "client", "solver", "verifier", "operator":
		return "/" + role
	}
	return "/"
}

// installRef is what `go install` fetches: this build's module version or
// VCS revision, else the newest release.
func installRef() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "latest"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return "latest"
}
