package x402_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/internal/proxy/x402"
	"github.com/tollgate-dev/tollgate/internal/proxy/x402/x402test"
)

func usdc() x402.Requirement {
	return x402.Requirement{Scheme: "exact", Network: "eip155:84532", Amount: "10000",
		Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		MaxTimeoutSeconds: 60, Extra: json.RawMessage(`{"name":"USDC","version":"2"}`)}
}

func pay(t *testing.T, seed string) (x402.PaymentPayload, x402.Requirement) {
	t.Helper()
	req := usdc()
	h, err := x402test.ExactEVMHeader(req, seed)
	if err != nil {
		t.Fatal(err)
	}
	// Through the proxy's parser, as the proxy gets it.
	p, matched, err := x402.ParsePayment(h, []x402.Requirement{req})
	if err != nil {
		t.Fatal(err)
	}
	return p, matched
}

func TestFacilitatorVerifyAndSettle(t *testing.T) {
	s := x402test.NewServer()
	defer s.Close()
	s.RequireToken("tok-verify-settle")
	f := x402.Facilitator{URL: s.URL + "/", Token: "tok-verify-settle", Client: s.Client()}
	p, req := pay(t, "happy")

	v, err := f.Verify(context.Background(), p, req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !v.IsValid || v.Payer != x402test.DefaultPayer {
		t.Errorf("Verify = %+v", v)
	}
	sr, err := f.Settle(context.Background(), p, req)
	if err != nil {
		t.Fatalf("Settle: %v", err)
	}
	tx, _ := x402test.TxHashOf(p)
	want := x402.SettleResponse{Success: true, Payer: x402test.DefaultPayer, Transaction: tx, Network: "eip155:84532", Amount: "10000"}
	if diff := cmp.Diff(want, sr); diff != "" {
		t.Errorf("Settle (-want +got):\n%s", diff)
	}

	calls := s.Calls()
	if len(calls) != 2 || calls[0].Op != "verify" || calls[1].Op != "settle" {
		t.Fatalf("calls = %+v", calls)
	}
	for _, c := range calls {
		if c.Bearer != "tok-verify-settle" || c.Request.X402Version != 2 {
			t.Errorf("call %+v", c)
		}
		if diff := cmp.Diff(req, c.Request.PaymentRequirements); diff != "" {
			t.Errorf("paymentRequirements sent (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(p, c.Request.PaymentPayload); diff != "" {
			t.Errorf("paymentPayload sent (-want +got):\n%s", diff)
		}
	}
}

func TestFacilitatorRejections(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    func(*x402test.Server)
		op     string
		reason string
		status int
	}{
		{"verify says invalid", func(s *x402test.Server) { s.RejectAll("insufficient_funds") }, "verify", "insufficient_funds", 200},
		{"verify says invalid with 400", func(s *x402test.Server) {
			s.SetVerify(x402test.Behavior{Reject: "invalid_exact_evm_payload_signature", RejectStatus: 400})
		}, "verify", "invalid_exact_evm_payload_signature", 400},
		{"verify says invalid with 402", func(s *x402test.Server) {
			s.SetVerify(x402test.Behavior{Reject: "invalid_network", RejectStatus: 402})
		}, "verify", "invalid_network", 402},
		{"settle fails", func(s *x402test.Server) { s.SetSettle(x402test.Behavior{Reject: "insufficient_funds"}) }, "settle", "insufficient_funds", 200},
		{"settle fails with 400", func(s *x402test.Server) {
			s.SetSettle(x402test.Behavior{Reject: "invalid_transaction_state", RejectStatus: 400})
		}, "settle", "invalid_transaction_state", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := x402test.NewServer()
			defer s.Close()
			tc.set(s)
			p, req := pay(t, tc.name)
			var err error
			var settled x402.SettleResponse
			if tc.op == "verify" {
				var v x402.VerifyResponse
				v, err = s.Facilitator().Verify(context.Background(), p, req)
				if v.IsValid || v.InvalidReason != tc.reason {
					t.Errorf("verdict %+v", v)
				}
			} else {
				settled, err = s.Facilitator().Settle(context.Background(), p, req)
			}
			var re *x402.RejectedError
			if !errors.As(err, &re) || !errors.Is(err, x402.ErrPaymentRejected) || errors.Is(err, x402.ErrFacilitator) {
				t.Fatalf("err = %v (%T), want a rejection", err, err)
			}
			if re.Op != tc.op || re.Reason != tc.reason || re.StatusCode != tc.status || re.Payer != x402test.DefaultPayer {
				t.Errorf("rejection %+v", re)
			}
			if re.HTTPStatus() != http.StatusPaymentRequired {
				t.Errorf("HTTPStatus %d", re.HTTPStatus())
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q lacks the reason", err)
			}
			if tc.op == "settle" {
				if re.Settle == nil || re.Settle.Success || re.Settle.ErrorReason != tc.reason || re.Settle.Network != "eip155:84532" {
					t.Errorf("failed settlement %+v", re.Settle)
				}
				if settled.Success || settled.ErrorReason != tc.reason {
					t.Errorf("returned settlement %+v", settled)
				}
				if _, err := x402.EncodeHeader(re.Settle); err != nil {
					t.Error(err)
				}
			} else if re.Settle != nil {
				t.Errorf("a verify rejection carries a settlement")
			}
		})
	}
}

