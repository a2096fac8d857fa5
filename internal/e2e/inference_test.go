package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// httpText GETs url with the bearer key and returns the status and body.
func httpText(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// httpJSON sends a request to the gateway and decodes the JSON answer
// into out (when not nil); it returns the status.
func httpJSON(t *testing.T, method, url, key string, body any, out any) (int, http.Header) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %q", method, url, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, resp.Header
}

type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Receipt string `json:"receipt"`
	Choices []struct {
		Text         string `json:"text"`
		FinishReason string `json:"finish_reason"`
		Message      struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Usage struct {
		Prompt     int `json:"prompt_tokens"`
		Completion int `json:"completion_tokens"`
	} `json:"usage"`
	Error *struct {
		Type string `json:"type"`
		Code string `json:"code"`
	} `json:"error"`
}

// inferenceNet is a running inference network: a coordinator with a
// published model fortunes-gpt (runA, 1000/2000 µ$ per 1k tokens) served
// by solvers 1 and 2, solver3 serving another model (runB), and a client
// acme with $1.
type inferenceNet struct {
	j          *journey
	dir        string
	runA, runB string
	solvers    []*proc
	clientKey  string
	base       string
}

func startInferenceNet(t *testing.T) *inferenceNet {
	if testing.Short() {
		t.Skip("starts the real binary as separate processes (~30 s)")
	}
	const corpus = "/usr/share/games/fortunes"
	if _, err := os.Stat(filepath.Join(corpus, "fortunes")); err != nil {
		t.Skipf("the fortunes corpus is not installed (apt-get install fortunes): %v", err)
	}
	j := newJourney(t)
	dir := j.dir
	// Two trained models: the one published, and another.
	runA, runB := filepath.Join(dir, "runA"), filepath.Join(dir, "runB")
	run(t, j.bin, nil, "train", "--example", "gpt", "--steps", "3", "--out", runA, "--quiet")
	run(t, j.bin, nil, "train", "--example", "gpt", "--steps", "2", "--out", runB, "--quiet")
	// Each solver holds its own copy of the weights (a store is one
	// process's).
	runA2, runA3 := filepath.Join(dir, "runA2"), filepath.Join(dir, "runA3")
	for _, d := range []string{runA2, runA3} {
		if out, err := exec.Command("cp", "-r", runA, d).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	j.coordinator("--inference-verify-ppm", "1000000") // every receipt checked
	run(t, j.bin, []string{"BELUGA_COORDINATOR=" + j.http}, "model", "publish", "--api-key", j.opKey, "--run", runA,
		"--id", "fortunes-gpt", "--input-price", "1000", "--output-price", "2000")
	spawn := func(name, model string) *proc {
		return start(t, dir, name, j.bin, nil, "solver", "--coordinator", j.p2pAddr, "--dir", filepath.Join(dir, name),
			"--listen", "/ip4/127.0.0.1/tcp/0", "--no-idle-check", "--serve-model", model, "--inference-slots", "2")
	}
	solvers := []*proc{spawn("solver1", runA), spawn("solver2", runA2)}
	solver3 := spawn("solver3", runB)
	verifier := start(t, dir, "verifier", j.bin, nil, "verifier", "--coordinator", j.p2pAddr, "--dir", filepath.Join(dir, "verifier"),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--verify-model", runA3)
	// Only bonded solvers are routed requests, only enrolled and bonded
	// verifiers check them.
	for _, p := range append(solvers, solver3) {
		j.enrol(p, "solver", "20")
	}
	j.enrol(verifier, "verifier", "20")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("coordinator:\n%s\nsolver1:\n%s", j.coord.output(), solvers[0].output())
		}
	})
	clientKey := strings.TrimSpace(j.operator("key", "--role", "client", "--subject", "acme"))
	j.operator("deposit", "--account", "client:acme", "--usd", "1", "--bank-ref", "wire-acme-1")
	n := &inferenceNet{j: j, dir: dir, runA: runA, runB: runB, solvers: solvers, clientKey: clientKey, base: j.http + "/v1"}
	var models struct {
		Data []struct {
			ID      string `json:"id"`
			Solvers int    `json:"solvers"`
		} `json:"data"`
	}
	until(t, 30*time.Second, "both solvers of fortunes-gpt announced", func() bool {
		httpJSON(t, "GET", n.base+"/models", clientKey, nil, &models)
		return len(models.Data) == 1 && models.Data[0].ID == "fortunes-gpt" && models.Data[0].Solvers == 2
	})
	return n
}

