package payment_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
	"github.com/tollgate-dev/tollgate/internal/ledger"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/payment"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
	"github.com/tollgate-dev/tollgate/internal/testredis"
)

const key = "tg_payer-key"

var price = dataplane.Price{InputPerMillion: money.MustParse("2.50"), CachedInputPerMillion: money.MustParse("1.25"), OutputPerMillion: money.MustParse("10")}

func hash(k string) string { s := sha256.Sum256([]byte(k)); return hex.EncodeToString(s[:]) }

// config has one tenant, one route to a fake OpenAI and the given policies.
func config(upstream string, credits []dataplane.Credit, led dataplane.Ledger, policies ...dataplane.Policy) *dataplane.Config {
	c := &dataplane.Config{
		SchemaVersion: dataplane.SchemaVersion, Gateway: "t/gw",
		Listeners: []dataplane.Listener{{Name: "http", Port: 8080, GatewayPort: 8080}},
		Limits:    dataplane.Limits{MaxRequestBodyBytes: 1 << 20}, Logging: dataplane.Logging{Level: "info"}, Ledger: led,
		Providers: []dataplane.Provider{{Name: "t/openai", Type: "OpenAI", BaseURL: upstream + "/v1", Timeout: dataplane.Duration(10 * time.Second), Currency: "USD",
			Models: []dataplane.Model{{Name: "gpt-4o", Price: price}, {Name: "claude-sonnet-4-5", Price: price}}}},
		Routes: []dataplane.Route{{Name: "t/chat", Rules: []dataplane.Rule{
			{Name: "all", Backends: []dataplane.Backend{{Provider: "t/openai", Weight: 1}}}}}},
		Tenants: []dataplane.Tenant{{Name: "t/acme", Keys: []dataplane.Key{{Name: "k", SHA256: hash(key)}}, Credits: credits}},
	}
	for i := range policies {
		policies[i].Targets = dataplane.PolicyTargets{Tenants: []string{"t/acme"}}
		c.Policies = append(c.Policies, policies[i])
	}
	if _, err := dataplane.Encode(c); err != nil {
		panic(err)
	}
	return c
}

func prepaid(name string) dataplane.Policy {
	return dataplane.Policy{Name: name, Mode: "Enforce", Currency: "USD", Admission: "Reserve", FailureMode: "FailClosed", Prepaid: true,
		Refusal: dataplane.Refusal{Message: "Your prepaid balance is used up.", Code: "credits_exhausted", TopUpURL: "https://billing.example.com/top-up",
			Headers: []dataplane.Header{{Name: "X-Billing-Contact", Value: "billing@example.com"}}}}
}

type gateway struct {
	url      string
	fake     *fakeprovider.Server
	enforcer *payment.Enforcer
	server   *proxy.Server
}

// start runs a proxy with an enforcer on the given ledger opener.
func start(t *testing.T, fake *fakeprovider.Server, open payment.Opener, cfg *dataplane.Config, now func() time.Time) *gateway {
	t.Helper()
	e := payment.New(open, now, nil)
	s := proxy.New(proxy.Options{Admitter: e})
	if err := s.Load(cfg, nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); _ = e.Close() })
	return &gateway{url: srv.URL, fake: fake, enforcer: e, server: s}
}

func embedded(t *testing.T) (payment.Opener, dataplane.Ledger) {
	return payment.OpenLedger(t.TempDir(), slog.New(slog.DiscardHandler)), dataplane.Ledger{Type: "Embedded"}
}

