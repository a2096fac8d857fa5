package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// Limits of the console's forms.
const (
	// MaxUploadBytes bounds a job form's whole body: a spec over
	// spec.MaxSpecBytes, or a text corpus over service.MaxTextUpload, is
	// refused with a message next to its file field; bodies up to this
	// are read (and dropped) so that the browser gets that message rather
	// than a reset connection.
	MaxUploadBytes = service.MaxTextUpload + 8<<20
	// MaxSteps bounds the steps of an example job from the form.
	MaxSteps = 10_000_000
)

func (c *Console) routes() {
	m := c.mux
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	m.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	m.HandleFunc("GET /{$}", c.landing)
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("POST /logout", c.logout)
	m.HandleFunc("GET /signup", c.signupPage)
	m.HandleFunc("POST /signup", c.signup)
	m.HandleFunc("GET /client", c.role("client", c.clientPage))
	m.HandleFunc("POST /client/quote", c.role("client", c.quote))
	m.HandleFunc("POST /client/jobs", c.role("client", c.postJob))
	m.HandleFunc("GET /jobs/{id}", c.role("client operator", c.jobPage))
	m.HandleFunc("GET /jobs/{id}/live", c.role("client operator", c.jobLive))
	m.HandleFunc("GET /jobs/{id}/weights", c.role("client operator", c.proxy("/weights")))
	m.HandleFunc("GET /jobs/{id}/report.json", c.role("client operator", c.proxy("/report")))
	m.HandleFunc("GET /jobs/{id}/report", c.role("client operator", c.reportPage))
	m.HandleFunc("GET /solver/start", c.startPage("solver"))
	m.HandleFunc("GET /verifier/start", c.startPage("verifier"))
	m.HandleFunc("GET /solver", c.role("solver", c.partyPage))
	m.HandleFunc("GET /verifier", c.role("verifier", c.partyPage))
	m.HandleFunc("POST /bank", c.role("solver verifier", c.bank))
	m.HandleFunc("GET /operator", c.role("operator", c.operatorPage))
	m.HandleFunc("GET /operator/live", c.role("operator", c.operatorLive))
	m.HandleFunc("POST /operator/deposit", c.role("operator", c.deposit))
	m.HandleFunc("POST /operator/key", c.role("operator", c.issueKey))
	m.HandleFunc("POST /operator/payout", c.role("operator", c.payout))
	m.HandleFunc("GET /operator/ach/{period}", c.role("operator", c.ach))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "notfound", &view{Title: "Not found", Me: c.me(r)})
	})
}

// me is the visitor's principal, if logged in.
func (c *Console) me(r *http.Request) *api.Me {
	if s := c.session(r); s != nil {
		return s.me
	}
	return nil
}

type roleHandler func(w http.ResponseWriter, r *http.Request, s *session)

// role admits a visitor logged in with one of roles (space-separated);
// others are sent to log in. A POST must carry the session's CSRF token
// and come from this origin.
func (c *Console) role(roles string, h roleHandler) http.HandlerFunc {
	allowed := strings.Fields(roles)
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.render(w, r, http.StatusUnauthorized, "login", &view{Title: "Log in", Flash: "Your session has ended: log in again."})
			return
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == s.me.Role
		}
		if !ok {
			c.render(w, r, http.StatusForbidden, "notfound", &view{Title: "Not for this key", Me: s.me,
				Flash: fmt.Sprintf("This page is for %s keys; you are logged in as a %s.", strings.Join(allowed, " or "), s.me.Role)})
			return
		}
		if r.Method == http.MethodPost {
			// The body is bounded before anything reads it; a form that
			// cannot be read changes nothing, so it is answered (by the
			// handler, next to its file field) without the CSRF check.
			r.Body = http.MaxBytesReader(w, r.Body, MaxUploadBytes)
			err := r.ParseMultipartForm(1 << 20)
			if errors.Is(err, http.ErrNotMultipart) {
				err = r.ParseForm()
			}
			if err != nil {
				s.formErr = err
				h(w, r, s)
				return
			}
			if !sameOrigin(r) || r.PostFormValue("csrf") != c.csrf(s.key) {
				c.render(w, r, http.StatusForbidden, "notfound", &view{Title: "Form expired", Me: s.me,
					Flash: "This form came from another site or an older page; nothing was changed. Go back, reload and try again."})
				return
			}
		}
		h(w, r, s)
	}
}

