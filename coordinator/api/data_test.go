package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// TestTextUpload: PUT /v1/data stores a corpus under its text root (in
// pieces: this one spans three) and answers {root, bytes}; the same bytes
// again give the same answer; GET /v1/data/{root} finds it; the service
// hands the daemons exactly the bytes. Bad uploads store nothing.
func TestTextUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	corpus := bytes.Repeat([]byte("the quick brown fox. "), 60_000) // 1.26 MB
	want, err := dataset.NewText(corpus)
	if err != nil {
		t.Fatal(err)
	}
	wantRoot := want.Root()
	for i := range 2 {
		c, b := e.do("PUT", "/v1/data", e.client, "", string(corpus))
		if c != 200 {
			t.Fatalf("upload %d: %d %s", i, c, b)
		}
		var got TextCorpus
		noErrT(t, json.Unmarshal(b, &got))
		if got.Root != hex.EncodeToString(wantRoot[:]) || got.Bytes != len(corpus) {
			t.Fatalf("upload %d: %+v, want root %x and %d bytes", i, got, wantRoot, len(corpus))
		}
	}
	if c, b := e.do("GET", "/v1/data/"+hex.EncodeToString(wantRoot[:]), e.client, "", ""); c != 200 || !strings.Contains(string(b), `"bytes":1260000`) {
		t.Fatalf("GET: %d %s", c, b)
	}
	got, ok, err := e.svc.Text(wantRoot, len(corpus))
	if err != nil || !ok || !bytes.Equal(got, corpus) {
		t.Fatalf("svc.Text: %d bytes, %v %v", len(got), ok, err)
	}
	if _, ok, _ := e.svc.Text(wantRoot, len(corpus)-1); ok {
		t.Fatal("svc.Text answered for another size")
	}

	for _, tc := range []struct {
		name, method, path, key, body string
		status                        int
	}{
		{"empty corpus", "PUT", "/v1/data", e.client, "", 400},
		{"too large", "PUT", "/v1/data", e.client, strings.Repeat("x", service.MaxTextUpload+1), 413},
		{"operator may not upload", "PUT", "/v1/data", e.operator, "abc", 403},
		{"no key", "PUT", "/v1/data", "", "abc", 401},
		{"bad root", "GET", "/v1/data/xyz", e.client, "", 400},
		{"unknown root", "GET", "/v1/data/" + strings.Repeat("ab", 32), e.client, "", 404},
	} {
		c, b := e.do(tc.method, tc.path, tc.key, "", tc.body)
		if c != tc.status || !strings.Contains(string(b), `"code"`) {
			t.Errorf("%s: %d %s, want %d and a problem", tc.name, c, b, tc.status)
		}
	}
	for _, body := range []string{"abc", ""} {
		tx, err := dataset.NewText([]byte(body))
		if err != nil {
			continue
		}
		if _, ok, _ := e.svc.TextSize(tx.Root()); ok {
			t.Errorf("a refused upload of %q was stored", body)
		}
	}
}