func fake(t *testing.T, words int) *fakeprovider.Server {
	t.Helper()
	f, err := fakeprovider.Start(fakeprovider.Options{ReplyWords: words, NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func chat(g *gateway, model string, maxTokens int) (*http.Response, string, error) {
	body := `{"model":"` + model + `","max_tokens":` + strconv.Itoa(maxTokens) + `,"messages":[{"role":"user","content":"write about tolls"}]}`
	req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// usageOf reads the usage of an OpenAI chat response.
func usageOf(t *testing.T, body string) provider.Usage {
	t.Helper()
	var r struct {
		Usage struct {
			PromptTokens        int64 `json:"prompt_tokens"`
			CompletionTokens    int64 `json:"completion_tokens"`
			PromptTokensDetails struct {
				CachedTokens int64 `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return provider.Usage{InputTokens: r.Usage.PromptTokens, CachedInputTokens: r.Usage.PromptTokensDetails.CachedTokens, OutputTokens: r.Usage.CompletionTokens}
}

// TestDeclared402 spends a small prepaid credit and checks the 402 exactly
// as declared, as the OpenAI and Anthropic SDKs read it.
func TestDeclared402(t *testing.T) {
	f := fake(t, 10)
	open, led := embedded(t)
	cfg := config(f.URL(), []dataplane.Credit{{ID: "welcome", Amount: money.MustParse("0.0005")}}, led, prepaid("t/plan"))
	g := start(t, f, open, cfg, nil)

	var served int
	var resp *http.Response
	var body string
	for range 20 {
		var err error
		if resp, body, err = chat(g, "gpt-4o", 10); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			break
		}
		served++
		if resp.Header.Get(proxy.HeaderRemaining) == "" || resp.Header.Get(proxy.HeaderCost) == "" {
			t.Fatalf("a paid response lacks cost or remaining: %v", resp.Header)
		}
	}
	if served == 0 || resp.StatusCode != 402 {
		t.Fatalf("served %d then %d: %s", served, resp.StatusCode, body)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "X-Should-Retry": "false", "X-Billing-Contact": "billing@example.com"} {
		if resp.Header.Get(h) != want {
			t.Errorf("402 header %s = %q, want %q", h, resp.Header.Get(h), want)
		}
	}
	var pr map[string]any
	if err := json.Unmarshal([]byte(body), &pr); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"type": payment.ProblemType, "title": "Payment Required", "status": 402.0, "detail": "Your prepaid balance is used up.",
		"policy": "t/plan", "tenant": "t/acme", "currency": "USD", "topUpURL": "https://billing.example.com/top-up"} {
		if pr[k] != want {
			t.Errorf("402 body %s = %v, want %v", k, pr[k], want)
		}
	}
	if pr["balance"] == nil || pr["estimatedCost"] == nil {
		t.Errorf("402 body lacks balance or estimate: %s", body)
	}

	c := openai.NewClient(option.WithBaseURL(g.url+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
	_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o", MaxTokens: openai.Int(10),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("more")}})
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 402 || oe.Type != "insufficient_quota" || oe.Code != "credits_exhausted" || oe.Message != "Your prepaid balance is used up." {
		t.Fatalf("openai-go reads the 402 as %v", err)
	}

	ac := anthropic.NewClient(aoption.WithBaseURL(g.url), aoption.WithAPIKey(key), aoption.WithMaxRetries(0))
	_, err = ac.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "gpt-4o", MaxTokens: 10,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("more"))}})
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 402 || ae.Type() != "billing_error" {
		t.Fatalf("the Anthropic SDK reads the 402 as %v", err)
	}
}

// concurrency runs 500 concurrent requests through the gateways (spread
// over them) against a balance that covers 50 at their reserved maximum,
// and checks that spend never exceeds the balance.
func concurrency(t *testing.T, gws []*gateway, l ledger.Ledger, balance money.Micros) {
	t.Helper()
	const requests = 500
	var admitted, refused, other atomic.Int64
	var spent atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range requests {
		wg.Go(func() {
			<-start
			resp, body, err := chat(gws[i%len(gws)], "gpt-4o", 10)
			switch {
			case err != nil:
				other.Add(1)
			case resp.StatusCode == 200:
				admitted.Add(1)
				spent.Add(int64(proxy.Cost(price, usageOf(t, body))))
			case resp.StatusCode == 402 && strings.Contains(body, `"code":"credits_exhausted"`) && resp.Header.Get("Cache-Control") == "no-store":
				refused.Add(1)
			default:
				other.Add(1)
				t.Errorf("unexpected answer %d: %s", resp.StatusCode, body)
			}
		})
	}
	close(start)
	wg.Wait()
	snap, err := l.Balance(context.Background(), ledger.Account{Key: "credits|t/acme|USD", Kind: ledger.Prepaid}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d admitted, %d refused with the declared 402; spent %s of a %s balance (ledger: spent %s, held %s)",
		admitted.Load(), refused.Load(), money.Micros(spent.Load()), balance, snap.Spent, snap.Held)
	if other.Load() != 0 || admitted.Load()+refused.Load() != requests {
		t.Fatalf("%d requests neither served nor refused with the declared 402", other.Load())
	}
	if money.Micros(spent.Load()) > balance || snap.Spent > balance || snap.Spent != money.Micros(spent.Load()) {
		t.Fatalf("overspent: clients were served %s, the ledger committed %s, the balance was %s", money.Micros(spent.Load()), snap.Spent, balance)
	}
	if admitted.Load() < 50 || refused.Load() == 0 {
		t.Fatalf("the balance covers 50 requests at their maximum: %d admitted, %d refused", admitted.Load(), refused.Load())
	}
}

// estimate is the reserved maximum of one test request.
func estimate() money.Micros {
	body := `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"write about tolls"}]}`
	r, _ := provider.ParseRequest(provider.OpenAIChat, []byte(body))
	return proxy.Cost(price, provider.Usage{InputTokens: r.PromptTokens, OutputTokens: 10})
}

func TestConcurrentReserveEmbedded(t *testing.T) {
	f := fake(t, 10)
	open, led := embedded(t)
	balance := 50 * estimate()
	cfg := config(f.URL(), []dataplane.Credit{{ID: "fifty", Amount: balance}}, led, prepaid("t/plan"))
	g := start(t, f, open, cfg, nil)
	concurrency(t, []*gateway{g}, g.enforcer.Ledger(), balance)
}

// TestConcurrentReserveRedis runs two proxies, each with its own Redis
// client, against one Redis server.
func TestConcurrentReserveRedis(t *testing.T) {
	f := fake(t, 10)
	addr := testredis.Start(t)
	led := dataplane.Ledger{Type: "Redis", Redis: &dataplane.RedisLedger{Address: addr}}
	balance := 50 * estimate()
	cfg := config(f.URL(), []dataplane.Credit{{ID: "fifty", Amount: balance}}, led, prepaid("t/plan"))
	a := start(t, f, payment.OpenLedger("", slog.New(slog.DiscardHandler)), cfg, nil)
	b := start(t, f, payment.OpenLedger("", slog.New(slog.DiscardHandler)), cfg, nil)
	concurrency(t, []*gateway{a, b}, a.enforcer.Ledger(), balance)
}

// TestExactness: over a mixed run the ledger equals, to the micro-unit,
// the sum of provider-reported usage times price (with the markup).
func TestExactness(t *testing.T) {
	f, err := fakeprovider.Start(fakeprovider.Options{ReplyWords: 7, CachedTokens: 2, NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	open, led := embedded(t)
	p := dataplane.Policy{Name: "t/budget", Mode: "Enforce", Currency: "USD", Admission: "Reserve", FailureMode: "FailClosed",
		Budget:  &dataplane.Budget{Limit: money.MustParse("1000"), Calendar: "Month", Timezone: "Europe/Paris"},
		Pricing: dataplane.Pricing{MarkupPercent: money.MustParse("12.5"), Models: []dataplane.ModelPrice{{Name: "claude-*", Price: dataplane.Price{InputPerMillion: 3_000_000, CachedInputPerMillion: 300_000, OutputPerMillion: 15_000_000}}}}}
	cfg := config(f.URL(), nil, led, p)
	g := start(t, f, open, cfg, nil)
	var want money.Micros
	for i := range 60 {
		model := []string{"gpt-4o", "claude-sonnet-4-5"}[i%2]
		resp, body, err := chat(g, model, 3+i%5)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %d %s", err, resp.StatusCode, body)
		}
		u := usageOf(t, body)
		pr := price
		if model == "claude-sonnet-4-5" {
			pr = p.Pricing.Models[0].Price
		}
		cost := money.AddPercent(proxy.Cost(pr, u), p.Pricing.MarkupPercent)
		if got := resp.Header.Get(proxy.HeaderCost); got != cost.String() {
			t.Fatalf("request %d: cost header %s, want %s", i, got, cost)
		}
		want += cost
	}
	loc, _ := time.LoadLocation("Europe/Paris")
	snap, err := g.enforcer.Ledger().Balance(context.Background(), ledger.Account{Key: "budget|t/budget|t/acme", Kind: ledger.Budget,
		Limit: money.MustParse("1000"), Window: ledger.Window{Period: ledger.Month, Location: loc}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Spent != want || snap.Held != 0 || snap.Usage.Requests != 60 {
		t.Fatalf("ledger spent %s held %s over %d requests; the responses add up to %s", snap.Spent, snap.Held, snap.Usage.Requests, want)
	}
}

// TestBudgetWindowRetryAfter: a daily budget in Tokyo refuses with
// Retry-After pointing at local midnight, and resets then.
func TestBudgetWindowRetryAfter(t *testing.T) {
	f := fake(t, 10)
	open, led := embedded(t)
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	now := time.Date(2026, 11, 24, 23, 30, 0, 0, tokyo)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := dataplane.Policy{Name: "t/daily", Mode: "Enforce", Currency: "USD", Admission: "Reserve", FailureMode: "FailClosed",
		Budget: &dataplane.Budget{Limit: 3 * estimate(), Calendar: "Day", Timezone: "Asia/Tokyo"}, Refusal: dataplane.Refusal{Code: "budget_exhausted"}}
	g := start(t, f, open, config(f.URL(), nil, led, p), clock)
	var resp *http.Response
	for range 10 {
		resp, _, _ = chat(g, "gpt-4o", 10)
		if resp.StatusCode == 402 {
			break
		}
	}
	if resp.StatusCode != 402 || resp.Header.Get("Retry-After") != "1800" {
		t.Fatalf("budget refusal %d with Retry-After %q, want 402 and 1800 (30 minutes to Tokyo midnight)", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	mu.Lock()
	now = now.Add(31 * time.Minute)
	mu.Unlock()
	if resp, body, _ := chat(g, "gpt-4o", 10); resp.StatusCode != 200 {
		t.Fatalf("after local midnight the budget is fresh, got %d %s", resp.StatusCode, body)
	}
}

func TestDryRunRefusesNothing(t *testing.T) {
	f := fake(t, 10)
	open, led := embedded(t)
	p := prepaid("t/trial")
	p.Mode = "DryRun"
	g := start(t, f, open, config(f.URL(), []dataplane.Credit{{ID: "tiny", Amount: 1}}, led, p), nil)
	resp, _, err := chat(g, "gpt-4o", 10)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get(payment.HeaderDryRun) != "would refuse: t/trial" {
		t.Fatalf("dry run: %v %d %v", err, resp.StatusCode, resp.Header)
	}
}

// TestFailureModes: with the Redis ledger gone, FailClosed refuses with 503
// and FailOpen serves.
func TestFailureModes(t *testing.T) {
	f := fake(t, 10)
	led := dataplane.Ledger{Type: "Redis", Redis: &dataplane.RedisLedger{Address: "127.0.0.1:1"}} // nothing listens there
	for mode, want := range map[string]int{"FailClosed": 503, "FailOpen": 200} {
		p := prepaid("t/plan")
		p.FailureMode = mode
		g := start(t, f, payment.OpenLedger("", slog.New(slog.DiscardHandler)), config(f.URL(), []dataplane.Credit{{ID: "c", Amount: money.MustParse("10")}}, led, p), nil)
		resp, body, err := chat(g, "gpt-4o", 10)
		if err != nil || resp.StatusCode != want {
			t.Errorf("%s with the ledger down: %v %d %s", mode, err, resp.StatusCode, body)
		}
	}
}

func TestSoftLimitWarning(t *testing.T) {
	f := fake(t, 10)
	open, led := embedded(t)
	p := prepaid("t/plan")
	p.SoftLimits = []int32{50}
	g := start(t, f, open, config(f.URL(), []dataplane.Credit{{ID: "c", Amount: 4 * estimate()}}, led, p), nil)
	var warned bool
	for range 4 {
		resp, _, _ := chat(g, "gpt-4o", 10)
		if w := resp.Header.Get(payment.HeaderWarning); w != "" {
			warned = strings.Contains(w, "50% of the prepaid balance under policy t/plan is spent")
			break
		}
	}
	if !warned {
		t.Fatal("no soft limit warning while spending most of the balance")
	}
}

// TestClientRequestIDIsNotALedgerKey: a client that sends the same
// X-Request-Id on every request is still charged for each of them.
func TestClientRequestIDIsNotALedgerKey(t *testing.T) {
	f := fake(t, 10)
	open, led := embedded(t)
	balance := 3 * estimate()
	g := start(t, f, open, config(f.URL(), []dataplane.Credit{{ID: "c", Amount: balance}}, led, prepaid("t/plan")), nil)
	served := 0
	for range 10 {
		req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"write about tolls"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set(proxy.HeaderRequestID, "same-id-every-time")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get(proxy.HeaderRequestID) != "same-id-every-time" {
			t.Fatalf("the client's request id is not echoed: %q", resp.Header.Get(proxy.HeaderRequestID))
		}
		if resp.StatusCode == 200 {
			served++
		}
	}
	snap, err := g.enforcer.Ledger().Balance(context.Background(), ledger.Account{Key: "credits|t/acme|USD", Kind: ledger.Prepaid}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if served > 3 || snap.Usage.Requests != int64(served) || snap.Spent > balance {
		t.Fatalf("served %d on a balance for 3; the ledger counted %d requests and %s spent", served, snap.Usage.Requests, snap.Spent)
	}
}

// TestReportShowsCreditBeforeFirstRequest: the usage report counts declared
// credits of tenants that have not called yet.
func TestReportShowsCreditBeforeFirstRequest(t *testing.T) {
	f := fake(t, 10)
	open, led := embedded(t)
	g := start(t, f, open, config(f.URL(), []dataplane.Credit{{ID: "c", Amount: money.MustParse("250")}}, led, prepaid("t/plan")), nil)
	r, err := g.enforcer.Report(context.Background(), "t/gw")
	if err != nil {
		t.Fatal(err)
	}
	if u := r.Tenants["t/acme"]; u.Remaining != money.MustParse("250") || u.Spent != 0 || u.Currency != "USD" {
		t.Fatalf("usage before any request: %+v", u)
	}
}
