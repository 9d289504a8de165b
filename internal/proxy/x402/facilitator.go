package x402

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Default deadlines of facilitator calls. Settling waits for the chain, so it
// gets longer than verifying.
const (
	DefaultVerifyTimeout = 10 * time.Second
	DefaultSettleTimeout = 30 * time.Second
)

// maxResponseBytes bounds what is read of a facilitator's answer.
const maxResponseBytes = 1 << 20

var (
	// ErrFacilitator means the facilitator could not give a verdict: it was
	// unreachable, timed out, failed, or answered something that is not a
	// verdict. The proxy answers 502 or 503 (FacilitatorError.HTTPStatus).
	ErrFacilitator = errors.New("facilitator unavailable")
	// ErrPaymentRejected means the facilitator judged the payment and found
	// it wanting. The proxy answers 402 again.
	ErrPaymentRejected = errors.New("payment rejected")
)

// FacilitatorError is a facilitator that gave no verdict. It matches
// ErrFacilitator with errors.Is, and whatever caused it, such as
// context.DeadlineExceeded.
type FacilitatorError struct {
	Op         string // "verify" or "settle"
	StatusCode int    // the facilitator's HTTP status, 0 if it did not answer
	Msg        string
	Err        error
}

func (e *FacilitatorError) Error() string {
	s := "x402: facilitator " + e.Op + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FacilitatorError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrFacilitator}
	}
	return []error{ErrFacilitator, e.Err}
}

// HTTPStatus is the status the proxy answers: 503 Service Unavailable when
// the facilitator could not be reached in time or said it is overloaded or
// unavailable (429, 503, 504), 502 Bad Gateway for any other failure.
func (e *FacilitatorError) HTTPStatus() int {
	switch e.StatusCode {
	case 0, http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// RejectedError is a facilitator's verdict that a payment is not valid or did
// not settle. It matches ErrPaymentRejected with errors.Is.
type RejectedError struct {
	Op         string // "verify" or "settle"
	StatusCode int    // the facilitator's HTTP status
	Reason     string // invalidReason or errorReason, such as insufficient_funds
	Message    string // invalidMessage or errorMessage, if any
	Payer      string
	// Settle is the failed settlement, for the PAYMENT-RESPONSE header of
	// the 402; nil when verification failed.
	Settle *SettleResponse
}

func (e *RejectedError) Error() string {
	s := "x402: payment rejected by facilitator " + e.Op
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *RejectedError) Unwrap() error { return ErrPaymentRejected }

// HTTPStatus is the status the proxy answers: 402 Payment Required.
func (e *RejectedError) HTTPStatus() int { return http.StatusPaymentRequired }

// Facilitator is a client of an x402 facilitator's /verify and /settle.
// Its zero deadlines are the defaults. Its token, and a password in its URL,
// never appear in its errors, nor when it is formatted or marshalled to JSON.
type Facilitator struct {
	// URL is the facilitator's base URL; /verify and /settle are appended.
	URL string
	// Token, if set, is sent as a bearer token.
	Token string
	// Client sends the requests; nil is http.DefaultClient.
	Client *http.Client
	// VerifyTimeout and SettleTimeout bound each call, on top of the
	// caller's context; zero is DefaultVerifyTimeout or DefaultSettleTimeout.
	VerifyTimeout time.Duration
	SettleTimeout time.Duration
}

// String describes f without its token.
func (f Facilitator) String() string {
	tok := "none"
	if f.Token != "" {
		tok = "redacted"
	}
	return fmt.Sprintf("x402.Facilitator{URL: %s, Token: %s}", redactURL(f.URL), tok)
}

// MarshalJSON describes f without its token or a password in its URL, for
// structured logs.
func (f Facilitator) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		URL           string `json:"url"`
		Token         bool   `json:"token"`
		VerifyTimeout string `json:"verifyTimeout"`
		SettleTimeout string `json:"settleTimeout"`
	}{redactURL(f.URL), f.Token != "", cmpDuration(f.VerifyTimeout, DefaultVerifyTimeout).String(),
		cmpDuration(f.SettleTimeout, DefaultSettleTimeout).String()})
}

// Format formats f as String does, whatever the verb, so that no verb prints
// the token.
func (f Facilitator) Format(s fmt.State, _ rune) { _, _ = io.WriteString(s, f.String()) }

// Verify asks the facilitator whether payload pays req. It returns the
// verdict when the payment is valid, a *RejectedError when the facilitator
// says it is not, and a *FacilitatorError when there is no verdict.
func (f Facilitator) Verify(ctx context.Context, payload PaymentPayload, req Requirement) (VerifyResponse, error) {
	var v struct {
		IsValid *bool `json:"isValid"`
		VerifyResponse
	}
	status, err := f.post(ctx, "verify", cmpDuration(f.VerifyTimeout, DefaultVerifyTimeout), payload, req, &v, func() bool { return v.IsValid != nil })
	if err != nil {
		return VerifyResponse{}, err
	}
	v.VerifyResponse.IsValid = *v.IsValid
	if !v.VerifyResponse.IsValid {
		return v.VerifyResponse, &RejectedError{Op: "verify", StatusCode: status, Reason: v.InvalidReason, Message: v.InvalidMessage, Payer: v.Payer}
	}
	if status >= 300 {
		return VerifyResponse{}, &FacilitatorError{Op: "verify", StatusCode: status, Msg: fmt.Sprintf("answered %d with a valid verdict", status)}
	}
	return v.VerifyResponse, nil
}

