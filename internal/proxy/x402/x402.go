// Package x402 speaks version 2 of the x402 payment protocol over HTTP for the
// proxy: it builds the PAYMENT-REQUIRED header of a 402 from a policy's
// payment options, reads and checks a client's PAYMENT-SIGNATURE header, and
// asks a facilitator to verify and settle the payment.
//
// The flow, as the proxy runs it:
//
//	reqs, _ := x402.Requirements(policy.Refusal.X402.Accepts, price, url, desc)
//	h, _ := x402.EncodeHeader(x402.NewPaymentRequired(msg, resource, reqs))
//	// 402 with PAYMENT-REQUIRED: h
//	payload, req, err := x402.ParsePayment(r.Header.Get(x402.HeaderPaymentSignature), reqs)
//	// err (*InvalidPaymentError): 400 with err.Error()
//	_, err = facilitator.Verify(ctx, payload, req)
//	settled, err := facilitator.Settle(ctx, payload, req)
//	// err: *RejectedError (ErrPaymentRejected) is 402 again, with the failed
//	// settlement in PAYMENT-RESPONSE; *FacilitatorError (ErrFacilitator) is
//	// 502 or 503. Both have HTTPStatus().
//	// Success: serve, with PAYMENT-RESPONSE: EncodeHeader(settled).
//
// The package has no Kubernetes imports and does no logging.
package x402

import "encoding/json"

// Version is the x402 protocol version this package speaks.
const Version = 2

// HTTP header names of the x402 v2 HTTP transport.
const (
	// HeaderPaymentRequired carries a PaymentRequired on a 402.
	HeaderPaymentRequired = "PAYMENT-REQUIRED"
	// HeaderPaymentSignature carries the client's PaymentPayload.
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"
	// HeaderPaymentResponse carries the SettleResponse of a paid request.
	HeaderPaymentResponse = "PAYMENT-RESPONSE"
)

// PaymentRequired is what a 402 offers, sent base64-encoded in the
// PAYMENT-REQUIRED header.
type PaymentRequired struct {
	X402Version int             `json:"x402Version"`
	Error       string          `json:"error,omitempty"`
	Resource    ResourceInfo    `json:"resource"`
	Accepts     []Requirement   `json:"accepts"`
	Extensions  json.RawMessage `json:"extensions,omitempty"`
}

// ResourceInfo describes the resource that is paid for.
type ResourceInfo struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// Requirement is one accepted way to pay (x402's PaymentRequirements).
type Requirement struct {
	Scheme  string `json:"scheme"`
	Network string `json:"network"` // CAIP-2, such as eip155:84532
	// Amount is a decimal count of the asset's atomic units.
	Amount            string          `json:"amount"`
	Asset             string          `json:"asset"`
	PayTo             string          `json:"payTo"`
	MaxTimeoutSeconds int             `json:"maxTimeoutSeconds"`
	Extra             json.RawMessage `json:"extra,omitempty"`
}

// PaymentPayload is a client's payment, sent base64-encoded in the
// PAYMENT-SIGNATURE header.
type PaymentPayload struct {
	X402Version int           `json:"x402Version"`
	Resource    *ResourceInfo `json:"resource,omitempty"`
	// Accepted is the requirement the client chose to pay.
	Accepted Requirement `json:"accepted"`
	// Payload is the scheme's proof of payment, such as an EIP-3009
	// authorization and its signature for exact on EVM.
	Payload    json.RawMessage `json:"payload"`
	Extensions json.RawMessage `json:"extensions,omitempty"`
}

// FacilitatorRequest is the body of POST /verify and POST /settle.
type FacilitatorRequest struct {
	X402Version         int            `json:"x402Version"`
	PaymentPayload      PaymentPayload `json:"paymentPayload"`
	PaymentRequirements Requirement    `json:"paymentRequirements"`
}

// VerifyResponse is a facilitator's answer to /verify.
type VerifyResponse struct {
	IsValid        bool   `json:"isValid"`
	InvalidReason  string `json:"invalidReason,omitempty"`
	InvalidMessage string `json:"invalidMessage,omitempty"`
	Payer          string `json:"payer,omitempty"`
}

// SettleResponse is a facilitator's answer to /settle, and what the proxy
// sends back base64-encoded in the PAYMENT-RESPONSE header.
type SettleResponse struct {
	Success      bool   `json:"success"`
	ErrorReason  string `json:"errorReason,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	Payer        string `json:"payer,omitempty"`
	// Transaction is the transaction hash; empty when settlement failed.
	Transaction string `json:"transaction"`
	Network     string `json:"network"`
	// Amount is what was settled, in atomic units, when the scheme says.
	Amount string `json:"amount,omitempty"`
}

// NewPaymentRequired assembles the body of a PAYMENT-REQUIRED header.
func NewPaymentRequired(message string, resource ResourceInfo, accepts []Requirement) PaymentRequired {
	return PaymentRequired{X402Version: Version, Error: message, Resource: resource, Accepts: accepts}
}
