package gateway

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Model is a published model: a name clients use, the state digest of the
// checkpoint it was published from, its context and its prices.
type Model struct {
	ID     string `json:"id"`
	Digest string `json:"digest"`
	// Job and Step name the checkpoint (informative: the digest binds it).
	Job     string `json:"job,omitempty"`
	Step    int64  `json:"step,omitempty"`
	Context int    `json:"context_length"`
	// Prices in micro-dollars per 1,000 tokens (bytes).
	InputMicroUSDPer1K  int64 `json:"input_micro_usd_per_1k"`
	OutputMicroUSDPer1K int64 `json:"output_micro_usd_per_1k"`
	Created             int64 `json:"created"`
}

var modelID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// validate checks m's fields.
func (m *Model) validate() (merkle.Digest, error) {
	d, err := infer.ParseDigest(m.Digest)
	switch {
	case !modelID.MatchString(m.ID):
		return d, fmt.Errorf("model id %q: want 1 to 64 of A-Z a-z 0-9 . _ : - (starting with a letter or digit)", m.ID)
	case err != nil:
		return d, err
	case m.Context < 2 || m.Context > 4096:
		return d, fmt.Errorf("context_length %d: want 2 to 4096", m.Context)
	case m.InputMicroUSDPer1K < 0 || m.OutputMicroUSDPer1K < 0 || m.InputMicroUSDPer1K > 1e12 || m.OutputMicroUSDPer1K > 1e12:
		return d, fmt.Errorf("prices must be 0 to 10^12 micro-dollars per 1k tokens")
	case m.InputMicroUSDPer1K+m.OutputMicroUSDPer1K == 0:
		return d, fmt.Errorf("a model needs a price: an input or output price above 0")
	}
	return d, nil
}

// catalog is the published models, kept in the coordinator's store under
// one key (a handful of models).
type catalog struct {
	st *service.Store
	mu sync.Mutex
}

const catalogKey = "inference/models"

func (c *catalog) list() ([]Model, error) {
	b, ok, err := c.st.GetRaw(catalogKey)
	if err != nil || !ok {
		return nil, err
	}
	var ms []Model
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("decode %s: %w", catalogKey, err)
	}
	return ms, nil
}

func (c *catalog) get(id string) (*Model, bool, error) {
	ms, err := c.list()
	if err != nil {
		return nil, false, err
	}
	for i := range ms {
		if ms[i].ID == id {
			return &ms[i], true, nil
		}
	}
	return nil, false, nil
}

// publish adds m; publishing the same model again is a no-op, another
// model under a taken ID is refused (errConflict).
func (c *catalog) publish(m Model) (Model, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms, err := c.list()
	if err != nil {
		return m, err
	}
	for _, o := range ms {
		if o.ID == m.ID {
			o2 := m
			o2.Created = o.Created
			if o2 == o {
				return o, nil
			}
			return o, errConflict
		}
	}
	ms = append(ms, m)
	b, _ := json.Marshal(ms)
	return m, c.st.PutRaw(catalogKey, b)
}
