package x402test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/proxy/x402"
)

func requirement() x402.Requirement {
	return x402.Requirement{Scheme: "exact", Network: "eip155:84532", Amount: "10000",
		Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		MaxTimeoutSeconds: 60, Extra: json.RawMessage(`{"name":"USDC","version":"2"}`)}
}

// post sends body to the server's op endpoint and decodes the answer.
func post(t *testing.T, s *Server, op, token string, body any, out any) int {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/"+op, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("decoding the %d answer: %v", resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

func request(t *testing.T, p x402.PaymentPayload, req x402.Requirement) x402.FacilitatorRequest {
	t.Helper()
	return x402.FacilitatorRequest{X402Version: 2, PaymentPayload: p, PaymentRequirements: req}
}

func TestPayIsWellFormed(t *testing.T) {
	req := requirement()
	now := time.Unix(1_750_000_000, 0)
	p, err := Payer{Now: func() time.Time { return now }}.Pay(req, "seed-1")
	if err != nil {
		t.Fatal(err)
	}
	h, err := x402.EncodeHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	// The proxy's own parser takes it as a payment of req.
	got, matched, err := x402.ParsePayment(h, []x402.Requirement{req})
	if err != nil {
		t.Fatalf("ParsePayment of a fake payment: %v", err)
	}
	if matched.Amount != req.Amount || got.Accepted.PayTo != req.PayTo {
		t.Errorf("matched %+v", matched)
	}
	var e ExactEVMPayload
	if err := json.Unmarshal(got.Payload, &e); err != nil {
		t.Fatal(err)
	}
	a := e.Authorization
	want := Authorization{From: DefaultPayer, To: req.PayTo, Value: "10000", ValidAfter: "1749999400", ValidBefore: "1750000060", Nonce: a.Nonce}
	if a != want {
		t.Errorf("authorization = %+v, want %+v", a, want)
	}
	if len(a.Nonce) != 66 || len(e.Signature) != 132 || !strings.HasPrefix(e.Signature, "0x") {
		t.Errorf("nonce %q or signature %q has the wrong length", a.Nonce, e.Signature)
	}

	// Same seed, same nonce; another seed, another.
	again, _ := ExactEVMPayment(req, "seed-1")
	other, _ := ExactEVMPayment(req, "seed-2")
	if nonceOf(again) != a.Nonce || nonceOf(other) == a.Nonce {
		t.Errorf("nonces: %s, %s, %s", a.Nonce, nonceOf(again), nonceOf(other))
	}
	tx1, _ := TxHashOf(again)
	tx2, _ := TxHashOf(other)
	if tx1 != TxHash(req.Network, a.Nonce) || tx1 == tx2 || len(tx1) != 66 {
		t.Errorf("transactions %s, %s", tx1, tx2)
	}
}

func TestPayRefusesOtherSchemes(t *testing.T) {
	for _, change := range []func(*x402.Requirement){
		func(r *x402.Requirement) { r.Scheme = "upto" },
		func(r *x402.Requirement) { r.Network = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" },
	} {
		req := requirement()
		change(&req)
		if _, err := ExactEVMHeader(req, "s"); err == nil {
			t.Errorf("ExactEVMHeader(%s on %s) succeeded", req.Scheme, req.Network)
		}
	}
}

func TestServerVerifiesAndSettles(t *testing.T) {
	s := NewServer()
	defer s.Close()
	req := requirement()
	p, err := ExactEVMPayment(req, "order-42")
	if err != nil {
		t.Fatal(err)
	}
	var v x402.VerifyResponse
	if status := post(t, s, "verify", "", request(t, p, req), &v); status != 200 || !v.IsValid || v.Payer != DefaultPayer {
		t.Fatalf("verify: %d %+v", status, v)
	}
	var sr x402.SettleResponse
	if status := post(t, s, "settle", "", request(t, p, req), &sr); status != 200 || !sr.Success {
		t.Fatalf("settle: %d %+v", status, sr)
	}
	want := x402.SettleResponse{Success: true, Payer: DefaultPayer, Transaction: TxHash(req.Network, nonceOf(p)), Network: req.Network, Amount: "10000"}
	if sr != want {
		t.Errorf("settle = %+v, want %+v", sr, want)
	}
	// The same authorization does not settle twice.
	var replay x402.SettleResponse
	post(t, s, "settle", "", request(t, p, req), &replay)
	if replay.Success || replay.ErrorReason != "invalid_transaction_state" || replay.Transaction != "" {
		t.Errorf("replayed settle = %+v", replay)
	}
	calls := s.Calls()
	if len(calls) != 3 || s.CallCount() != 3 {
		t.Fatalf("calls = %+v", calls)
	}
	if calls[0].Op != "verify" || calls[1].Op != "settle" || calls[2].Reason != "invalid_transaction_state" {
		t.Errorf("calls = %+v", calls)
	}
	if calls[0].Request.PaymentRequirements.Amount != "10000" {
		t.Errorf("recorded request = %+v", calls[0].Request)
	}
}

func TestServerChecksPayments(t *testing.T) {
	s := NewServer()
	defer s.Close()
	req := requirement()
	mutate := func(f func(a *Authorization), resign bool) func(*x402.PaymentPayload, *x402.Requirement) {
		return func(p *x402.PaymentPayload, r *x402.Requirement) {
			var e ExactEVMPayload
			if err := json.Unmarshal(p.Payload, &e); err != nil {
				t.Fatal(err)
			}
			f(&e.Authorization)
			if resign {
				e.Signature = Signature(r.Network, r.Asset, e.Authorization)
			}
			p.Payload, _ = json.Marshal(e)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(p *x402.PaymentPayload, r *x402.Requirement)
		want   string
	}{
		{"valid", func(*x402.PaymentPayload, *x402.Requirement) {}, ""},
		{"version 1", func(p *x402.PaymentPayload, _ *x402.Requirement) { p.X402Version = 1 }, "invalid_x402_version"},
		{"verified against other requirements", func(_ *x402.PaymentPayload, r *x402.Requirement) { r.Amount = "20000" }, "invalid_payment_requirements"},
		{"empty requirements", func(_ *x402.PaymentPayload, r *x402.Requirement) { *r = x402.Requirement{} }, "invalid_payment_requirements"},
		{"tampered value", mutate(func(a *Authorization) { a.Value = "1" }, false), "invalid_exact_evm_payload_signature"},
		{"tampered recipient", mutate(func(a *Authorization) { a.To = DefaultPayer }, false), "invalid_exact_evm_payload_signature"},
		{"signed wrong value", mutate(func(a *Authorization) { a.Value = "1" }, true), "invalid_exact_evm_payload_authorization_value_mismatch"},
		{"signed wrong recipient", mutate(func(a *Authorization) { a.To = DefaultPayer }, true), "invalid_exact_evm_payload_recipient_mismatch"},
		{"expired", mutate(func(a *Authorization) { a.ValidBefore = "1000" }, true), "invalid_exact_evm_payload_authorization_valid_before"},
		{"not yet valid", mutate(func(a *Authorization) { a.ValidAfter = "99999999999" }, true), "invalid_exact_evm_payload_authorization_valid_after"},
		{"no nonce", mutate(func(a *Authorization) { a.Nonce = "" }, true), "invalid_payload"},
		{"payload not an object", func(p *x402.PaymentPayload, _ *x402.Requirement) { p.Payload = json.RawMessage(`"x"`) }, "invalid_payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ExactEVMPayment(req, "check-"+tc.name)
			if err != nil {
				t.Fatal(err)
			}
			r := req
			p.Accepted = req
			tc.change(&p, &r)
			var v x402.VerifyResponse
			post(t, s, "verify", "", request(t, p, r), &v)
			if v.IsValid != (tc.want == "") || v.InvalidReason != tc.want {
				t.Errorf("verify = %+v, want reason %q", v, tc.want)
			}
		})
	}
}

func TestServerBehaviors(t *testing.T) {
	req := requirement()
	for _, tc := range []struct {
		name       string
		set        func(s *Server)
		op         string
		wantStatus int
		wantReason string
	}{
		{"reject all verify", func(s *Server) { s.RejectAll("insufficient_funds") }, "verify", 200, "insufficient_funds"},
		{"reject all settle", func(s *Server) { s.RejectAll("insufficient_funds") }, "settle", 200, "insufficient_funds"},
		{"reject with 400", func(s *Server) { s.SetVerify(Behavior{Reject: "invalid_scheme", RejectStatus: 400}) }, "verify", 400, "invalid_scheme"},
		{"settle only rejects", func(s *Server) { s.SetSettle(Behavior{Reject: "invalid_transaction_state"}) }, "verify", 200, ""},
		{"fail all", func(s *Server) { s.FailAll(500) }, "settle", 500, "configured to fail"},
		{"fail wins over reject", func(s *Server) { s.SetVerify(Behavior{Reject: "x", Fail: 503}) }, "verify", 503, "configured to fail"},
		{"accept all again", func(s *Server) { s.FailAll(500); s.AcceptAll() }, "settle", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer()
			defer s.Close()
			tc.set(s)
			p, _ := ExactEVMPayment(req, tc.name)
			var body map[string]any
			if status := post(t, s, tc.op, "", request(t, p, req), &body); status != tc.wantStatus {
				t.Errorf("status %d, want %d (%v)", status, tc.wantStatus, body)
			}
			if got := s.Calls()[0].Reason; got != tc.wantReason {
				t.Errorf("reason %q, want %q", got, tc.wantReason)
			}
			if tc.wantStatus == 200 {
				verdict := body["isValid"]
				if tc.op == "settle" {
					verdict = body["success"]
				}
				if verdict != (tc.wantReason == "") {
					t.Errorf("verdict %v in %v", verdict, body)
				}
			}
		})
	}
}

func TestServerRequiresToken(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.RequireToken("s3cret")
	req := requirement()
	p, _ := ExactEVMPayment(req, "token")
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 401}, {"s3cret", 200}} {
		if got := post(t, s, "verify", tc.token, request(t, p, req), nil); got != tc.want {
			t.Errorf("token %q: status %d, want %d", tc.token, got, tc.want)
		}
	}
	calls := s.Calls()
	if calls[1].Bearer != "wrong" || calls[2].Bearer != "s3cret" || calls[0].Bearer != "" {
		t.Errorf("recorded bearers: %+v", calls)
	}
	if f := s.Facilitator(); f.Token != "s3cret" || f.URL != s.URL {
		t.Errorf("Facilitator() = %v", f)
	}
}

