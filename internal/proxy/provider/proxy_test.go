package provider_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

// testProxy is the smallest proxy built on the package: it shows the
// intended use and lets the official SDKs talk through the translators.
type testProxy struct {
	*httptest.Server
	results chan result
}

// result is what the proxy saw of one call.
type result struct {
	usage provider.Usage
	err   error
}

// newProxy serves every client API from one upstream. Client model names
// are rewritten with models, when listed there.
func newProxy(t *testing.T, up provider.Upstream, models map[string]string) *testProxy {
	t.Helper()
	p := &testProxy{results: make(chan result, 100)}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api, ok := provider.APIForPath(r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		usage, err := p.serve(w, r, api, up, models)
		p.results <- result{usage, err}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *testProxy) serve(w http.ResponseWriter, r *http.Request, api provider.API, up provider.Upstream, models map[string]string) (provider.Usage, error) {
	fail := func(err error) (provider.Usage, error) {
		status, body := provider.ClientError(api, err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return provider.Usage{}, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return fail(err)
	}
	req, err := provider.ParseRequest(api, body)
	if err != nil {
		return fail(err)
	}
	model := req.Model
	if m, ok := models[model]; ok {
		model = m
	}
	ureq, tr, err := provider.NewRequest(r.Context(), up, provider.Call{API: api, Body: body, Model: model, Stream: req.Stream})
	if err != nil {
		return fail(err)
	}
	resp, err := http.DefaultClient.Do(ureq)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if req.Stream && resp.StatusCode == http.StatusOK {
		w.Header().Set("Content-Type", "text/event-stream")
		return tr.Stream(sse.NewWriter(w), resp.Body)
	}
	ubody, err := io.ReadAll(resp.Body)
	if err != nil {
		return fail(err)
	}
	out, usage, err := tr.Response(resp.StatusCode, ubody)
	if err != nil {
		return fail(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
	return usage, nil
}

// next returns what the proxy saw of the next call it finished.
func (p *testProxy) next(t *testing.T) result {
	t.Helper()
	select {
	case r := <-p.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy finished no call")
		return result{}
	}
}
