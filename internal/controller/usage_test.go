package controller

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/fakeprovider"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/payment"
	"github.com/tollgate-dev/tollgate/internal/proxy/source"
)

// TestUsageInStatus: traffic through a proxy under the sample prepaid plan
// shows up in Tenant.status.usage and the policy's top tenants, and the
// tenant that spent its credit gets the declared 402.
func TestUsageInStatus(t *testing.T) {
	ns := applySamples(t)
	fake, err := fakeprovider.Start(fakeprovider.Options{ReplyWords: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	// Point the sample provider at the fake.
	change(t, ns, "openai", &v1.ModelProvider{}, func(mp *v1.ModelProvider) { mp.Spec.BaseURL = fake.URL() + "/v1" })
	change(t, ns, "openai-credentials", &corev1.Secret{}, func(s *corev1.Secret) {
		s.Data = map[string][]byte{"api-key": []byte(fakeprovider.OpenAIKey)}
	})

	cs, err := source.NewClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	enforcer := payment.New(payment.OpenLedger(t.TempDir(), log), nil, log)
	defer enforcer.Close()
	srv := proxy.New(proxy.Options{Admitter: enforcer, Logger: log})
	pctx, stop := context.WithCancel(context.Background())
	defer stop()
	source.Kube(pctx, cs, ns, "ai-gateway", srv, log)
	go source.Usage(pctx, cs, ns, "ai-gateway", func(c context.Context) (*dataplane.UsageReport, error) { return enforcer.Report(c, ns+"/ai-gateway") }, 200*time.Millisecond, log)
	front := httptest.NewServer(srv)
	defer front.Close()

	keySecret, _ := get(t, ns, "acme-api-key", &corev1.Secret{})
	apiKey := string(keySecret.Data["api-key"])
	// The new base URL and the new key reach the proxy in separate configs: wait for both.
	eventually(t, "the proxy serves the fake provider with its key", func() error {
		c := srv.Config()
		if c == nil || len(c.Providers) == 0 || !strings.HasPrefix(c.Providers[0].BaseURL, fake.URL()) {
			return fmt.Errorf("not yet")
		}
		for _, r := range fake.Requests() {
			if r.Header.Get("Authorization") == "Bearer "+fakeprovider.OpenAIKey {
				return nil
			}
		}
		req, _ := http.NewRequest(http.MethodPost, front.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","max_tokens":1,"messages":[{"role":"user","content":"ping"}]}`))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return fmt.Errorf("no request with the new key reached the provider yet")
	})
	// acme's sample credit is 0.01 USD: at gpt-4o-mini prices plus 20% it runs out within a few hundred requests.
	// The probe above may have been served and charged: count it.
	served, refused := 0, 0
	for _, r := range fake.Requests() {
		if r.Header.Get("Authorization") == "Bearer "+fakeprovider.OpenAIKey {
			served++
		}
	}
	for range 400 {
		req, _ := http.NewRequest(http.MethodPost, front.URL+"/v1/chat/completions", strings.NewReader(
			`{"model":"gpt-4o-mini","max_tokens":2000,"messages":[{"role":"user","content":"`+strings.Repeat("toll ", 400)+`"}]}`))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 402 {
			if !strings.Contains(string(body), `"code":"credits_exhausted"`) || !strings.Contains(string(body), "https://billing.example.com/top-up") {
				t.Fatalf("not the declared 402: %s", body)
			}
			refused++
			break
		}
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		served++
	}
	if served == 0 || refused == 0 {
		t.Fatalf("served %d, refused %d: the sample credit should run out", served, refused)
	}
	eventually(t, "usage in Tenant and PaymentPolicy status", func() error {
		tn, _ := get(t, ns, "acme", &v1.Tenant{})
		u := tn.Status.Usage
		if u == nil || u.Requests != int64(served) || u.Currency != "USD" || u.Spent == "0.00" || u.UpdatedAt == nil {
			return fmt.Errorf("tenant usage %+v, want %d requests", u, served)
		}
		pp, _ := get(t, ns, "prepaid-plan", &v1.PaymentPolicy{})
		if len(pp.Status.TopTenants) == 0 || pp.Status.TopTenants[0].Tenant != "acme" || pp.Status.TopTenants[0].Requests != int64(served) {
			return fmt.Errorf("top tenants %+v", pp.Status.TopTenants)
		}
		return nil
	})
	// The sample plan warns at 80% and 95%: spending the credit crossed both.
	eventually(t, "a soft limit Event", func() error { return hasEvent(ns, "prepaid-plan", "SoftLimitCrossed") })
	tn, _ := get(t, ns, "acme", &v1.Tenant{})
	t.Logf("acme after %d requests and a 402: spent %s, remaining %s %s", served, tn.Status.Usage.Spent, tn.Status.Usage.Remaining, tn.Status.Usage.Currency)
}

// TestUsageWritesAreThrottled: a proxy that reports new usage every 200ms
// changes a Tenant's status at most once per UsageInterval, and a report
// that stops changing writes nothing more.
func TestUsageWritesAreThrottled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for two usage intervals and a half")
	}
	ns := applySamples(t)
	cs, err := source.NewClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	report := func(context.Context) (*dataplane.UsageReport, error) {
		return &dataplane.UsageReport{Gateway: ns + "/ai-gateway", UpdatedAt: time.Now(), Tenants: map[string]dataplane.TenantUsage{
			ns + "/acme": {Currency: "USD", Spent: money.Micros(requests.Load() * 100), Remaining: money.MustParse("0.01"), Requests: requests.Load()}}}, nil
	}
	pctx, stop := context.WithCancel(context.Background())
	defer stop()
	go source.Usage(pctx, cs, ns, "ai-gateway", report, 200*time.Millisecond, slog.New(slog.DiscardHandler))

	// seen records each distinct usage the Tenant's status showed, polling
	// far more often than writes may happen.
	seen := map[int64]time.Time{}
	watch := func(d time.Duration, traffic bool) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if traffic {
				requests.Add(1)
			}
			tn, _ := get(t, ns, "acme", &v1.Tenant{})
			if u := tn.Status.Usage; u != nil {
				if _, ok := seen[u.Requests]; !ok {
					seen[u.Requests] = time.Now()
				}
			}
		}
	}
	start := time.Now()
	watch(2*UsageInterval+UsageInterval/2, true)
	if n, most := len(seen), 3; n < 2 || n > most {
		t.Fatalf("%d usage writes in %v of changing reports (%v), want 2 to %d", n, time.Since(start).Round(time.Second), seen, most)
	}
	t.Logf("%d usage writes in %v while reports changed every 200ms", len(seen), time.Since(start).Round(time.Second))
	// Once the figures stop changing, the last of them is written, and then
	// nothing: the proxy keeps reporting, but the same.
	final := requests.Load()
	watch(UsageInterval+time.Second, false)
	if _, ok := seen[final]; !ok {
		t.Fatalf("the last figures (%d requests) never reached status: %v", final, seen)
	}
	before, _ := get(t, ns, "acme", &v1.Tenant{})
	time.Sleep(5 * time.Second)
	after, _ := get(t, ns, "acme", &v1.Tenant{})
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the Tenant was written with nothing changed: %+v, then %+v", before.Status, after.Status)
	}
}
