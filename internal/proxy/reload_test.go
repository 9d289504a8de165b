package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
)

// TestReloadUnderLoad swaps configs continuously while a bounded load of
// plain and streamed requests runs: not one request may fail.
func TestReloadUnderLoad(t *testing.T) {
	h := start(t, fakeprovider.Options{ReplyWords: 4})
	configs := make([]*dataplane.Config, 2)
	for i := range configs {
		configs[i] = testConfig(h.fake.URL(), h.broken.URL())
		configs[i].Tenants[1].DisplayName = []string{"blue", "green"}[i] // a real change of content and hash
		if _, err := dataplane.Encode(configs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if configs[0].Hash == configs[1].Hash {
		t.Fatal("the two configs must differ")
	}

	stop := make(chan struct{})
	var reloads atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := h.proxy.Load(configs[i%2], creds); err != nil {
				t.Error(err)
				return
			}
			reloads.Add(1)
			time.Sleep(200 * time.Microsecond)
		}
	})

	const requests, workers = 1500, 16
	var failed, done atomic.Int64
	jobs := make(chan int)
	var load sync.WaitGroup
	for range workers {
		load.Go(func() {
			for i := range jobs {
				body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
				if i%3 == 0 {
					body = `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`
				}
				req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+acmeKey)
				resp, err := http.DefaultClient.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if ok {
					b, rerr := readAll(resp)
					ok = rerr == nil && strings.Contains(b, fakeprovider.Word(0)) && (i%3 != 0 || strings.Contains(b, "[DONE]"))
				}
				if !ok {
					failed.Add(1)
				}
				done.Add(1)
			}
		})
	}
	for i := range requests {
		jobs <- i
	}
	close(jobs)
	load.Wait()
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || done.Load() != requests {
		t.Fatalf("%d of %d requests failed during %d reloads", failed.Load(), done.Load(), reloads.Load())
	}
	if reloads.Load() < 20 {
		t.Fatalf("only %d reloads happened during the load: the test proves little", reloads.Load())
	}
	t.Logf("%d requests, 0 failed, %d config swaps", requests, reloads.Load())
}

func readAll(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
