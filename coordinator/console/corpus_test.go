package console_test

import (
	"bytes"
	"encoding/hex"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// postCorpus posts the job form with fields and a corpus file.
func (b *browser) postCorpus(path string, fields map[string]string, name string, corpus []byte) (int, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("corpus", name)
	fw.Write(corpus)
	mw.Close()
	req, _ := http.NewRequest("POST", b.c.srv.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

// TestCorpusUpload: the client's job form takes a text corpus beside the
// GPT example: the quote is for the GPT trained on it (data source
// "text", its root and size) and the coordinator holds the corpus for the
// daemons. A corpus for an MLP, an empty one, one too small for the model
// and one over 64 MiB get a message next to the corpus field, and nothing
// is stored or changed.
func TestCorpusUpload(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	client := c.browser()
	if code, body := client.post("/signup", nil); code != 201 {
		t.Fatalf("sign-up: %d %.300s", code, body)
	}
	csrf := client.csrf("/client")
	if _, body := client.get("/client"); !strings.Contains(body, `<label for="corpus">`) || !strings.Contains(body, `id="corpus" name="corpus" type="file"`) {
		t.Fatal("the client page has no labelled corpus field")
	}
	gpt := map[string]string{"csrf": csrf, "source": "example", "example": "gpt", "steps": "20"}
	stored := func(b []byte) bool {
		tx, err := dataset.NewText(b)
		if err != nil {
			return false
		}
		r := tx.Root()
		code, _ := c.api("GET", "/v1/data/"+hex.EncodeToString(r[:]), c.opKey, "")
		return code == 200
	}
	before := c.state()
	bad := []struct {
		name   string
		fields map[string]string
		corpus []byte
		want   string
	}{
		{"an MLP", map[string]string{"csrf": csrf, "source": "example", "example": "synthetic", "steps": "20"}, []byte(strings.Repeat("abc ", 500)), "is a GPT"},
		{"empty", gpt, []byte{}, "is empty"},
		{"too small for the model", gpt, []byte("tiny corpus"), "does not make a valid job"},
		{"over 64 MiB", gpt, make([]byte, service.MaxTextUpload+1), "at most 64 MiB"},
	}
	for _, tc := range bad {
		code, body := client.postCorpus("/client/quote", tc.fields, "corpus.txt", tc.corpus)
		if msg := fieldErr(body, "corpus"); code != 422 || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "Nothing was uploaded") {
			t.Errorf("%s: %d, message %q (want %q next to the corpus field)", tc.name, code, msg, tc.want)
		}
		if len(tc.corpus) < 1<<20 && stored(tc.corpus) {
			t.Errorf("%s: the corpus was stored", tc.name)
		}
	}
	if after := c.state(); after != before {
		t.Errorf("a bad corpus changed the coordinator's state")
	}

	corpus := bytes.Repeat([]byte("All that glitters is not gold. "), 200)
	tx, _ := dataset.NewText(corpus)
	r := tx.Root()
	root := hex.EncodeToString(r[:])
	code, body := client.postCorpus("/client/quote", gpt, "shakespeare.txt", corpus)
	if code != 200 || !strings.Contains(body, `id="quote-total"`) {
		t.Fatalf("quote with a corpus: %d %.500s", code, body)
	}
	if !strings.Contains(body, root) || !strings.Contains(body, "&#34;source&#34;: &#34;text&#34;") || !strings.Contains(body, "text-gpt") {
		t.Fatalf("the quoted spec does not name the corpus (root %s): %.2000s", root, body)
	}
	if !stored(corpus) {
		t.Fatal("the coordinator does not hold the uploaded corpus")
	}
}