// v is a view for session s.
func (c *Console) v(s *session, title string, data any) *view {
	return &view{Title: title, Me: s.me, CSRF: c.csrf(s.key), Data: data, Form: url.Values{}, Errors: map[string]string{}}
}

func (c *Console) landing(w http.ResponseWriter, r *http.Request) {
	var health struct {
		Status string `json:"status"`
	}
	c.call(r.Context(), r, "GET", "/healthz", "", nil, "").decode(&health)
	c.render(w, r, http.StatusOK, "landing", &view{Title: "Beluga", Me: c.me(r), Data: health.Status})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if key := r.URL.Query().Get("key"); key != "" && c.cfg.LinkLogin {
		var me api.Me
		if c.call(r.Context(), r, "GET", "/v1/me", key, nil, "").decode(&me) == nil {
			setKey(w, r, key)
			http.Redirect(w, r, home(me.Role), http.StatusSeeOther)
			return
		}
	}
	c.render(w, r, http.StatusOK, "login", &view{Title: "Log in", Me: c.me(r), Form: url.Values{"next": {r.URL.Query().Get("next")}}})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site log-in refused", http.StatusForbidden)
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	v := &view{Title: "Log in", Form: r.PostForm, Errors: map[string]string{}}
	var me api.Me
	switch res := c.call(r.Context(), r, "GET", "/v1/me", key, nil, ""); {
	case key == "":
		v.Errors["key"] = "Paste your API key (it starts with blg_)."
	case !res.OK():
		v.Errors["key"] = "This key is not valid here: check that you pasted all 64 characters, or ask the operator for a new one."
	default:
		res.decode(&me)
	}
	if len(v.Errors) > 0 {
		v.Form.Del("key")
		c.render(w, r, http.StatusUnprocessableEntity, "login", v)
		return
	}
	setKey(w, r, key)
	next := r.PostFormValue("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		next = home(me.Role)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site log-out refused", http.StatusForbidden)
		return
	}
	clearKey(w)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) signupPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "signup", &view{Title: "Train a model", Me: c.me(r)})
}

func (c *Console) signup(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site sign-up refused", http.StatusForbidden)
		return
	}
	res := c.call(r.Context(), r, "POST", "/v1/signup", "", []byte("{}"), "")
	var out api.SignupResult
	if err := res.decode(&out); err != nil {
		c.render(w, r, res.Status, "signup", &view{Title: "Train a model", Errors: map[string]string{"signup": err.Error()}})
		return
	}
	setKey(w, r, out.Key)
	s := &session{key: out.Key, me: &api.Me{Role: out.Role, Subject: out.Subject}}
	c.render(w, r, http.StatusCreated, "welcome", c.v(s, "Welcome", out))
}

// ---- client ----

// clientData is the client's dashboard.
type clientData struct {
	Me       *api.Me
	Jobs     []api.JobSummary
	More     bool
	Examples []string
	Market   *service.Market
}

func (c *Console) clientPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderClient(w, r, s, http.StatusOK, nil)
}

func (c *Console) renderClient(w http.ResponseWriter, r *http.Request, s *session, status int, v *view) {
	d := &clientData{Me: s.me, Examples: []string{catalog.ExampleSynthetic, catalog.ExampleFashionMNIST, "gpt"}}
	var jobs api.List[api.JobSummary]
	if err := c.call(r.Context(), r, "GET", "/v1/jobs?limit=50", s.key, nil, "").decode(&jobs); err == nil {
		d.Jobs, d.More = jobs.Items, jobs.NextCursor != ""
	}
	var m service.Market
	if c.call(r.Context(), r, "GET", "/v1/market", s.key, nil, "").decode(&m) == nil {
		d.Market = &m
	}
	if v == nil {
		v = c.v(s, "Your jobs", d)
		v.Form = url.Values{"source": {"example"}, "example": {catalog.ExampleSynthetic}, "steps": {"200"}}
	}
	v.Data = d
	c.render(w, r, status, "client", v)
}