// TestInferenceGateway: the coordinator, two solvers serving a trained GPT,
// a third serving another model and a verifier, each its own process. Through the
// OpenAI-compatible API a client lists the models, gets a completion whose
// receipt `beluga verify-inference` re-checks with the model's run
// directory and the verifier process passes, and a streamed chat
// completion; a solver killed with SIGKILL
// mid-stream is replaced by the other, the stream completes with the same
// bytes and the request is billed once; bad requests get OpenAI error
// objects and change no balance; the client's funds fall by exactly the
// requests' costs.
func TestInferenceGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary as separate processes (~30 s)")
	}
	n := startInferenceNet(t)
	j, dir, runA, runB, solvers, clientKey, base := n.j, n.dir, n.runA, n.runB, n.solvers, n.clientKey, n.base
	funds := func() int64 {
		var me struct {
			Funds int64 `json:"funds_micro_usd"`
			Held  int64 `json:"funds_held_micro_usd"`
		}
		httpJSON(t, "GET", base+"/me", clientKey, nil, &me)
		if me.Held != 0 {
			t.Fatalf("%d µ$ still held", me.Held)
		}
		return me.Funds
	}
	spent := int64(0)
	cost := func(c completion) int64 { return int64(c.Usage.Prompt) + 2*int64(c.Usage.Completion) } // 1000 and 2000 µ$ per 1k, rounded up per request
	start0 := funds()

	// A completion and its receipt, checked offline with the model.
	req := map[string]any{"model": "fortunes-gpt", "prompt": "Q: What is a whale?\nA:", "max_tokens": 60, "temperature": 0.8, "seed": 7}
	var c1 completion
	if st, _ := httpJSON(t, "POST", base+"/completions", clientKey, req, &c1); st != 200 || c1.Object != "text_completion" || c1.Usage.Completion != 60 || c1.Choices[0].FinishReason != "length" {
		t.Fatalf("completion: %d %+v", st, c1)
	}
	spent += cost(c1)
	var rec json.RawMessage
	if st, _ := httpJSON(t, "GET", base+"/receipts/"+c1.Receipt, clientKey, nil, &rec); st != 200 {
		t.Fatalf("receipt: %d %s", st, rec)
	}
	recFile := filepath.Join(dir, "receipt.json")
	os.WriteFile(recFile, rec, 0o644)
	if out := run(t, j.bin, nil, "verify-inference", recFile, "--run", runA); !strings.Contains(out, "verified") {
		t.Fatalf("verify-inference: %s", out)
	}
	if _, err := runErr(j.bin, nil, "verify-inference", recFile, "--run", runB); err == nil {
		t.Fatal("the receipt verified against another model")
	}
	// The verifier process re-checked it too (every receipt is sampled here).
	j.coord.wait(regexp.MustCompile(`inference receipt verified.*receipt=`+c1.Receipt+`.*verdict=pass`), 30*time.Second)

	// A streamed chat completion, with a solver killed mid-stream: the
	// same bytes as the non-streamed reference, billed once.
	chat := map[string]any{"model": "fortunes-gpt", "messages": []map[string]string{{"role": "user", "content": "Tell me a fortune."}},
		"max_tokens": 90, "temperature": 0.9, "seed": 3}
	var ref completion
	if st, _ := httpJSON(t, "POST", base+"/chat/completions", clientKey, chat, &ref); st != 200 || ref.Object != "chat.completion" {
		t.Fatalf("chat: %d %+v", st, ref)
	}
	spent += cost(ref)
	chat["stream"] = true
	js, _ := json.Marshal(chat)
	hreq, _ := http.NewRequest("POST", base+"/chat/completions", bytes.NewReader(js))
	hreq.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %v %v", err, resp)
	}
	sc := bufio.NewScanner(resp.Body)
	var text strings.Builder
	killed, done := false, false
	var last struct {
		ID      string         `json:"id"`
		Receipt string         `json:"receipt"`
		Usage   map[string]int `json:"usage"`
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
	}
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			break
		}
		last.Choices, last.Usage = nil, nil
		if err := json.Unmarshal([]byte(line), &last); err != nil || len(last.Choices) != 1 {
			t.Fatalf("chunk %q: %v", line, err)
		}
		text.WriteString(last.Choices[0].Delta.Content)
		if !killed && text.Len() > 0 {
			// Kill the solver generating this request.
			re := regexp.MustCompile(`inference started.*request=` + regexp.QuoteMeta(last.ID))
			for _, s := range solvers {
				if re.MatchString(s.output()) {
					s.stop(syscall.SIGKILL)
					killed = true
				}
			}
			if !killed {
				t.Fatalf("no solver logged request %s", last.ID)
			}
		}
	}
	resp.Body.Close()
	if !done || !killed {
		t.Fatalf("stream ended without [DONE] (%v) or no solver was killed (%v)", done, killed)
	}
	if text.String() != ref.Choices[0].Message.Content {
		t.Fatalf("streamed %q after the kill, the reference %q", text.String(), ref.Choices[0].Message.Content)
	}
	spent += int64(last.Usage["prompt_tokens"]) + 2*int64(last.Usage["completion_tokens"])
	if !strings.Contains(j.coord.output(), "inference retried elsewhere") {
		t.Fatal("the coordinator did not log the retry")
	}

	// Bad requests: OpenAI error objects, the right status, no charge.
	before := funds()
	for _, c := range []struct {
		body   any
		key    string
		status int
		code   string
	}{
		{map[string]any{"model": "gpt-4", "prompt": "hi"}, clientKey, 404, "model_not_found"},
		{`{"model": "fortunes-gpt", "prompt": `, clientKey, 400, "invalid_json"},
		{map[string]any{"model": "fortunes-gpt", "prompt": strings.Repeat("x", 200)}, clientKey, 400, "context_length_exceeded"},
		{map[string]any{"model": "fortunes-gpt", "prompt": "hi", "max_tokens": -3}, clientKey, 400, "invalid_value"},
		{map[string]any{"model": "fortunes-gpt", "prompt": "hi"}, "blg_nope", 401, "invalid_api_key"},
	} {
		var e completion
		if st, _ := httpJSON(t, "POST", base+"/completions", c.key, c.body, &e); st != c.status || e.Error == nil || e.Error.Code != c.code {
			t.Errorf("%v: %d %+v, want %d %s", c.body, st, e.Error, c.status, c.code)
		}
	}
	poor := strings.TrimSpace(j.operator("key", "--role", "client", "--subject", "poor"))
	var e completion
	if st, _ := httpJSON(t, "POST", base+"/completions", poor, req, &e); st != 402 || e.Error == nil || e.Error.Code != "insufficient_quota" {
		t.Errorf("no funds: %d %+v", st, e.Error)
	}
	if got := funds(); got != before {
		t.Fatalf("bad requests changed the funds: %d → %d", before, got)
	}
	if got := funds(); start0-got != spent {
		t.Fatalf("funds fell by %d µ$, the requests cost %d", start0-got, spent)
	}
}
