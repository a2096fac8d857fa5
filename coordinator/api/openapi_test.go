package api

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"go.yaml.in/yaml/v3"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/gateway"
)

// openapiDoc is what these tests read of openapi.yaml.
type openapiDoc struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]struct {
				Enum []string `yaml:"enum"`
			} `yaml:"properties"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

// operation is what these tests read of one operation.
type operation struct {
	Responses map[string]yaml.Node `yaml:"responses"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) *openapiDoc {
	t.Helper()
	var d openapiDoc
	if err := yaml.Unmarshal(OpenAPI(), &d); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return &d
}

// operations are the document's "METHOD /path" with their responses.
func (d *openapiDoc) operations(t *testing.T) map[string]operation {
	t.Helper()
	out := map[string]operation{}
	for path, item := range d.Paths {
		for m, node := range item {
			if !slices.Contains(httpMethods, m) {
				continue // parameters, summary, ...
			}
			var op operation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("openapi.yaml %s %s: %v", m, path, err)
			}
			out[strings.ToUpper(m)+" "+path] = op
		}
	}
	return out
}

// problemCodes are the codes the Problem schema lists.
func (d *openapiDoc) problemCodes(t *testing.T) []string {
	t.Helper()
	codes := d.Components.Schemas["Problem"].Properties["code"].Enum
	if len(codes) == 0 {
		t.Fatal("openapi.yaml: components.schemas.Problem.properties.code has no enum")
	}
	return codes
}

// documents reports whether op documents status: its own code, its class
// ("4XX") or default.
func (op operation) documents(status int) bool {
	s := strconv.Itoa(status)
	for _, k := range []string{s, s[:1] + "XX", s[:1] + "xx", "default"} {
		if _, ok := op.Responses[k]; ok {
			return true
		}
	}
	return false
}

// registeredRoutes are the patterns the package's source registers on a
// mux (every HandleFunc or Handle call whose first argument is a string
// literal), read from the source so that a route added anywhere in the
// package is seen.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	out := append(routesIn(t, "*.go"), routesIn(t, gatewayGlob)...)
	sort.Strings(out)
	return out
}

// gatewayGlob is the inference gateway's source (coordinator/gateway): the
// coordinator serves its routes on the same listener (Gateway.Wrap), so
// openapi.yaml documents them too.
const gatewayGlob = "../gateway/*.go"

// gatewayOps returns the gateway's operations ("METHOD /path").
func gatewayOps(t *testing.T) map[string]bool {
	t.Helper()
	ops := map[string]bool{}
	for _, r := range routesIn(t, gatewayGlob) {
		ops[r] = true
	}
	return ops
}

// routesIn returns the route patterns registered in the files glob names.
func routesIn(t *testing.T, glob string) []string {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a route registered with a pattern that is not a literal", fset.Position(call.Pos()))
				return true
			}
			p, _ := strconv.Unquote(lit.Value)
			out = append(out, p)
			return true
		})
	}
	return out
}