// jobForm reads the job form: the spec (an example or an uploaded file)
// and the price cap; errs names the fields that are wrong.
func jobForm(r *http.Request, s *session) (specJSON []byte, maxNano int64, form url.Values, errs map[string]string) {
	errs = map[string]string{}
	if err := s.formErr; err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			errs["spec"] = fmt.Sprintf("The upload is over %d MiB; a job spec is at most %d KiB and a corpus %d MiB. Nothing was sent.", MaxUploadBytes>>20, spec.MaxSpecBytes>>10, service.MaxTextUpload>>20)
		} else {
			errs["spec"] = "The form could not be read; nothing was sent. Try again."
		}
		return nil, 0, url.Values{"source": {"upload"}}, errs
	}
	form = r.Form
	if p := strings.TrimSpace(form.Get("max_price")); p != "" {
		n, err := parseDollars(p, 9)
		switch {
		case err != nil:
			errs["max_price"] = "Maximum price: " + err.Error() + "."
		case n == 0:
			errs["max_price"] = "Maximum price: leave it empty to pay the market price, or give a price above zero."
		default:
			maxNano = n
		}
	}
	switch form.Get("source") {
	case "spec_json": // the quote page's "post" form carries the spec it quoted
		specJSON = []byte(form.Get("spec_json"))
		if len(specJSON) > spec.MaxSpecBytes {
			errs["spec"] = fmt.Sprintf("The spec is over %d KiB.", spec.MaxSpecBytes>>10)
		}
	case "upload":
		f, h, err := r.FormFile("spec")
		if err != nil {
			errs["spec"] = "Choose a spec file (JSON, as `beluga spec example` writes) to upload."
			break
		}
		defer f.Close()
		if h.Size > spec.MaxSpecBytes {
			errs["spec"] = fmt.Sprintf("%s is %d KiB; a job spec is at most %d KiB.", h.Filename, h.Size>>10, spec.MaxSpecBytes>>10)
			break
		}
		specJSON, _ = io.ReadAll(io.LimitReader(f, spec.MaxSpecBytes+1))
		if _, err := spec.Decode(specJSON); err != nil {
			errs["spec"] = fmt.Sprintf("%s is not a valid job spec: %s.", h.Filename, strings.TrimPrefix(err.Error(), "spec: "))
		}
	default:
		name := form.Get("example")
		steps, err := strconv.ParseInt(strings.TrimSpace(form.Get("steps")), 10, 64)
		if err != nil || steps < 1 || steps > MaxSteps {
			errs["steps"] = fmt.Sprintf("Steps: a whole number from 1 to %d.", MaxSteps)
			break
		}
		s, err := exampleSpec(name, steps)
		if err != nil {
			errs["example"] = err.Error()
			break
		}
		specJSON, _ = s.JSON()
	}
	return specJSON, maxNano, form, errs
}

// exampleSpec is the catalog example name made a job of steps steps.
func exampleSpec(name string, steps int64) (*spec.Spec, error) {
	var s *spec.Spec
	var err error
	switch name {
	case catalog.ExampleSynthetic, catalog.ExampleFashionMNIST:
		s, err = catalog.Example(name)
	case "gpt":
		s = spec.ExampleGPT()
	default:
		return nil, fmt.Errorf("choose one of the examples")
	}
	if err != nil {
		return nil, err
	}
	s.Steps = steps
	if lr := s.Optimizer.LR; len(lr) > 1 {
		lr[len(lr)-1].Step = max(steps, lr[len(lr)-2].Step+1)
		if lr[len(lr)-2].Step >= steps {
			s.Optimizer.LR = lr[:1]
		}
	}
	if s.CheckpointInterval > steps {
		s.CheckpointInterval = max(1, steps/4)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%d steps do not make a valid job of this example: %s", steps, strings.TrimPrefix(err.Error(), "spec: "))
	}
	return s, nil
}

// apiFieldError places an API refusal next to the field it concerns.
func apiFieldError(code, detail string, fields map[string]string) map[string]string {
	errs := map[string]string{}
	for pat, field := range fields {
		if strings.Contains(code, pat) || strings.Contains(strings.ToLower(detail), pat) {
			errs[field] = detail
			return errs
		}
	}
	errs["form"] = detail
	return errs
}

var jobFields = map[string]string{"invalid_spec": "spec", "max_price": "max_price", "insufficient_funds": "form"}

// quoteData is the quote page.
type quoteData struct {
	Quote    service.Quote
	SpecJSON string
	Name     string
	Steps    int64
	MaxPrice string
	Funds    int64
}

