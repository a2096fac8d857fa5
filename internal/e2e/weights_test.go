package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInferenceWeightsP2P: peer-to-peer weights, each party its own
// process. Only solver1 has the trained run; solver2 (--serve-model-id)
// and the verifier (--verify-model-id) fetch the published model from the
// peers announcing it, checked against its digest. Then solver1 is killed:
// solver2 alone answers a completion, and the verifier's check of its
// receipt passes — both run weights that never existed on their disks.
func TestInferenceWeightsP2P(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary as separate processes (~20 s)")
	}
	if _, err := os.Stat("/usr/share/games/fortunes/fortunes"); err != nil {
		t.Skipf("the fortunes corpus is not installed (apt-get install fortunes): %v", err)
	}
	j := newJourney(t)
	dir := j.dir
	runA := filepath.Join(dir, "runA")
	run(t, j.bin, nil, "train", "--example", "gpt", "--steps", "3", "--out", runA, "--quiet")
	j.coordinator("--inference-verify-ppm", "1000000")
	run(t, j.bin, []string{"BELUGA_COORDINATOR=" + j.http}, "model", "publish", "--api-key", j.opKey, "--run", runA,
		"--id", "fortunes-gpt", "--input-price", "1000", "--output-price", "2000")
	clientKey := strings.TrimSpace(j.operator("key", "--role", "client", "--subject", "acme"))
	j.operator("deposit", "--account", "client:acme", "--usd", "1", "--bank-ref", "wire-acme-1")
	base := j.http + "/v1"
	serving := func(n int) func() bool {
		return func() bool {
			var models struct {
				Data []struct {
					Solvers int `json:"solvers"`
				} `json:"data"`
			}
			httpJSON(t, "GET", base+"/models", clientKey, nil, &models)
			return len(models.Data) == 1 && models.Data[0].Solvers == n
		}
	}
	solver := func(name string, model ...string) *proc {
		args := append([]string{"solver", "--coordinator", j.p2pAddr, "--dir", filepath.Join(dir, name),
			"--listen", "/ip4/127.0.0.1/tcp/0", "--no-idle-check", "--inference-slots", "2"}, model...)
		return start(t, dir, name, j.bin, nil, args...)
	}
	s1 := solver("solver1", "--serve-model", runA)
	j.enrol(s1, "solver", "20")
	until(t, 30*time.Second, "solver1 announced", serving(1))

	s2 := solver("solver2", "--serve-model-id", "fortunes-gpt")
	ver := start(t, dir, "verifier", j.bin, nil, "verifier", "--coordinator", j.p2pAddr, "--dir", filepath.Join(dir, "verifier"),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--verify-model-id", "fortunes-gpt")
	j.enrol(s2, "solver", "20")
	j.enrol(ver, "verifier", "20")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("coordinator:\n%s\nsolver2:\n%s\nverifier:\n%s", j.coord.output(), s2.output(), ver.output())
		}
	})
	fetched := regexp.MustCompile(`inference weights fetched.*model=fortunes-gpt.*holders=[12] bytes=[0-9]+ ms=([0-9]+)`)
	got := s2.wait(fetched, 60*time.Second)
	ver.wait(fetched, 60*time.Second)
	t.Logf("solver2 fetched the weights in %s ms", got[1])
	until(t, 30*time.Second, "solver2 announced", serving(2))

	// solver1, the only peer with the run, is gone.
	s1.stop(syscall.SIGKILL)
	until(t, 30*time.Second, "solver1 gone", serving(1))
	var c completion
	req := map[string]any{"model": "fortunes-gpt", "prompt": "Q: What is a whale?\nA:", "max_tokens": 40, "temperature": 0.8, "seed": 11}
	if st, _ := httpJSON(t, "POST", base+"/completions", clientKey, req, &c); st != 200 || c.Usage.Completion != 40 {
		t.Fatalf("completion from the fetched weights: %d %+v", st, c)
	}
	j.coord.wait(regexp.MustCompile(`inference receipt verified.*receipt=`+c.Receipt+`.*verdict=pass`), 30*time.Second)

	// A model nobody published is refused at once, by name.
	if _, err := runErr(j.bin, nil, "verifier", "--coordinator", j.p2pAddr, "--dir", filepath.Join(dir, "verifier2"),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--verify-model-id", "no-such-model"); err == nil || !strings.Contains(err.Error(), `no published model has ID or digest "no-such-model"`) {
		t.Fatalf("an unknown model: %v", err)
	}
}
