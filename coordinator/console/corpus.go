package console

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// attachCorpus takes the job form's optional text corpus (the "corpus"
// file field): it checks that the job is a GPT and that the corpus makes
// a valid job of it, stores the corpus (PUT /v1/data) and returns the
// spec trained on it (data source "text", its root and size). A bad
// corpus is named in errs["corpus"] and nothing is stored; without a
// corpus, or when the form already has errors, specJSON comes back as is.
func (c *Console) attachCorpus(r *http.Request, s *session, specJSON []byte, errs map[string]string) []byte {
	if len(errs) > 0 || r.MultipartForm == nil || len(r.MultipartForm.File["corpus"]) == 0 {
		return specJSON
	}
	f, h, err := r.FormFile("corpus")
	if err != nil {
		errs["corpus"] = "The corpus file could not be read; nothing was uploaded. Try again."
		return specJSON
	}
	defer f.Close()
	if h.Filename == "" && h.Size == 0 {
		return specJSON // the field left empty
	}
	sp, err := spec.Decode(specJSON)
	if err != nil {
		return specJSON
	}
	if !sp.IsGPT() || sp.Data.Text == nil {
		errs["corpus"] = "A text corpus is a GPT's data: choose the GPT example or a GPT spec, or leave the corpus empty. Nothing was uploaded."
		return specJSON
	}
	if h.Size > service.MaxTextUpload {
		errs["corpus"] = fmt.Sprintf("%s is %d MiB; a corpus is at most %d MiB. Nothing was uploaded.", h.Filename, h.Size>>20, service.MaxTextUpload>>20)
		return specJSON
	}
	b, err := io.ReadAll(io.LimitReader(f, service.MaxTextUpload+1))
	switch {
	case err != nil:
		errs["corpus"] = "The corpus file could not be read; nothing was uploaded. Try again."
		return specJSON
	case len(b) == 0:
		errs["corpus"] = fmt.Sprintf("%s is empty; a corpus needs at least one byte. Nothing was uploaded.", h.Filename)
		return specJSON
	case len(b) > service.MaxTextUpload:
		errs["corpus"] = fmt.Sprintf("%s is over %d MiB; nothing was uploaded.", h.Filename, service.MaxTextUpload>>20)
		return specJSON
	}
	t, err := dataset.NewText(b)
	if err != nil {
		errs["corpus"] = fmt.Sprintf("%s: %s. Nothing was uploaded.", h.Filename, err)
		return specJSON
	}
	root := t.Root()
	// The last tenth is held out for validation: at least one window,
	// at most what the spec held out.
	window := sp.Model.Layers[0].Context + 1
	sp.Data.Source = spec.SourceText
	if sp.Name == spec.ExampleGPT().Name {
		sp.Name = "text-gpt"
	}
	sp.Data.Text.Root, sp.Data.Text.Bytes = hex.EncodeToString(root[:]), len(b)
	sp.Data.Text.ValBytes = max(min(sp.Data.Text.ValBytes, len(b)/10), window)
	if err := sp.Validate(); err != nil {
		errs["corpus"] = fmt.Sprintf("%s (%d bytes) does not make a valid job of this model: %s. A corpus needs at least %d bytes for its context of %d. Nothing was uploaded.",
			h.Filename, len(b), strings.TrimPrefix(err.Error(), "spec: "), 2*window, window-1)
		return specJSON
	}
	var got api.TextCorpus
	if err := c.call(r.Context(), r, "PUT", "/v1/data", s.key, b, "").decode(&got); err != nil {
		errs["corpus"] = fmt.Sprintf("The corpus was not stored: %s.", err)
		return specJSON
	}
	if got.Root != sp.Data.Text.Root || got.Bytes != len(b) {
		errs["corpus"] = "The coordinator stored the corpus under another root; nothing was posted."
		return specJSON
	}
	out, err := sp.JSON()
	if err != nil {
		errs["corpus"] = err.Error()
		return specJSON
	}
	return out
}