func (c *Console) quote(w http.ResponseWriter, r *http.Request, s *session) {
	specJSON, maxNano, form, errs := jobForm(r, s)
	specJSON = c.attachCorpus(r, s, specJSON, errs) // corpus.go
	if len(errs) == 0 {
		res := c.call(r.Context(), r, "POST", "/v1/quote", s.key, api.JobRequest{Spec: specJSON, MaxPriceNanoUSDPerCU: maxNano}, "")
		var q service.Quote
		if err := res.decode(&q); err != nil {
			code, detail := res.problem()
			errs = apiFieldError(code, detail, jobFields)
			if code == "invalid_spec" && form.Get("source") != "upload" {
				errs = map[string]string{"steps": detail}
			}
		} else {
			sp, _ := spec.Decode(specJSON)
			d := quoteData{Quote: q, SpecJSON: string(specJSON), Name: sp.Name, Steps: sp.Steps, MaxPrice: form.Get("max_price")}
			if s.me.FundsMicroUSD != nil {
				d.Funds = *s.me.FundsMicroUSD
			}
			c.render(w, r, http.StatusOK, "quote", c.v(s, "Quote", d))
			return
		}
	}
	v := c.v(s, "Your jobs", nil)
	v.Form, v.Errors = form, errs
	c.renderClient(w, r, s, http.StatusUnprocessableEntity, v)
}

func (c *Console) postJob(w http.ResponseWriter, r *http.Request, s *session) {
	specJSON, maxNano, form, errs := jobForm(r, s)
	specJSON = c.attachCorpus(r, s, specJSON, errs) // corpus.go
	if len(errs) == 0 {
		idem := form.Get("idem")
		if idem == "" {
			idem = newToken()
		}
		res := c.call(r.Context(), r, "POST", "/v1/jobs", s.key, api.JobRequest{Spec: specJSON, MaxPriceNanoUSDPerCU: maxNano}, idem)
		var j struct {
			ID string `json:"id"`
		}
		if err := res.decode(&j); err == nil {
			http.Redirect(w, r, "/jobs/"+j.ID, http.StatusSeeOther)
			return
		}
		code, detail := res.problem()
		errs = apiFieldError(code, detail, jobFields)
		if code == "insufficient_funds" {
			errs = map[string]string{"form": "Your funds do not cover this job's escrow: " + detail + ". Nothing was posted; fund your account (reference below) and post again."}
		}
	}
	v := c.v(s, "Your jobs", nil)
	v.Form, v.Errors = form, errs
	c.renderClient(w, r, s, http.StatusUnprocessableEntity, v)
}

// jobRecord is GET /v1/jobs/{id} as the console reads it.
type jobRecord struct {
	ID                  string          `json:"id"`
	ClientID            string          `json:"client_id"`
	Spec                json.RawMessage `json:"spec"`
	State               string          `json:"state"`
	Steps               int64           `json:"steps"`
	CU                  int64           `json:"compute_units"`
	MaxCostMicroUSD     int64           `json:"max_cost_micro_usd"`
	AuditBudgetMicroUSD int64           `json:"audit_budget_micro_usd"`
	EscrowMicroUSD      int64           `json:"escrow_micro_usd"`
	PriceNanoUSDPerCU   int64           `json:"price_nano_usd_per_cu"`
	CommittedStep       int64           `json:"committed_step"`
	Solvers             []struct {
		SolverID string `json:"solver_id"`
		Steps    int64  `json:"steps"`
		Backend  string `json:"backend"` // where it said it trained
	} `json:"solvers"`
	Auditors []struct {
		VerifierID string `json:"verifier_id"`
	} `json:"auditors"`
	History []struct {
		Event string    `json:"event"`
		State string    `json:"state"`
		At    time.Time `json:"at"`
	} `json:"history"`
	Progress api.ProgressView `json:"progress"`
}

// jobData is the job page and its live fragment.
type jobData struct {
	Job      jobRecord
	Name     string
	Step     int64
	Percent  int64
	Chart    *chart
	Final    bool
	Outcome  *outcome
	Terminal bool
	Weights  bool
}

// outcome is the audit outcome from the job's signed report.
type outcome struct {
	State, Verdict, Reason string
	ConfidencePPM          int64
}

var jobIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (c *Console) loadJob(r *http.Request, s *session) (*jobData, result) {
	id := r.PathValue("id")
	if !jobIDPattern.MatchString(id) {
		return nil, result{Status: http.StatusNotFound, Body: []byte(`{"code":"not_found","detail":"no such job"}`)}
	}
	res := c.call(r.Context(), r, "GET", "/v1/jobs/"+id, s.key, nil, "")
	var d jobData
	if err := res.decode(&d.Job); err != nil {
		return nil, res
	}
	var named struct {
		Name string `json:"name"`
	}
	json.Unmarshal(d.Job.Spec, &named)
	d.Name = named.Name
	p := d.Job.Progress
	d.Step = max(p.CommittedStep, p.ReportedStep)
	if p.FinalDigest != "" {
		d.Step = d.Job.Steps
	}
	d.Percent = pct(d.Step, d.Job.Steps)
	d.Chart = lossChart(p.Losses, d.Job.Steps)
	switch d.Job.State {
	case "settled", "adjudicated_cheat", "adjudicated_false_accusation", "cancelled", "expired":
		d.Terminal = true
	}
	d.Weights = p.FinalDigest != "" && d.Job.State != "adjudicated_cheat"
	if d.Terminal {
		if rep := c.call(r.Context(), r, "GET", "/v1/jobs/"+id+"/report", s.key, nil, ""); rep.OK() {
			var o struct {
				Outcome struct {
					State         string `json:"state"`
					Verdict       string `json:"verdict"`
					Reason        string `json:"reason"`
					ConfidencePPM int64  `json:"confidence_ppm"`
				} `json:"outcome"`
			}
			if json.Unmarshal(rep.Body, &o) == nil {
				d.Outcome = &outcome{State: o.Outcome.State, Verdict: o.Outcome.Verdict, Reason: o.Outcome.Reason, ConfidencePPM: o.Outcome.ConfidencePPM}
			}
		}
		d.Final = d.Outcome != nil || d.Job.State == "cancelled" || d.Job.State == "expired"
	}
	return &d, res
}

func (c *Console) jobPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, res := c.loadJob(r, s)
	if d == nil {
		_, detail := res.problem()
		c.render(w, r, res.Status, "notfound", &view{Title: "No such job", Me: s.me, Flash: detail})
		return
	}
	c.render(w, r, http.StatusOK, "job", c.v(s, "Job "+short(d.Job.ID), d))
}

func (c *Console) jobLive(w http.ResponseWriter, r *http.Request, s *session) {
	d, res := c.loadJob(r, s)
	if d == nil {
		http.Error(w, "no such job", res.Status)
		return
	}
	c.fragment(w, r, "job", "live", d)
}

// proxy passes the API's answer for the job's sub-resource straight
// through (weights are streamed, not buffered).
func (c *Console) proxy(sub string) roleHandler {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		id := r.PathValue("id")
		if !jobIDPattern.MatchString(id) {
			http.NotFound(w, r)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "/v1/jobs/"+id+sub, nil)
		req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
		req.Header.Set("Authorization", "Bearer "+s.key)
		if sub == "/report" {
			w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "report-"+id[:16]+".json"))
		}
		c.api.ServeHTTP(w, req)
	}
}

// ---- solvers and verifiers ----

// startData is a daemon's start page: the commands that install and run
// it.
type startData struct {
	Role        string
	Coordinator string
	HTTP        string
	Key         string
	Ask         string
	Commands    []command
	// Signup: the one-line sign-up commands (start page only).
	Signup []command
	Market *service.Market
}

// command is one platform's install-and-run line.
type command struct{ OS, Shell, Line string }

// coordinatorArgs are the daemon's --coordinator and --coordinator-http
// flags for this coordinator, as r reached it.
func (c *Console) coordinatorArgs(r *http.Request) string {
	coord := "COORDINATOR_MULTIADDR"
	if len(c.cfg.P2PAddrs) > 0 {
		coord = c.cfg.P2PAddrs[0]
	}
	httpURL := "http://" + r.Host
	if r.TLS != nil {
		httpURL = "https://" + r.Host
	}
	return fmt.Sprintf("--coordinator %s --coordinator-http %s", coord, httpURL)
}

// signupCommands are the one-line install and sign-up commands of role
// (`beluga solver|verifier signup`: the daemon's identity key signs for
// an API key, saved in its --dir, where the run command finds it).
func (c *Console) signupCommands(r *http.Request, role string) []command {
	return platformLines(role, role+" signup "+c.coordinatorArgs(r))
}

// commands are the one-line install and run commands of role for Linux,
// macOS and Windows.
func (c *Console) commands(r *http.Request, role, key, ask string) []command {
	args := role + " " + c.coordinatorArgs(r)
	if key != "" {
		args += " --api-key " + key
	}
	if role == "solver" && ask != "" {
		args += " --ask " + ask
	}
	return platformLines(role, args)
}

