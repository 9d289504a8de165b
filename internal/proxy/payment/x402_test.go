package payment_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy/x402"
	"github.com/tollgate-dev/tollgate/internal/proxy/x402/x402test"
)

const usdc = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"

func x402Policy(name, facilitator string) dataplane.Policy {
	p := prepaid(name)
	p.Refusal.X402 = &dataplane.X402{FacilitatorURL: facilitator, Accepts: []dataplane.X402Option{{Scheme: "exact", Network: "eip155:84532",
		Asset: usdc, Decimals: 6, PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", MaxTimeoutSeconds: 60, Extra: []byte(`{"name":"USDC","version":"2"}`)}}}
	return p
}

func paidChat(t *testing.T, g *gateway, payment string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"write about tolls"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

// required decodes the PAYMENT-REQUIRED header of a 402.
func required(t *testing.T, resp *http.Response) x402.PaymentRequired {
	t.Helper()
	var pr x402.PaymentRequired
	if err := x402.DecodeHeader(resp.Header.Get(x402.HeaderPaymentRequired), &pr); err != nil {
		t.Fatalf("PAYMENT-REQUIRED: %v (%q)", err, resp.Header.Get(x402.HeaderPaymentRequired))
	}
	return pr
}

// TestPayPerRequest: each request pays its price with x402 through the
// facilitator and is answered with PAYMENT-RESPONSE.
func TestPayPerRequest(t *testing.T) {
	f := fake(t, 10)
	fac := x402test.NewServer()
	defer fac.Close()
	open, led := embedded(t)
	p := x402Policy("t/per-request", fac.URL)
	p.Prepaid = false
	p.PayPerRequest = money.MustParse("0.01")
	g := start(t, f, open, config(f.URL(), nil, led, p), nil)

	resp, body := paidChat(t, g, "")
	if resp.StatusCode != 402 {
		t.Fatalf("unpaid: %d %s", resp.StatusCode, body)
	}
	pr := required(t, resp)
	if pr.X402Version != 2 || len(pr.Accepts) != 1 || pr.Accepts[0].Amount != "10000" || pr.Accepts[0].Network != "eip155:84532" ||
		pr.Resource.URL != g.url+"/v1/chat/completions" || pr.Accepts[0].MaxTimeoutSeconds != 60 {
		t.Fatalf("PAYMENT-REQUIRED %+v", pr)
	}

	pay, err := x402test.ExactEVMHeader(pr.Accepts[0], "first")
	if err != nil {
		t.Fatal(err)
	}
	resp, body = paidChat(t, g, pay)
	if resp.StatusCode != 200 {
		t.Fatalf("paid: %d %s", resp.StatusCode, body)
	}
	var settled x402.SettleResponse
	if err := x402.DecodeHeader(resp.Header.Get(x402.HeaderPaymentResponse), &settled); err != nil || !settled.Success || settled.Transaction == "" {
		t.Fatalf("PAYMENT-RESPONSE %+v, %v", settled, err)
	}
	var verified, settledCalls int
	for _, c := range fac.Calls() {
		switch c.Op {
		case "verify":
			verified++
		case "settle":
			settledCalls++
		}
	}
	if verified != 1 || settledCalls != 1 {
		t.Fatalf("facilitator saw %d verify and %d settle calls", verified, settledCalls)
	}

	// The same authorization cannot pay twice: the facilitator refuses, and the answer is a 402 again.
	if resp, body := paidChat(t, g, pay); resp.StatusCode != 402 || resp.Header.Get(x402.HeaderPaymentRequired) == "" {
		t.Fatalf("replayed payment: %d %s", resp.StatusCode, body)
	}
	// A malformed payment is a 400.
	if resp, body := paidChat(t, g, "!!not base64!!"); resp.StatusCode != 400 || !strings.Contains(body, "invalid_payment") {
		t.Fatalf("malformed payment: %d %s", resp.StatusCode, body)
	}
	// A payment for another amount is not one that was offered: 400.
	other := pr.Accepts[0]
	other.Amount = "1"
	cheap, _ := x402test.ExactEVMHeader(other, "cheap")
	if resp, body := paidChat(t, g, cheap); resp.StatusCode != 400 {
		t.Fatalf("underpaid: %d %s", resp.StatusCode, body)
	}
	// A facilitator that fails is a 502, never a free request.
	fac.FailAll(500)
	fresh, _ := x402test.ExactEVMHeader(pr.Accepts[0], "second")
	if resp, body := paidChat(t, g, fresh); resp.StatusCode != 502 {
		t.Fatalf("facilitator down: %d %s", resp.StatusCode, body)
	}
}

// TestPrepaidTopUp: a tenant out of credit pays the 402 with x402, the
// payment becomes credit, and the request goes through.
func TestPrepaidTopUp(t *testing.T) {
	f := fake(t, 10)
	fac := x402test.NewServer()
	defer fac.Close()
	open, led := embedded(t)
	g := start(t, f, open, config(f.URL(), nil, led, x402Policy("t/plan", fac.URL)), nil)

	resp, body := paidChat(t, g, "")
	if resp.StatusCode != 402 || !strings.Contains(body, `"balance":"0.00"`) {
		t.Fatalf("no credit: %d %s", resp.StatusCode, body)
	}
	pr := required(t, resp)
	want, _ := money.AtomicUnits(estimate(), 6)
	if pr.Accepts[0].Amount != want {
		t.Fatalf("top-up offer %s, want the request's maximum %s", pr.Accepts[0].Amount, want)
	}
	pay, _ := x402test.ExactEVMHeader(pr.Accepts[0], "top-up")
	resp, body = paidChat(t, g, pay)
	if resp.StatusCode != 200 || resp.Header.Get(x402.HeaderPaymentResponse) == "" {
		t.Fatalf("after paying: %d %s", resp.StatusCode, body)
	}
}
