package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/internal/ledger"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
	"github.com/tollgate-dev/tollgate/internal/proxy/x402"
)

// offer is what a policy asks an x402 payer for this request: the price of
// a pay-per-request policy, or, for a prepaid one, the request's reserved
// maximum as a top-up (stable across the client's retry, unlike the shortfall).
func offer(p *policy, x *proxy.Exchange) money.Micros {
	if p.PayPerRequest > 0 {
		return p.PayPerRequest
	}
	return max(p.estimate(x), 1)
}

// resourceURL is the URL the client called, as x402's resource.url.
func resourceURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.Path
}

// requirements are the x402 payment options a policy offers for a request.
func requirements(p *policy, x *proxy.Exchange) ([]x402.Requirement, error) {
	return x402.Requirements(p.Refusal.X402.Accepts, offer(p, x), resourceURL(x.Request), "LLM API request on route "+x.Route)
}

// paymentRequired adds the x402 PAYMENT-REQUIRED header to a 402 of a policy that declares x402.
func paymentRequired(h http.Header, p *policy, x *proxy.Exchange, reason string) {
	if p.Refusal.X402 == nil {
		return
	}
	reqs, err := requirements(p, x)
	if err != nil {
		return
	}
	v, err := x402.EncodeHeader(x402.PaymentRequired{X402Version: x402.Version, Error: reason,
		Resource: x402.ResourceInfo{URL: resourceURL(x.Request), Description: "LLM API request on route " + x.Route, MimeType: "application/json"},
		Accepts:  reqs})
	if err == nil {
		h.Set(x402.HeaderPaymentRequired, v)
	}
}

// pay verifies and settles the request's x402 payment for a policy through
// its facilitator, and puts the receipt in PAYMENT-RESPONSE. It returns the
// settled amount and settlement, or the answer to give instead.
func (e *Enforcer) pay(ctx context.Context, p *policy, x *proxy.Exchange, header string) (money.Micros, x402.SettleResponse, *proxy.Refusal) {
	offered, err := requirements(p, x)
	if err != nil {
		return 0, x402.SettleResponse{}, badPayment(err)
	}
	payload, req, err := x402.ParsePayment(header, offered)
	if err != nil {
		return 0, x402.SettleResponse{}, badPayment(err)
	}
	f := x402.Facilitator{URL: p.Refusal.X402.FacilitatorURL, Token: e.state.Load().tokens[p.Name]}
	if _, err := f.Verify(ctx, payload, req); err != nil {
		return 0, x402.SettleResponse{}, e.paymentFailed(x, p, err)
	}
	settled, err := f.Settle(ctx, payload, req)
	if err != nil {
		return 0, x402.SettleResponse{}, e.paymentFailed(x, p, err)
	}
	if v, err := x402.EncodeHeader(settled); err == nil {
		x.Header.Set(x402.HeaderPaymentResponse, v)
	}
	return offer(p, x), settled, nil
}

// topUp adds a settled payment to the tenant's prepaid credits, counted
// once by its transaction.
func (e *Enforcer) topUp(ctx context.Context, p *policy, x *proxy.Exchange, amount money.Micros, settled x402.SettleResponse, now time.Time) error {
	id := "x402:" + settled.Network + ":" + settled.Transaction
	if settled.Transaction == "" {
		id = "x402:request:" + x.LedgerID
	}
	return e.ledger.Grant(ctx, creditsAccount(x.Tenant, p.Currency).Key, ledger.Grant{ID: id, Amount: amount}, now)
}

// badPayment is a malformed PAYMENT-SIGNATURE: a 400 in the client's envelope.
func badPayment(err error) *proxy.Refusal {
	return &proxy.Refusal{Status: http.StatusBadRequest, Header: http.Header{"Cache-Control": {"no-store"}}, Body: func(api provider.API) []byte {
		_, b := provider.ClientError(api, &provider.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_payment",
			Message: "The PAYMENT-SIGNATURE header is not a valid x402 payment for this request: " + err.Error()})
		return b
	}}
}

// paymentFailed is a payment the facilitator refused (402 again) or could not judge (502).
func (e *Enforcer) paymentFailed(x *proxy.Exchange, p *policy, err error) *proxy.Refusal {
	var rejected *x402.RejectedError
	if errors.As(err, &rejected) {
		return e.x402Refusal(x, p, 0, offer(p, x), "payment rejected: "+rejected.Error(), time.Time{})
	}
	e.log.Error("x402 facilitator unavailable", "policy", p.Name, "request_id", x.RequestID, "error", err)
	return &proxy.Refusal{Status: http.StatusBadGateway, Header: http.Header{"Cache-Control": {"no-store"}}, Body: func(api provider.API) []byte {
		_, b := provider.ClientError(api, &provider.Error{Status: http.StatusBadGateway, Code: "facilitator_unavailable",
			Message: fmt.Sprintf("The payment could not be checked: the facilitator of policy %s is unavailable.", p.Name)})
		return b
	}}
}
