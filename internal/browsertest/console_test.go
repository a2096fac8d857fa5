package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/beluga-compute/beluga/internal/cli"
	"github.com/beluga-compute/beluga/internal/devnet"
)

// chromium finds a Chromium binary, "" if none.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab is one isolated browser session (its own cookies).
type tab struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v (at %s, showing %.400q)", err, b.location(), b.body())
	}
}

// body is the page's text, for failure messages.
func (b *tab) body() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

func (b *tab) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// eval evaluates a JavaScript expression.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %.60q: %v (at %s)", expr, err, b.location())
	}
	return v
}

// text is the text of the element sel.
func (b *tab) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v (at %s)", sel, err, b.location())
	}
	return s
}

// shoot writes full-page screenshots of the page at 1280×800 and, as a
// phone, 390×844.
func (b *tab) shoot(name string) {
	b.t.Helper()
	for _, vp := range []struct {
		w, h   int64
		mobile bool
	}{{390, 844, true}, {1280, 800, false}} {
		var opts []chromedp.EmulateViewportOption
		if vp.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		b.do(chromedp.EmulateViewport(vp.w, vp.h, opts...))
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			b.t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(b.dir, fmt.Sprintf("%s-%dx%d.png", name, vp.w, vp.h)), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// a11yScript lists the page's accessibility faults: a control without a
// label (label[for], aria-label, aria-labelledby, or a button's or link's
// own text), and text whose contrast with its effective background
// (computed styles, translucent backgrounds composited up the tree) is
// under 4.5:1.
const a11yScript = `(() => {
  const parse = c => { const m = /rgba?\(([^)]+)\)/.exec(c); if (!m) return null; const p = m[1].split(',').map(parseFloat); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const over = (top, base) => ({r: top.r * top.a + base.r * (1 - top.a), g: top.g * top.a + base.g * (1 - top.a), b: top.b * top.a + base.b * (1 - top.a), a: 1});
  const bgOf = el => { const layers = []; for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; } } let base = {r: 255, g: 255, b: 255, a: 1}; for (let i = layers.length - 1; i >= 0; i--) base = over(layers[i], base); return base; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg')) continue;
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden' || cs.display === 'none') continue;
    const r = el.getBoundingClientRect(); if (r.width === 0 || r.height === 0) continue;
    const bg = bgOf(el), fg = over(parse(cs.color), bg);
    const l1 = lum(fg), l2 = lum(bg), ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < 4.5) bad.push('contrast ' + ratio.toFixed(2) + ' of ' + el.tagName + ' "' + el.textContent.trim().slice(0, 40) + '"');
  }
  for (const el of document.querySelectorAll('input, select, textarea, button, a[href]')) {
    if (el.type === 'hidden') continue;
    let name = '';
    if (el.id) { const l = document.querySelector('label[for="' + el.id + '"]'); if (l) name = l.textContent.trim(); }
    name = name || (el.getAttribute('aria-label') || '').trim();
    if (!name && el.getAttribute('aria-labelledby')) name = el.getAttribute('aria-labelledby').split(' ').map(i => (document.getElementById(i) || {}).textContent || '').join(' ').trim();
    if (!name && (el.tagName === 'BUTTON' || el.tagName === 'A')) name = el.textContent.trim();
    if (!name) bad.push('unlabelled ' + el.tagName + ' ' + (el.id || el.name || el.outerHTML.slice(0, 60)));
  }
  return bad;
})()`

// a11y fails the test for each fault on the page, and checks that Tab
// alone reaches every control, in order.
func (b *tab) a11y(page string) {
	b.t.Helper()
	for _, f := range eval[[]string](b, a11yScript) {
		b.t.Errorf("%s: %s", page, f)
	}
	n := eval[int](b, `(() => {
	  const f = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, [tabindex="0"]')].filter(e => {
	    const cs = getComputedStyle(e), r = e.getBoundingClientRect();
	    return cs.visibility !== 'hidden' && cs.display !== 'none' && !e.disabled && (r.width > 0 || r.height > 0) && !(e.type === 'radio' && !e.checked);
	  });
	  f.forEach((e, i) => e.dataset.fi = i);
	  if (document.activeElement) document.activeElement.blur();
	  window.scrollTo(0, 0);
	  return f.length;
	})()`)
	seen := map[string]bool{}
	last := -1
	for range n + 1 {
		b.do(chromedp.KeyEvent(kb.Tab))
		fi := eval[string](b, `(document.activeElement && document.activeElement.dataset.fi) || ""`)
		if fi == "" {
			continue
		}
		var i int
		fmt.Sscan(fi, &i)
		if i < last && len(seen) < n {
			b.t.Errorf("%s: Tab went back from control %d to %d", page, last, i)
		}
		seen[fi], last = true, i
	}
	if len(seen) != n {
		b.t.Errorf("%s: Tab reached %d of %d controls", page, len(seen), n)
	}
}

// TestConsoleJourneys drives each role's path through the console in
// headless Chromium against a devnet (coordinator, three solvers, two
// verifiers) serving it: a visitor signs up by keyboard alone, is refused
// bad input next to the field, gets a quote, cannot post unfunded; the
// operator refuses a negative deposit and records the client's; the
// client posts, watches the job live to its audit outcome, downloads the
// weights and opens (and prints) the signed report; a solver sees its
// bond, earnings and its install command with its key, and is refused a
// negative ask; a verifier sees its audits and earnings.
func TestConsoleJourneys(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no Chromium installed (apt-get install chromium): the browser tests are skipped")
	}
	if testing.Short() {
		t.Skip("-short: the browser tests are skipped")
	}
	dir := os.Getenv("BELUGA_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	// The network, serving the console.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	type ready struct {
		base  string
		links []devnet.Link
	}
	readyc := make(chan ready, 1)
	done := make(chan error, 1)
	go func() {
		_, err := devnet.Run(ctx, devnet.Config{Console: "127.0.0.1:0", Steps: 60, Timeout: 3 * time.Minute,
			ConsoleReady: func(base string, links []devnet.Link) { readyc <- ready{base, links} }})
		done <- err
	}()
	var net ready
	select {
	case net = <-readyc:
	case err := <-done:
		t.Fatalf("devnet ended before serving the console: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("devnet did not serve the console in 3 minutes")
	}
	defer func() { stop(); <-done }()
	link := map[string]string{}
	var solvers, verifiers []string
	for _, l := range net.links {
		switch l.Role {
		case "solver":
			solvers = append(solvers, l.URL)
		case "verifier":
			verifiers = append(verifiers, l.URL)
		default:
			link[l.Role] = l.URL
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	newTab := func() *tab {
		c, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		// The tab is created by a first action on its own context (one on a
		// derived context would close it when that context ends).
		if err := chromedp.Do(c, chromedp.EmulateViewport(1280, 800)); err != nil {
			t.Fatalf("open a tab: %v", err)
		}
		b := &tab{t: t, ctx: c, dir: dir}
		return b
	}

	// A visitor: the landing page, then sign-up by keyboard alone.
	v := newTab()
	v.do(chromedp.Navigate(net.base+"/"), chromedp.WaitVisible(chromedp.CSS(".cards")))
	v.a11y("landing")
	v.shoot("landing")
	v.do(chromedp.Focus(chromedp.CSS(`a[href="/signup"]`)), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`form[action="/signup"] button`)))
	v.a11y("signup")
	v.do(chromedp.Focus(chromedp.CSS(`form[action="/signup"] button`)), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("funding-ref")))
	ref := v.text("#funding-ref")
	if !strings.HasPrefix(ref, "BELUGA-C") {
		t.Fatalf("funding reference %q", ref)
	}
	client := "c" + strings.ToLower(strings.TrimPrefix(ref, "BELUGA-C"))
	v.a11y("welcome")
	v.shoot("welcome")
	v.do(chromedp.Click(chromedp.CSS(`a[href="/client"]`)), chromedp.WaitVisible(chromedp.ID("steps")))
	// Bad input: negative steps, shown next to the field; nothing posted.
	v.do(chromedp.SetValue(chromedp.ID("steps"), "-5"), chromedp.Click(chromedp.CSS(`form[action="/client/quote"] button`)), chromedp.WaitVisible(chromedp.ID("steps-err")))
	if msg := v.text("#steps-err"); !strings.Contains(msg, "whole number") {
		t.Errorf("negative steps: %q", msg)
	}
	v.a11y("client, refused")
	v.shoot("client-refused")
	quote := func() {
		v.do(chromedp.SetValue(chromedp.ID("steps"), "1500"), chromedp.SetValue(chromedp.ID("max_price"), "0.2"),
			chromedp.Click(chromedp.CSS(`form[action="/client/quote"] button`)), chromedp.WaitVisible(chromedp.ID("quote-total")))
	}
	quote()
	v.a11y("quote")
	v.shoot("quote")
	v.do(chromedp.Click(chromedp.CSS(`form[action="/client/jobs"] button`)), chromedp.WaitVisible(chromedp.CSS(`p.err`)))
	if msg := v.text("p.err"); !strings.Contains(msg, "do not cover") {
		t.Errorf("unfunded post: %q", msg)
	}

	// The operator: a negative deposit is refused, the client's recorded.
	op := newTab()
	op.do(chromedp.Navigate(link["operator"]), chromedp.WaitVisible(chromedp.ID("invariants")))
	if s := op.text("#invariants"); !strings.Contains(s, "Invariants hold") {
		t.Errorf("operator: %q", s)
	}
	op.a11y("operator")
	op.shoot("operator")
	deposit := func(amount string) {
		op.do(chromedp.SetValue(chromedp.ID("dep_account"), "client:"+client), chromedp.SetValue(chromedp.ID("dep_amount"), amount),
			chromedp.SetValue(chromedp.ID("dep_ref"), "wire-"+ref), chromedp.Click(chromedp.CSS(`form[action="/operator/deposit"] button`)),
			chromedp.WaitVisible(chromedp.ID("invariants")))
	}
	deposit("-5")
	if msg := op.text("#dep_amount-err"); !strings.Contains(msg, "negative") {
		t.Errorf("negative deposit: %q", msg)
	}
	deposit("50")
	if msg := op.text(".flash"); !strings.Contains(msg, "Deposit recorded") {
		t.Errorf("deposit: %q", msg)
	}

	// The client again: funded, it posts and watches the job to its end.
	v.do(chromedp.Navigate(net.base+"/client"), chromedp.WaitVisible(chromedp.ID("funds")))
	if s := v.text("#funds"); s != "$50.00" {
		t.Errorf("funds after the deposit: %q", s)
	}
	quote()
	v.do(chromedp.Click(chromedp.CSS(`form[action="/client/jobs"] button`)), chromedp.WaitVisible(chromedp.ID("live")))
	// The live region is refreshed by the page's script until the audit
	// outcome is in.
	wctx, wcancel := context.WithTimeout(v.ctx, 90*time.Second)
	err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.ID("outcome")))
	wcancel()
	if err != nil {
		t.Fatalf("the job page never showed the audit outcome: %v; it shows %q", err, v.text("#live"))
	}
	if s := v.text("#outcome"); !strings.Contains(s, "settled") {
		t.Errorf("outcome: %q", s)
	}
	if n := eval[int](v, `document.querySelectorAll('#live polyline.loss').length`); n != 1 {
		t.Errorf("no loss curve on the finished job's page")
	}
	v.a11y("job")
	v.shoot("job")
	size := eval[int](v, `fetch(document.getElementById('weights').href).then(r => r.ok ? r.arrayBuffer().then(b => b.byteLength) : -r.status)`)
	if size <= 0 {
		t.Errorf("weights download: %d", size)
	}
	v.do(chromedp.Click(chromedp.ID("report")), chromedp.WaitVisible(chromedp.ID("verified")))
	if s := v.text("#report-outcome"); s != "settled" {
		t.Errorf("report outcome %q", s)
	}
	v.a11y("report")
	v.shoot("report")
	pdf, err := chromedp.Run(v.ctx, chromedp.PrintToPDF())
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Errorf("print the report to PDF: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "report.pdf"), pdf, 0o644)

	// A solver: bond, earnings, its command with its key, a refused ask.
	s := newTab()
	s.do(chromedp.Navigate(solvers[0]), chromedp.WaitVisible(chromedp.ID("earnings")))
	if e := s.text("#earnings"); e == "$0.00" || !strings.HasPrefix(e, "$") {
		t.Errorf("solver earnings %q", e)
	}
	if c := s.text("#cmd-Linux"); !strings.Contains(c, "--api-key blg_") || !strings.Contains(c, "/p2p/") {
		t.Errorf("solver command %q", c)
	}
	s.a11y("solver")
	s.shoot("solver")
	s.do(chromedp.Click(chromedp.ID("price-own")), chromedp.SetValue(chromedp.ID("ask"), "-1"),
		chromedp.Click(chromedp.CSS(`form[action="/solver#price-h"] button`)), chromedp.WaitVisible(chromedp.ID("ask-err")))
	if msg := s.text("#ask-err"); !strings.Contains(msg, "negative") {
		t.Errorf("negative ask: %q", msg)
	}
	s.do(chromedp.Navigate(net.base+"/solver/start"), chromedp.WaitVisible(chromedp.ID("cmd-Windows")))
	s.a11y("solver start")
	s.shoot("solver-start")

	// A new GPU owner signs up for itself: the start page's Linux line,
	// run as printed (its --dir a fresh one), gets a solver key that logs
	// in to the new solver's dashboard.
	line := s.text("#signup-Linux")
	i := strings.Index(line, `/bin/beluga" `)
	j := strings.Index(line, " --dir ")
	if i < 0 || j < i {
		t.Fatalf("sign-up command %q", line)
	}
	sdir := t.TempDir()
	var out, errb bytes.Buffer
	if code := cli.Main(append(strings.Fields(line[i+len(`/bin/beluga" `):j]), "--dir", sdir), nil, &out, &errb); code != 0 {
		t.Fatalf("%s: exit %d: %s", line, code, errb.String())
	}
	key, err := os.ReadFile(filepath.Join(sdir, "api.key"))
	if err != nil || !strings.Contains(out.String(), "BELUGA-S") {
		t.Fatalf("sign-up saved no key (%v) or printed no bond reference:\n%s", err, out.String())
	}
	n := newTab()
	n.do(chromedp.Navigate(net.base+"/login"), chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), strings.TrimSpace(string(key))), chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.ID("earnings")))
	party := strings.Fields(out.String())[2]
	if h := n.text("h1"); !strings.Contains(h, party) {
		t.Errorf("signed-up solver's page %q, party line %q", h, strings.SplitN(out.String(), "\n", 2)[0])
	}
	if ref := n.text("#bond-ref"); ref != "BELUGA-"+strings.ToUpper(party) {
		t.Errorf("signed-up solver's bond reference %q", ref)
	}

	// A verifier: its audits and earnings.
	w := newTab()
	w.do(chromedp.Navigate(verifiers[0]), chromedp.WaitVisible(chromedp.ID("earnings")))
	w.a11y("verifier")
	w.shoot("verifier")
	t.Logf("screenshots in %s", dir)
}