// Settle asks the facilitator to execute payload, which Verify found valid.
// It returns the settlement, for the PAYMENT-RESPONSE header, when it
// succeeded; a *RejectedError, with the failed settlement, when the
// facilitator says it failed; and a *FacilitatorError when there is no
// verdict. After a *FacilitatorError the payment may or may not have settled:
// the proxy must not serve the request on it.
func (f Facilitator) Settle(ctx context.Context, payload PaymentPayload, req Requirement) (SettleResponse, error) {
	var v struct {
		Success *bool `json:"success"`
		SettleResponse
	}
	status, err := f.post(ctx, "settle", cmpDuration(f.SettleTimeout, DefaultSettleTimeout), payload, req, &v, func() bool { return v.Success != nil })
	if err != nil {
		return SettleResponse{}, err
	}
	v.SettleResponse.Success = *v.Success
	s := v.SettleResponse
	if !s.Success {
		if s.Network == "" {
			s.Network = req.Network
		}
		return s, &RejectedError{Op: "settle", StatusCode: status, Reason: s.ErrorReason, Message: s.ErrorMessage, Payer: s.Payer, Settle: &s}
	}
	switch {
	case status >= 300:
		return SettleResponse{}, &FacilitatorError{Op: "settle", StatusCode: status, Msg: fmt.Sprintf("answered %d with a successful settlement", status)}
	case s.Transaction == "":
		return SettleResponse{}, &FacilitatorError{Op: "settle", StatusCode: status, Msg: "settled without a transaction"}
	}
	if s.Network == "" {
		s.Network = req.Network
	}
	return s, nil
}

// post sends one facilitator call and decodes its answer into out. A 2xx
// answer must be a verdict (hasVerdict after decoding); a 4xx answer is taken
// as a verdict only if it is one and its status is about the payment rather
// than about this client; every other answer is a *FacilitatorError.
func (f Facilitator) post(ctx context.Context, op string, timeout time.Duration, payload PaymentPayload, req Requirement, out any, hasVerdict func() bool) (int, error) {
	fail := func(status int, msg string, err error) (int, error) {
		return status, &FacilitatorError{Op: op, StatusCode: status, Msg: msg, Err: err}
	}
	endpoint, err := f.endpoint(op)
	if err != nil {
		return fail(http.StatusBadGateway, "bad URL", err)
	}
	if !validToken(f.Token) {
		return fail(http.StatusBadGateway, "the token has characters a header cannot carry", nil)
	}
	body, err := json.Marshal(FacilitatorRequest{X402Version: Version, PaymentPayload: payload, PaymentRequirements: req})
	if err != nil {
		return fail(http.StatusBadGateway, "cannot encode the request", err)
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fail(http.StatusBadGateway, "cannot build the request", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	if f.Token != "" {
		hreq.Header.Set("Authorization", "Bearer "+f.Token)
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return fail(0, "no answer", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fail(0, fmt.Sprintf("reading the %d answer", resp.StatusCode), err)
	}
	if len(data) > maxResponseBytes {
		return fail(resp.StatusCode, fmt.Sprintf("answered %d with more than %d bytes", resp.StatusCode, maxResponseBytes), nil)
	}

	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		if err := json.Unmarshal(data, out); err != nil || !hasVerdict() {
			return fail(s, fmt.Sprintf("answered %d without a verdict: %s", s, excerpt(data)), nil)
		}
		return s, nil
	case s >= 400 && s < 500 && !aboutClient(s):
		if err := json.Unmarshal(data, out); err == nil && hasVerdict() {
			return s, nil
		}
		return fail(s, fmt.Sprintf("answered %d: %s", s, excerpt(data)), nil)
	default:
		return fail(s, fmt.Sprintf("answered %d: %s", s, excerpt(data)), nil)
	}
}

// aboutClient reports whether a 4xx status is about the caller's access or
// rate rather than about the payment.
func aboutClient(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusProxyAuthRequired, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusTooManyRequests:
		return true
	}
	return false
}

func (f Facilitator) endpoint(op string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(f.URL))
	if err != nil {
		return "", errors.New("the facilitator URL does not parse")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s is not an http(s) URL", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/" + op
	u.RawPath = ""
	return u.String(), nil
}

// validToken reports whether a token can go into a header unchanged.
func validToken(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f {
			return false
		}
	}
	return true
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// excerpt quotes the start of a facilitator's answer for an error message.
func excerpt(b []byte) string {
	const limit = 200
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "(empty body)"
	}
	if len(b) > limit {
		return fmt.Sprintf("%q...", b[:limit])
	}
	return fmt.Sprintf("%q", b)
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