func TestServerRefusesNonsense(t *testing.T) {
	s := NewServer()
	defer s.Close()
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodGet, "/verify", "", 405},
		{http.MethodPost, "/supported", "{}", 404},
		{http.MethodPost, "/verify", "not json", 400},
		{http.MethodPost, "/settle", `{"x402Version":"two"}`, 400},
	} {
		req, _ := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(tc.body))
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %q: %d, want %d", tc.method, tc.path, tc.body, resp.StatusCode, tc.want)
		}
	}
}

func TestServerListensOnLoopback(t *testing.T) {
	s := NewServer()
	defer s.Close()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" {
		t.Errorf("URL %s is not on 127.0.0.1", s.URL)
	}
}

func TestServerDelayEndsWithCaller(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.SetVerify(Behavior{Delay: time.Minute})
	req := requirement()
	p, _ := ExactEVMPayment(req, "slow")
	f := s.Facilitator()
	f.VerifyTimeout = 50 * time.Millisecond
	start := time.Now()
	_, err := f.Verify(context.Background(), p, req)
	if !errors.Is(err, x402.ErrFacilitator) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("verify took %s", d)
	}
}

func TestServerCloseCutsDelays(t *testing.T) {
	s := NewServer()
	s.SetSettle(Behavior{Delay: time.Minute})
	req := requirement()
	p, _ := ExactEVMPayment(req, "slow")
	done := make(chan error, 1)
	go func() {
		_, err := s.Facilitator().Settle(context.Background(), p, req)
		done <- err
	}()
	for i := 0; i < 200 && s.activeRequests() == 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
	select {
	case err := <-done:
		if !errors.Is(err, x402.ErrFacilitator) {
			t.Errorf("settle on a closing server: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("settle did not return")
	}
}

func TestCallsAreBounded(t *testing.T) {
	s := &Server{}
	for i := range MaxCalls + 10 {
		s.record(Call{Op: fmt.Sprint(i)})
	}
	calls := s.Calls()
	if len(calls) != MaxCalls || s.CallCount() != MaxCalls+10 {
		t.Fatalf("%d calls kept of %d", len(calls), s.CallCount())
	}
	if calls[0].Op != "10" || calls[MaxCalls-1].Op != fmt.Sprint(MaxCalls+9) {
		t.Errorf("kept %s..%s, want the last ones in order", calls[0].Op, calls[MaxCalls-1].Op)
	}
}

func TestSettledNoncesAreBounded(t *testing.T) {
	s := &Server{settled: map[string]bool{}}
	for i := range maxSettled + 5 {
		if !s.claim(fmt.Sprint(i)) {
			t.Fatalf("nonce %d claimed twice", i)
		}
	}
	if len(s.settled) != maxSettled || len(s.settleOrder) != maxSettled {
		t.Errorf("%d nonces remembered", len(s.settled))
	}
	if s.claim(fmt.Sprint(maxSettled+4)) || !s.claim("0") {
		t.Error("the newest nonce is forgotten or the oldest is not")
	}
}