// compareRoutes lists the differences between the registered route
// patterns and the document's operations.
func compareRoutes(routes []string, ops map[string]operation) []string {
	var diffs []string
	reg := map[string]bool{}
	for _, r := range routes {
		method, path, ok := strings.Cut(r, " ")
		if !ok || !slices.Contains(httpMethods, strings.ToLower(method)) {
			diffs = append(diffs, fmt.Sprintf("route %q has no method: register \"METHOD /path\"", r))
			continue
		}
		path = strings.TrimSuffix(path, "{$}")
		reg[method+" "+path] = true
		if _, ok := ops[method+" "+path]; !ok {
			diffs = append(diffs, fmt.Sprintf("route %s %s is served but not in openapi.yaml", method, path))
		}
	}
	for op := range ops {
		if !reg[op] {
			diffs = append(diffs, fmt.Sprintf("openapi.yaml documents %s, which no route serves", op))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// TestOpenAPIMatchesRoutes: every route the server registers is in
// openapi.yaml with its method, and the document has no operation the
// server does not serve; the live mux takes each documented operation to
// the same pattern.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	routes := registeredRoutes(t)
	if len(routes) < 10 {
		t.Fatalf("found only %d routes in the source: %v", len(routes), routes)
	}
	ops := loadOpenAPI(t).operations(t)
	for _, d := range compareRoutes(routes, ops) {
		t.Error(d)
	}
	// The source's patterns are what the server really routes (the
	// gateway's are its own mux's).
	e := newEnv(t)
	mux := e.server.mux
	gw := gatewayOps(t)
	for op := range ops {
		if gw[op] {
			continue
		}
		method, path, _ := strings.Cut(op, " ")
		r := httptest.NewRequest(method, samplePath(path, nil), nil)
		if _, pattern := mux.Handler(r); pattern != op {
			t.Errorf("%s: the server routes %s %s to %q", op, method, r.URL.Path, pattern)
		}
	}
}

// TestOpenAPICheckBites: the comparison catches a route left out of the
// document, an operation the server does not serve, and a status a
// handler returns that its operation does not list.
func TestOpenAPICheckBites(t *testing.T) {
	t.Parallel()
	routes := registeredRoutes(t)
	// Differences beyond those the document has today.
	baseline := compareRoutes(routes, loadOpenAPI(t).operations(t))
	extra := func(diffs []string) []string {
		return slices.DeleteFunc(diffs, func(d string) bool { return slices.Contains(baseline, d) })
	}
	ops := loadOpenAPI(t).operations(t)
	delete(ops, "POST /v1/deposits")
	got := extra(compareRoutes(append(slices.Clone(routes), "GET /v1/undocumented"), ops))
	want := []string{
		"route GET /v1/undocumented is served but not in openapi.yaml",
		"route POST /v1/deposits is served but not in openapi.yaml",
	}
	if !slices.Equal(got, want) {
		t.Errorf("missing routes: got %q, want %q", got, want)
	}
	unserved := slices.DeleteFunc(slices.Clone(routes), func(r string) bool { return r == "POST /v1/keys" })
	if got := extra(compareRoutes(unserved, loadOpenAPI(t).operations(t))); !slices.Equal(got, []string{"openapi.yaml documents POST /v1/keys, which no route serves"}) {
		t.Errorf("unserved operation: %q", got)
	}
	if got := compareRoutes([]string{"/v1/anything"}, nil); len(got) != 1 || !strings.Contains(got[0], "has no method") {
		t.Errorf("a route without a method: %q", got)
	}
	op := loadOpenAPI(t).operations(t)["POST /v1/deposits"]
	delete(op.Responses, "409")
	if op.documents(409) || !op.documents(201) {
		t.Error("a status left out of an operation's responses is not caught")
	}
}

// samplePath fills a documented path's parameters: values from vals by
// parameter name, else a well-formed sample.
func samplePath(path string, vals map[string]string) string {
	return pathParam.ReplaceAllStringFunc(path, func(m string) string {
		name := m[1 : len(m)-1]
		if v, ok := vals[name]; ok {
			return v
		}
		switch name {
		case "period":
			return "2026-11-15"
		case "id":
			if strings.Contains(path, "/accounts/") {
				return "client:acme"
			}
			if strings.Contains(path, "/jobs/") {
				return strings.Repeat("ab", 32)
			}
			return "acme"
		}
		return "x"
	})
}

var pathParam = regexp.MustCompile(`\{[a-z_]+\}`)

// probe is one request the status test sends.
type probe struct {
	key, idem, body string
	vals            map[string]string
}

// TestOpenAPIDocumentsEveryStatus drives every documented operation with
// requests that provoke the statuses a handler returns — no key, a bad
// key, each role's key, malformed and oversized bodies, a missing
// Idempotency-Key, unknown and malformed path parameters, and requests that
// succeed — and checks that each status seen is in that operation's
// responses. The probes are generic, so a route added later is driven
// too.
func TestOpenAPIDocumentsEveryStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	solver, _, err := e.keys.Issue(ctx, "gpu1", auth.RoleSolver, 0)
	if err != nil {
		t.Fatal(err)
	}
	// State for the success paths: funds, a job, a statement.
	if c, b := e.do("POST", "/v1/deposits", e.operator, "s1", `{"bank_ref":"s1","account":"client:acme","amount_micro_usd":500000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	c, b := e.do("POST", "/v1/jobs", e.client, "s2", jobBody(t, 1, 3_000_000))
	if c != 201 {
		t.Fatalf("job: %d %s", c, b)
	}
	jobID := regexp.MustCompile(`"id":"([0-9a-f]{64})"`).FindStringSubmatch(string(b))[1]
	good := map[string]string{"POST /v1/deposits": `{"bank_ref":"s3","account":"client:acme","amount_micro_usd":5}`,
		"POST /v1/jobs": jobBody(t, 2, 3_000_000), "POST /v1/keys": `{"subject":"acme2","role":"client"}`,
		"POST /v1/payouts/runs": `{"period":"2026-11-15"}`, "POST /v1/quote": jobBody(t, 3, 3_000_000),
		"POST /v1/jobs/{id}/cancel": `{}`,
		"PUT /v1/parties/{id}/bank": `{"holder_name":"GPU ONE","routing_number":"121042882","account_number":"12345","account_type":"checking"}`}

	doc := loadOpenAPI(t)
	ops := doc.operations(t)
	keys := []string{"", "blg_nope_nope", e.operator, e.client, solver}
	// The inference gateway in front of the API, as the coordinator
	// serves them.
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	gw := gateway.New(e.svc, e.keys, h, nil)
	defer gw.Close()
	gsrv := httptest.NewServer(gw.Wrap(e.server))
	defer gsrv.Close()
	base := gsrv.URL
	n := 0
	seen := map[string][]int{}
	defer func() {
		for _, name := range slices.Sorted(maps.Keys(seen)) {
			st := seen[name]
			slices.Sort(st)
			t.Logf("%-36s %v", name, slices.Compact(st))
		}
	}()
	names := slices.Sorted(maps.Keys(ops)) // one order: the job is cancelled when its turn comes
	for _, name := range names {
		op := ops[name]
		method, path, _ := strings.Cut(name, " ")
		// Path parameters that exist: the job, the solver's party, the
		// client's account.
		known := map[string]string{"id": jobID, "period": "2026-11-15"}
		switch {
		case strings.HasPrefix(path, "/v1/parties/"):
			known["id"] = "gpu1"
		case strings.HasPrefix(path, "/v1/accounts/"):
			known["id"] = "client:acme"
		}
		var probes []probe
		for _, k := range keys {
			probes = append(probes, probe{key: k, idem: "p", body: good[name]}, probe{key: k, idem: "p", body: good[name], vals: known})
		}
		if method == "POST" || method == "PUT" {
			for _, k := range keys[2:] {
				probes = append(probes,
					probe{key: k, body: `{}`, vals: known},
					probe{key: k, idem: "bad", body: `{"nope":1}`, vals: known},
					probe{key: k, idem: "empty", body: ``, vals: known},
					probe{key: k, idem: "big", body: strings.Repeat(" ", MaxBodyBytes+1), vals: known})
			}
		}
		if strings.Contains(path, "{") {
			for _, k := range keys[2:] {
				probes = append(probes, probe{key: k, idem: "q", body: `{}`, vals: map[string]string{"id": "zz", "period": "zz"}})
			}
		}
		if method == "GET" && strings.Contains(path, "/v1/") {
			probes = append(probes, probe{key: e.operator, vals: known, body: ""})
		}
		for _, p := range probes {
			urls := []string{base + samplePath(path, p.vals)}
			if name == "GET /v1/accounts/{id}/statement" || name == "GET /v1/jobs" {
				urls = append(urls, urls[0]+"?limit=0") // a bad page
			}
			for _, u := range urls {
				req, _ := http.NewRequest(method, u, strings.NewReader(p.body))
				if p.key != "" {
					req.Header.Set("Authorization", "Bearer "+p.key)
				}
				if p.idem != "" {
					req.Header.Set("Idempotency-Key", p.idem+strconv.Itoa(n))
				}
				n++
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				resp, err := http.DefaultClient.Do(req.WithContext(rctx))
				if err != nil {
					cancel()
					t.Fatalf("%s: %v", name, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				cancel()
				seen[name] = append(seen[name], resp.StatusCode)
				if !op.documents(resp.StatusCode) {
					t.Errorf("%s answered %d (key %.8q, body %.20q), which openapi.yaml does not list for it", name, resp.StatusCode, p.key, p.body)
				}
			}
		}
	}
}

// TestOpenAPILint runs Redocly's linter (redocly.yaml: the recommended
// rules) on the document when $REDOCLY names the redocly binary (npm
// install @redocly/cli@2.12.0; .ci/run lints with that pinned version
// itself); otherwise it skips, since the linter needs Node and takes ~10 s.
func TestOpenAPILint(t *testing.T) {
	t.Parallel()
	bin := os.Getenv("REDOCLY")
	if bin == "" {
		t.Skip("REDOCLY unset: set it to a redocly binary to lint openapi.yaml (CI lints in .ci/run)")
	}
	out, err := exec.Command(bin, "lint", "--config", "redocly.yaml", "--format", "stylish", "openapi.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint openapi.yaml: %v\n%s", err, out)
	}
}
