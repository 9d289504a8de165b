package payment_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/payment"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
)

// BenchmarkEnforce is one request's enforcement, without HTTP: Admit under
// a prepaid policy on the Embedded ledger, then Settle. make bench shows
// the same work as a ratio to a whole proxied request.
func BenchmarkEnforce(b *testing.B) {
	open, led := payment.OpenLedger(b.TempDir(), nil), dataplane.Ledger{Type: "Embedded"}
	cfg := config("http://127.0.0.1:1", []dataplane.Credit{{ID: "c", Amount: money.MustParse("1000000")}}, led, prepaid("t/prepaid"))
	e := payment.New(open, nil, nil)
	defer e.Close()
	if err := e.Configure(cfg, nil); err != nil {
		b.Fatal(err)
	}
	c := proxy.Candidate{Provider: "t/openai", Model: "gpt-4o", Currency: "USD", Price: price}
	usage := provider.Usage{InputTokens: 12, OutputTokens: 40}
	ctx := context.Background()
	req := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	var n int
	cpu := cpuTime()
	for b.Loop() {
		n++
		x := &proxy.Exchange{LedgerID: fmt.Sprintf("%016x%016x", time.Now().UnixNano(), n), // shaped like the proxy's
			Request: req,
			API:     provider.OpenAIChat, Tenant: "t/acme", Route: "t/chat", Rule: "all", Model: "gpt-4o",
			Candidates: []proxy.Candidate{c}, PromptTokens: 12, MaxTokens: 100}
		t, ref := e.Admit(ctx, x)
		if ref != nil {
			b.Fatalf("refused: %d", ref.Status)
		}
		t.Settle(ctx, c, usage)
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkRefuse is the handler's work for a request refused with the
// declared 402, without the network: parsing, authentication, routing,
// admission on the Embedded ledger and the 402 itself.
func BenchmarkRefuse(b *testing.B) {
	benchServe(b, nil, nil, 402, prepaid("t/prepaid"))
}

// BenchmarkForward is a whole forwarded request in the handler, without
// the network (the upstream answers from memory), with and without an
// enforcing policy. cpu-ns/op is the process's CPU per request, the
// ledger's background commits and the collector included.
func BenchmarkForward(b *testing.B) {
	credits := []dataplane.Credit{{ID: "c", Amount: money.MustParse("1000000")}}
	b.Run("no policy", func(b *testing.B) { benchServe(b, cannedUpstream(b), credits, 200) })
	b.Run("enforced", func(b *testing.B) { benchServe(b, cannedUpstream(b), credits, 200, prepaid("t/prepaid")) })
}

// benchServe sends one chat request per iteration to a proxy with an
// enforcer on the Embedded ledger, and wants the given status.
func benchServe(b *testing.B, upstream http.RoundTripper, credits []dataplane.Credit, want int, policies ...dataplane.Policy) {
	open, led := payment.OpenLedger(b.TempDir(), nil), dataplane.Ledger{Type: "Embedded"}
	e := payment.New(open, nil, nil)
	defer e.Close()
	s := proxy.New(proxy.Options{Admitter: e, Transport: upstream})
	if err := s.Load(config("http://127.0.0.1:1", credits, led, policies...), nil); err != nil {
		b.Fatal(err)
	}
	start := cpuTime()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(benchBody))
		req.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != want {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

const benchBody = `{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"Write a short note about toll roads."}]}`

// canned answers every request with what the fake OpenAI answered once.
type canned struct {
	status int
	header http.Header
	body   []byte
}

func cannedUpstream(b *testing.B) http.RoundTripper {
	w := httptest.NewRecorder()
	fakeprovider.New(fakeprovider.Options{ReplyWords: 40, NoAuth: true}).
		ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(benchBody)))
	if w.Code != 200 {
		b.Fatalf("%d %s", w.Code, w.Body)
	}
	return &canned{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

func (c *canned) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: c.status, Header: c.header.Clone(), Body: io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)), Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