func TestFacilitatorReplayIsRejected(t *testing.T) {
	s := x402test.NewServer()
	defer s.Close()
	p, req := pay(t, "replay")
	f := s.Facilitator()
	if _, err := f.Settle(context.Background(), p, req); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Settle(context.Background(), p, req); !errors.Is(err, x402.ErrPaymentRejected) {
		t.Fatalf("second settle: %v", err)
	}
}

func TestFacilitatorFailures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		set        func(*x402test.Server)
		op         string
		wantStatus int // the status the proxy answers
		wantCode   int // the facilitator's
		msg        string
	}{
		{"500", func(s *x402test.Server) { s.FailAll(500) }, "verify", 502, 500, "answered 500"},
		{"502 on settle", func(s *x402test.Server) { s.FailAll(502) }, "settle", 502, 502, "answered 502"},
		{"503", func(s *x402test.Server) { s.FailAll(503) }, "verify", 503, 503, "answered 503"},
		{"429", func(s *x402test.Server) { s.FailAll(429) }, "settle", 503, 429, "answered 429"},
		{"400 without a verdict", func(s *x402test.Server) { s.FailAll(400) }, "verify", 502, 400, "answered 400"},
		{"verdict on 500 is no verdict", func(s *x402test.Server) {
			s.SetSettle(x402test.Behavior{Reject: "unexpected_settle_error", RejectStatus: 500})
		}, "settle", 502, 500, "unexpected_settle_error"},
		{"verdict on 401 is about us", func(s *x402test.Server) {
			s.SetVerify(x402test.Behavior{Reject: "unauthorized", RejectStatus: 401})
		}, "verify", 502, 401, "answered 401"},
		{"missing token", func(s *x402test.Server) { s.RequireToken("needed") }, "verify", 502, 401, "bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := x402test.NewServer()
			defer s.Close()
			tc.set(s)
			p, req := pay(t, tc.name)
			f := x402.Facilitator{URL: s.URL, Client: s.Client()}
			var err error
			if tc.op == "verify" {
				_, err = f.Verify(context.Background(), p, req)
			} else {
				_, err = f.Settle(context.Background(), p, req)
			}
			checkFacilitatorError(t, err, tc.op, tc.wantStatus, tc.wantCode, tc.msg)
		})
	}
}

func checkFacilitatorError(t *testing.T, err error, op string, status, code int, msg string) {
	t.Helper()
	var fe *x402.FacilitatorError
	if !errors.As(err, &fe) || !errors.Is(err, x402.ErrFacilitator) || errors.Is(err, x402.ErrPaymentRejected) {
		t.Fatalf("err = %v (%T), want a facilitator failure", err, err)
	}
	if fe.Op != op || fe.StatusCode != code || fe.HTTPStatus() != status {
		t.Errorf("%v: op %q code %d status %d, want %q %d %d", err, fe.Op, fe.StatusCode, fe.HTTPStatus(), op, code, status)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not say %q", err, msg)
	}
}

// handler serves a fixed answer, as a facilitator that misbehaves.
func handler(status int, body string) *httptest.Server {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	s.Listener.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s.Listener = ln
	s.Start()
	return s
}

func TestFacilitatorBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		op     string
		status int
		body   string
		msg    string
	}{
		{"not JSON", "verify", 200, "<html>hello</html>", "without a verdict"},
		{"empty", "verify", 200, "", "(empty body)"},
		{"no isValid", "verify", 200, `{"valid":true}`, "without a verdict"},
		{"isValid string", "verify", 200, `{"isValid":"true"}`, "without a verdict"},
		{"no success", "settle", 200, `{"transaction":"0xab","network":"eip155:84532"}`, "without a verdict"},
		{"success without transaction", "settle", 200, `{"success":true,"network":"eip155:84532"}`, "without a transaction"},
		{"valid verdict on 400", "verify", 400, `{"isValid":true}`, "answered 400 with a valid verdict"},
		{"settled on 409", "settle", 409, `{"success":true,"transaction":"0xab","network":"n:1"}`, "answered 409 with a successful settlement"},
		{"redirect", "verify", 302, `{}`, "answered 302"},
		{"too large", "verify", 200, `{"isValid":true,"pad":"` + strings.Repeat("x", 1<<20) + `"}`, "more than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := handler(tc.status, tc.body)
			defer s.Close()
			p, req := pay(t, tc.name)
			f := x402.Facilitator{URL: s.URL, Client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			}}}
			var err error
			if tc.op == "verify" {
				_, err = f.Verify(context.Background(), p, req)
			} else {
				_, err = f.Settle(context.Background(), p, req)
			}
			checkFacilitatorError(t, err, tc.op, 502, tc.status, tc.msg)
		})
	}
}

func TestFacilitatorSettleFillsNetwork(t *testing.T) {
	s := handler(200, `{"success":true,"transaction":"0xabc"}`)
	defer s.Close()
	p, req := pay(t, "network")
	sr, err := x402.Facilitator{URL: s.URL}.Settle(context.Background(), p, req)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Network != req.Network || sr.Transaction != "0xabc" {
		t.Errorf("settlement %+v", sr)
	}
}

func TestFacilitatorUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p, req := pay(t, "unreachable")
	_, err = x402.Facilitator{URL: "http://" + addr}.Verify(context.Background(), p, req)
	checkFacilitatorError(t, err, "verify", 503, 0, "no answer")
}

func TestFacilitatorTimeout(t *testing.T) {
	s := x402test.NewServer()
	defer s.Close()
	s.SetSettle(x402test.Behavior{Delay: 10 * time.Second})
	p, req := pay(t, "timeout")
	f := s.Facilitator()
	f.SettleTimeout = 100 * time.Millisecond
	start := time.Now()
	_, err := f.Settle(context.Background(), p, req)
	checkFacilitatorError(t, err, "settle", 503, 0, "no answer")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v is not a deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}

	// The caller's deadline counts too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	f.SettleTimeout = 0
	_, err = f.Settle(ctx, p, req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v is not a deadline", err)
	}
}

func TestFacilitatorBadConfig(t *testing.T) {
	p, req := pay(t, "config")
	for _, tc := range []struct {
		name string
		f    x402.Facilitator
		msg  string
	}{
		{"empty URL", x402.Facilitator{}, "not an http(s) URL"},
		{"no scheme", x402.Facilitator{URL: "facilitator.example.com"}, "not an http(s) URL"},
		{"ftp", x402.Facilitator{URL: "ftp://127.0.0.1/x"}, "not an http(s) URL"},
		{"bad URL", x402.Facilitator{URL: "http://[::1"}, "does not parse"},
		{"token with newline", x402.Facilitator{URL: "http://127.0.0.1:1", Token: "abc\r\nX-Evil: 1"}, "characters a header cannot carry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.Verify(context.Background(), p, req)
			checkFacilitatorError(t, err, "verify", 502, 502, tc.msg)
			if strings.Contains(err.Error(), "Evil") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

func TestFacilitatorNeverShowsToken(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	s := x402test.NewServer()
	defer s.Close()
	s.RequireToken("another")
	f := x402.Facilitator{URL: "http://user:pw-secret@" + strings.TrimPrefix(s.URL, "http://"), Token: token, Client: s.Client()}
	p, req := pay(t, "secret")
	_, verr := f.Verify(context.Background(), p, req)
	_, serr := f.Settle(context.Background(), p, req)
	if verr == nil || serr == nil {
		t.Fatalf("calls with a wrong token succeeded: %v, %v", verr, serr)
	}
	j, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	pf := &f
	for _, out := range []string{
		verr.Error(), serr.Error(), string(j),
		fmt.Sprint(f), fmt.Sprintf("%v %+v %#v %s %q %x %d", f, f, f, f, f, f, f),
		fmt.Sprintf("%v %+v %#v", pf, pf, pf), fmt.Sprintf("%+v", struct{ F x402.Facilitator }{f}),
	} {
		if strings.Contains(out, token) || strings.Contains(out, "pw-secret") {
			t.Errorf("token or password shown: %s", out)
		}
	}
	if got := f.String(); !strings.Contains(got, "redacted") || !strings.Contains(got, "127.0.0.1") {
		t.Errorf("String() = %s", got)
	}
}