// platformLines install beluga and run it with args and role's work
// directory, on Linux, macOS and Windows.
func platformLines(role, args string) []command {
	inst := "go install github.com/beluga-compute/beluga/cmd/beluga@" + installRef()
	return []command{
		{OS: "Linux", Shell: "bash", Line: inst + " && \"$(go env GOPATH)/bin/beluga\" " + args + " --dir \"$HOME/.beluga/" + role + "\""},
		{OS: "macOS", Shell: "zsh", Line: inst + " && \"$(go env GOPATH)/bin/beluga\" " + args + " --dir \"$HOME/Library/Application Support/beluga/" + role + "\""},
		{OS: "Windows", Shell: "PowerShell", Line: inst + "; & \"$(go env GOPATH)\\bin\\beluga.exe\" " + args + " --dir \"$env:LOCALAPPDATA\\beluga\\" + role + "\""},
	}
}

func (c *Console) startPage(role string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		key := ""
		var me *api.Me
		if s != nil {
			me = s.me
			if s.me.Role == role {
				key = s.key
			}
		}
		d := startData{Role: role, Commands: c.commands(r, role, key, "0"), Signup: c.signupCommands(r, role)}
		title := map[string]string{"solver": "Earn with your GPU", "verifier": "Audit jobs"}[role]
		c.render(w, r, http.StatusOK, "start", &view{Title: title, Me: me, Data: d})
	}
}

// partyData is a solver's or verifier's dashboard.
type partyData struct {
	Role      string
	Status    service.PartyStatus
	Bank      *api.BankView
	Market    *service.Market
	Lines     []service.StatementLine
	Payouts   []service.StatementLine
	Start     startData
	PriceMode string
	AskUSD    string
	// BondRef is the reference a bond transfer quotes
	// (api.FundingReference), as a sign-up prints it.
	BondRef string
}

func (c *Console) partyPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderParty(w, r, s, http.StatusOK, nil)
}

func (c *Console) renderParty(w http.ResponseWriter, r *http.Request, s *session, status int, v *view) {
	role := s.me.Role
	d := &partyData{Role: role, BondRef: api.FundingReference(s.me.Subject)}
	if v == nil {
		v = c.v(s, map[string]string{"solver": "Your GPU", "verifier": "Your audits"}[role], nil)
	}
	if err := c.call(r.Context(), r, "GET", "/v1/parties/"+url.PathEscape(s.me.Subject), s.key, nil, "").decode(&d.Status); err != nil {
		v.Flash = "The coordinator could not show your status: " + err.Error()
	}
	var b api.BankView
	if c.call(r.Context(), r, "GET", "/v1/parties/"+url.PathEscape(s.me.Subject)+"/bank", s.key, nil, "").decode(&b) == nil {
		d.Bank = &b
	}
	var m service.Market
	if c.call(r.Context(), r, "GET", "/v1/market", s.key, nil, "").decode(&m) == nil {
		d.Market = &m
	}
	var st struct {
		Lines []service.StatementLine `json:"lines"`
	}
	acct := role + "_earnings:" + s.me.Subject
	if c.call(r.Context(), r, "GET", "/v1/accounts/"+url.PathEscape(acct)+"/statement?limit=1000", s.key, nil, "").decode(&st) == nil {
		for i := len(st.Lines) - 1; i >= 0; i-- {
			l := st.Lines[i]
			if l.Code == "payout" {
				d.Payouts = append(d.Payouts, l)
			}
			if len(d.Lines) < 20 {
				d.Lines = append(d.Lines, l)
			}
		}
	}
	// The price: the solver's own ask or the market's (a GET form: it
	// changes only the command shown).
	d.PriceMode, d.AskUSD = "market", "0"
	q := r.URL.Query()
	if role == "solver" && q.Get("price") == "own" {
		v.Form.Set("price", "own")
		v.Form.Set("ask", q.Get("ask"))
		n, err := parseDollars(q.Get("ask"), 9)
		switch {
		case err != nil:
			v.Errors["ask"] = "Your ask: " + err.Error() + ". The command below still follows the market."
		case n == 0:
			v.Errors["ask"] = "Your ask: give a price above zero, or choose to follow the market."
		default:
			d.PriceMode, d.AskUSD = "own", dollarsOfNano(n)
		}
	}
	d.Start = startData{Role: role, Commands: c.commands(r, role, s.key, d.AskUSD)}
	v.Data = d
	c.render(w, r, status, "party", v)
}

var bankFields = map[string]string{"holder": "holder", "routing": "routing", "account_number": "account", "account number": "account", "account_type": "type"}

