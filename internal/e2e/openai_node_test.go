package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openaiNodeVersion is the official OpenAI client for node the test
// installs (npm, pinned).
const openaiNodeVersion = "4.95.0"

// openaiScript lists the models, gets a completion and a streamed chat
// completion with the official client, and prints what it got as JSON.
const openaiScript = `
const OpenAI = require('openai');
const client = new OpenAI({ apiKey: process.env.KEY, baseURL: process.env.BASE, maxRetries: 0 });
(async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  const c = await client.completions.create({ model: 'fortunes-gpt', prompt: 'The whale ', max_tokens: 24, temperature: 0.8, seed: 1 });
  const stream = await client.chat.completions.create({ model: 'fortunes-gpt', messages: [{ role: 'user', content: 'Say something.' }],
    max_tokens: 40, temperature: 0.7, seed: 2, stream: true });
  let streamed = '', finish = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    const ch = chunk.choices[0];
    if (ch && ch.delta && ch.delta.content) streamed += ch.delta.content;
    if (ch && ch.finish_reason) finish = ch.finish_reason;
  }
  let notFound = null;
  try { await client.completions.create({ model: 'no-such-model', prompt: 'x' }); } catch (e) { notFound = { status: e.status, code: e.code }; }
  console.log(JSON.stringify({ ids, text: c.choices[0].text, finish: c.choices[0].finish_reason, usage: c.usage, streamed, streamFinish: finish, chunks, notFound }));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestOpenAINodeClient: the official OpenAI client for node (npm openai,
// pinned), pointed at the gateway of a running network, lists the models,
// gets a completion and a streamed chat completion, and sees a missing
// model as a 404 with code model_not_found. Skipped where node or npm is
// missing or the npm registry cannot be reached.
func TestOpenAINodeClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary as separate processes and runs node (~40 s)")
	}
	node, err1 := exec.LookPath("node")
	npm, err2 := exec.LookPath("npm")
	if err1 != nil || err2 != nil {
		t.Skip("node and npm are not installed")
	}
	js := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--silent", "openai@"+openaiNodeVersion)
	install.Dir = js
	if out, err := install.CombinedOutput(); err != nil {
		t.Skipf("npm install openai@%s failed (no registry?): %v\n%s", openaiNodeVersion, err, out)
	}
	if err := os.WriteFile(filepath.Join(js, "client.js"), []byte(openaiScript), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startInferenceNet(t)
	cmd := exec.CommandContext(ctx, node, "client.js")
	cmd.Dir = js
	cmd.Env = append(os.Environ(), "KEY="+n.clientKey, "BASE="+n.base)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node client.js: %v\n%s\n%s", err, out, stderr)
	}
	var got struct {
		IDs    []string `json:"ids"`
		Text   string   `json:"text"`
		Finish string   `json:"finish"`
		Usage  struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
			Total      int `json:"total_tokens"`
		} `json:"usage"`
		Streamed     string `json:"streamed"`
		StreamFinish string `json:"streamFinish"`
		Chunks       int    `json:"chunks"`
		NotFound     struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"notFound"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	t.Logf("openai@%s: %s", openaiNodeVersion, strings.TrimSpace(string(out)))
	switch {
	case len(got.IDs) != 1 || got.IDs[0] != "fortunes-gpt":
		t.Errorf("models %v", got.IDs)
	case got.Usage.Prompt != len("The whale ") || got.Usage.Completion != 24 || got.Usage.Total != got.Usage.Prompt+24 || got.Finish != "length":
		t.Errorf("completion: %+v", got)
	case got.Streamed == "" || got.StreamFinish == "" || got.Chunks < 3:
		t.Errorf("streamed chat: %+v", got)
	case got.NotFound.Status != 404 || got.NotFound.Code != "model_not_found":
		t.Errorf("missing model: %+v", got.NotFound)
	}
}
