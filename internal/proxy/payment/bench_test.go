package payment_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
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
	var n int
	for b.Loop() {
		n++
		x := &proxy.Exchange{LedgerID: fmt.Sprintf("bench-%012d", n), // sorting as the proxy's ids do Request: httptest.NewRequest("POST", "/v1/chat/completions", nil),
			API: provider.OpenAIChat, Tenant: "t/acme", Route: "t/chat", Rule: "all", Model: "gpt-4o",
			Candidates: []proxy.Candidate{c}, PromptTokens: 12, MaxTokens: 100}
		t, ref := e.Admit(ctx, x)
		if ref != nil {
			b.Fatalf("refused: %d", ref.Status)
		}
		t.Settle(ctx, c, usage)
	}
}

// BenchmarkRefuse is the handler's work for a request refused with the
// declared 402, without the network: parsing, authentication, routing,
// admission on the Embedded ledger and the 402 itself.
func BenchmarkRefuse(b *testing.B) {
	open, led := payment.OpenLedger(b.TempDir(), nil), dataplane.Ledger{Type: "Embedded"}
	e := payment.New(open, nil, nil)
	defer e.Close()
	s := proxy.New(proxy.Options{Admitter: e})
	if err := s.Load(config("http://127.0.0.1:1", nil, led, prepaid("t/prepaid")), nil); err != nil {
		b.Fatal(err)
	}
	body := `{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"Write a short note about toll roads."}]}`
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 402 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