func (c *Console) bank(w http.ResponseWriter, r *http.Request, s *session) {
	if s.formErr != nil {
		http.Error(w, "the form could not be read; nothing was changed", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	errs := map[string]string{}
	holder, routing, acct, typ := strings.TrimSpace(f.Get("holder")), strings.TrimSpace(f.Get("routing")), strings.TrimSpace(f.Get("account")), f.Get("type")
	if holder == "" {
		errs["holder"] = "Enter the account holder's name as the bank knows it."
	}
	if len(routing) != 9 || !digits(routing) {
		errs["routing"] = "A routing number is 9 digits."
	}
	if acct == "" {
		errs["account"] = "Enter the account number."
	}
	if typ != "checking" && typ != "savings" {
		errs["type"] = "Choose checking or savings."
	}
	if len(errs) == 0 {
		res := c.call(r.Context(), r, "PUT", "/v1/parties/"+url.PathEscape(s.me.Subject)+"/bank", s.key,
			api.BankRequest{HolderName: holder, RoutingNumber: routing, AccountNumber: acct, AccountType: typ}, "")
		if res.OK() {
			http.Redirect(w, r, home(s.me.Role)+"#bank", http.StatusSeeOther)
			return
		}
		code, detail := res.problem()
		errs = apiFieldError(code, detail, bankFields)
		if errs["form"] != "" {
			errs["bank"] = errs["form"]
		}
	}
	v := c.v(s, "Your account", nil)
	f.Del("account") // never echo the account number back
	v.Form, v.Errors = f, errs
	c.renderParty(w, r, s, http.StatusUnprocessableEntity, v)
}

// ---- operator ----

// operatorData is the operator's dashboard.
type operatorData struct {
	Parties  api.List[api.PartyView]
	Jobs     api.List[api.JobSummary]
	Disputes api.List[api.DisputeView]
	Ledger   api.LedgerView
	Runs     api.List[api.RunView]
	Live     *liveData
	Errors   []string
}

// liveData is the network's state, refreshed live.
type liveData struct {
	Health struct {
		Status string `json:"status"`
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
	}
	Market *service.Market
	At     time.Time
}

func (c *Console) live(r *http.Request, s *session) *liveData {
	l := &liveData{At: time.Now().UTC()}
	json.Unmarshal(c.call(r.Context(), r, "GET", "/healthz", "", nil, "").Body, &l.Health)
	var m service.Market
	if c.call(r.Context(), r, "GET", "/v1/market", s.key, nil, "").decode(&m) == nil {
		l.Market = &m
	}
	return l
}

func (c *Console) operatorPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderOperator(w, r, s, http.StatusOK, nil)
}

func (c *Console) renderOperator(w http.ResponseWriter, r *http.Request, s *session, status int, v *view) {
	d := &operatorData{}
	qs := []struct {
		path string
		into any
	}{
		{"/v1/parties?limit=100", &d.Parties}, {"/v1/jobs?limit=50", &d.Jobs}, {"/v1/disputes?limit=50", &d.Disputes},
		{"/v1/ledger?limit=100", &d.Ledger}, {"/v1/payouts/runs?limit=24", &d.Runs},
	}
	// The API calls are independent reads: ask them at once.
	errs := make([]error, len(qs))
	var wg sync.WaitGroup
	wg.Go(func() { d.Live = c.live(r, s) })
	for i, q := range qs {
		wg.Go(func() { errs[i] = c.call(r.Context(), r, "GET", q.path, s.key, nil, "").decode(q.into) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			d.Errors = append(d.Errors, qs[i].path+": "+err.Error())
		}
	}
	if v == nil {
		v = c.v(s, "Operator", nil)
	}
	v.Data = d
	c.render(w, r, status, "operator", v)
}

func (c *Console) operatorLive(w http.ResponseWriter, r *http.Request, s *session) {
	c.fragment(w, r, "operator", "network", c.live(r, s))
}

// operatorPost runs an operator form: check returns the field errors of
// the input and the API call to make; the answer's refusal is placed by
// fields.
func (c *Console) operatorPost(w http.ResponseWriter, r *http.Request, s *session, form string, check func(f url.Values, errs map[string]string) (path string, body any), fields map[string]string, done func(res result) string) {
	if s.formErr != nil {
		http.Error(w, "the form could not be read; nothing was changed", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	errs := map[string]string{}
	path, body := check(f, errs)
	if len(errs) == 0 {
		idem := f.Get("idem")
		if idem == "" {
			idem = newToken()
		}
		res := c.call(r.Context(), r, "POST", path, s.key, body, idem)
		if res.OK() {
			v := c.v(s, "Operator", nil)
			v.Flash = done(res)
			c.renderOperator(w, r, s, http.StatusOK, v)
			return
		}
		code, detail := res.problem()
		errs = apiFieldError(code, detail, fields)
	}
	if errs["form"] != "" {
		errs[form] = errs["form"]
		delete(errs, "form")
	}
	v := c.v(s, "Operator", nil)
	v.Form, v.Errors = f, errs
	c.renderOperator(w, r, s, http.StatusUnprocessableEntity, v)
}

func (c *Console) deposit(w http.ResponseWriter, r *http.Request, s *session) {
	c.operatorPost(w, r, s, "deposit", func(f url.Values, errs map[string]string) (string, any) {
		acct := strings.TrimSpace(f.Get("dep_account"))
		if _, err := service.ParseAccountRef(acct); err != nil || !strings.Contains(acct, ":") {
			errs["dep_account"] = "An account is client:PARTY, solver_bond:PARTY or verifier_bond:PARTY."
		}
		amt, err := parseDollars(f.Get("dep_amount"), 6)
		if err != nil {
			errs["dep_amount"] = "Amount: " + err.Error() + "."
		} else if amt == 0 {
			errs["dep_amount"] = "Amount: a deposit is more than $0."
		}
		ref := strings.TrimSpace(f.Get("dep_ref"))
		if ref == "" || len(ref) > service.MaxBankRefLen {
			errs["dep_ref"] = fmt.Sprintf("The bank's reference of the transfer, 1 to %d characters.", service.MaxBankRefLen)
		}
		return "/v1/deposits", api.DepositRequest{Account: acct, AmountMicroUSD: amt, BankRef: ref}
	}, map[string]string{"account": "dep_account", "amount": "dep_amount", "bank_ref": "dep_ref", "conflict": "dep_ref"}, func(res result) string {
		return "Deposit recorded."
	})
}

func (c *Console) issueKey(w http.ResponseWriter, r *http.Request, s *session) {
	c.operatorPost(w, r, s, "key", func(f url.Values, errs map[string]string) (string, any) {
		subj, role := strings.TrimSpace(f.Get("key_subject")), f.Get("key_role")
		if err := service.CheckPartyID(subj); err != nil {
			errs["key_subject"] = fmt.Sprintf("The party: 1 to %d letters, digits, '.', '_' or '-' (a daemon prints its party ID at start).", service.MaxPartyIDLen)
		}
		switch role {
		case "client", "solver", "verifier", "operator":
		default:
			errs["key_role"] = "Choose a role."
		}
		return "/v1/keys", api.KeyRequest{Subject: subj, Role: role}
	}, map[string]string{"subject": "key_subject", "role": "key_role"}, func(res result) string {
		var k struct {
			Key, Subject, Role string
		}
		json.Unmarshal(res.Body, &k)
		return fmt.Sprintf("Key issued for %s %s (shown once, give it to its owner): %s", k.Role, k.Subject, k.Key)
	})
}

func (c *Console) payout(w http.ResponseWriter, r *http.Request, s *session) {
	c.operatorPost(w, r, s, "payout", func(f url.Values, errs map[string]string) (string, any) {
		p := strings.TrimSpace(f.Get("period"))
		if _, err := time.Parse("2006-01-02", p); err != nil {
			errs["period"] = "A period is its run day, YYYY-MM-DD (the 1st or the 15th)."
		}
		return "/v1/payouts/runs", api.PayoutRunRequest{Period: p}
	}, map[string]string{"period": "period", "illegal": "period"}, func(res result) string {
		var run struct {
			Period     string `json:"period"`
			TotalCents int64  `json:"total_cents"`
		}
		json.Unmarshal(res.Body, &run)
		return fmt.Sprintf("Payout run %s posted: %s.", run.Period, cents(run.TotalCents))
	})
}

func (c *Console) ach(w http.ResponseWriter, r *http.Request, s *session) {
	p := r.PathValue("period")
	if _, err := time.Parse("2006-01-02", p); err != nil {
		http.NotFound(w, r)
		return
	}
	res := c.call(r.Context(), r, "GET", "/v1/payouts/runs/"+p+"/ach", s.key, nil, "")
	if !res.OK() {
		_, detail := res.problem()
		http.Error(w, detail, res.Status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=us-ascii")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "payout-"+p+".ach"))
	w.Write(res.Body)
}
