package payment

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
)

// ProblemType is the RFC 9457 problem type of Tollgate's 402.
const ProblemType = "https://tollgate.dev/problems/payment-required"

// problem is the 402 body: an RFC 9457 problem document and an OpenAI
// error at once, with what the tenant needs to act on it.
type problem struct {
	Type          string    `json:"type"`
	Title         string    `json:"title"`
	Status        int       `json:"status"`
	Detail        string    `json:"detail"`
	Instance      string    `json:"instance,omitempty"`
	Error         errorBody `json:"error"`
	Policy        string    `json:"policy"`
	Tenant        string    `json:"tenant"`
	Currency      string    `json:"currency"`
	Balance       string    `json:"balance"`
	EstimatedCost string    `json:"estimatedCost"`
	TopUpURL      string    `json:"topUpURL,omitempty"`
	RetryAfter    int64     `json:"retryAfterSeconds,omitempty"`
}

type errorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// refusal renders the 402 the policy declares.
func (e *Enforcer) refusal(x *proxy.Exchange, p *policy, balance, estimate money.Micros, reset time.Time, now time.Time) *proxy.Refusal {
	ref := p.Refusal
	msg := ref.Message
	if msg == "" {
		msg = fmt.Sprintf("Payment required: this request may cost up to %s %s and %s leaves %s %s.",
			estimate, p.Currency, p.Name, max(balance, 0), p.Currency)
	}
	pr := problem{
		Type: ProblemType, Title: "Payment Required", Status: http.StatusPaymentRequired, Detail: msg, Instance: x.RequestID,
		Error:  errorBody{Message: msg, Type: "insufficient_quota", Code: cmp.Or(ref.Code, "payment_required")},
		Policy: p.Name, Tenant: x.Tenant, Currency: p.Currency, Balance: max(balance, 0).String(), EstimatedCost: estimate.String(),
		TopUpURL: ref.TopUpURL,
	}
	h := http.Header{}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Should-Retry", "false")
	if !reset.IsZero() && reset.After(now) {
		pr.RetryAfter = int64((reset.Sub(now) + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(pr.RetryAfter, 10))
	}
	for _, hd := range ref.Headers {
		h.Add(hd.Name, hd.Value)
	}
	body := func(api provider.API) []byte {
		if api == provider.AnthropicMessages {
			return anthropicBody(pr)
		}
		b, _ := json.Marshal(pr)
		return b
	}
	return &proxy.Refusal{Status: http.StatusPaymentRequired, Header: h, Body: body}
}

// anthropicBody is the 402 in Anthropic's envelope, with the same details beside it.
func anthropicBody(pr problem) []byte {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Code    string `json:"code"`
		} `json:"error"`
		Title         string `json:"title"`
		Status        int    `json:"status"`
		Detail        string `json:"detail"`
		Policy        string `json:"policy"`
		Tenant        string `json:"tenant"`
		Currency      string `json:"currency"`
		Balance       string `json:"balance"`
		EstimatedCost string `json:"estimatedCost"`
		TopUpURL      string `json:"topUpURL,omitempty"`
	}{Type: "error", Error: struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Code    string `json:"code"`
	}{"billing_error", pr.Detail, pr.Error.Code}, Title: pr.Title, Status: pr.Status, Detail: pr.Detail, Policy: pr.Policy,
		Tenant: pr.Tenant, Currency: pr.Currency, Balance: pr.Balance, EstimatedCost: pr.EstimatedCost, TopUpURL: pr.TopUpURL})
	return b
}

// ledgerUnavailable is the 503 of a fail-closed policy whose ledger cannot be reached.
func ledgerUnavailable(p *policy) *proxy.Refusal {
	h := http.Header{}
	h.Set("Retry-After", "1")
	h.Set("Cache-Control", "no-store")
	msg := fmt.Sprintf("Spend cannot be checked right now (policy %s fails closed); retry shortly.", p.Name)
	return &proxy.Refusal{Status: http.StatusServiceUnavailable, Header: h, Body: func(api provider.API) []byte {
		_, b := provider.ClientError(api, &provider.Error{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "ledger_unavailable", Message: msg})
		return b
	}}
}
