package x402

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

var (
	// ErrUnsupportedVersion means the payment is not x402 version 2.
	ErrUnsupportedVersion = errors.New("unsupported x402Version")
	// ErrInvalidPayload means the payment lacks a field or has one of the
	// wrong shape.
	ErrInvalidPayload = errors.New("invalid payment payload")
	// ErrNotOffered means the payment's accepted requirements are none of
	// those the 402 offered.
	ErrNotOffered = errors.New("accepted requirements were not offered")
)

// InvalidPaymentError is every failure of ParsePayment: the client sent a
// PAYMENT-SIGNATURE header that cannot be a payment for this request, and the
// proxy answers 400 with Error() as the message. errors.Is tells the kind:
// ErrMalformedHeader, ErrInvalidJSON, ErrUnsupportedVersion,
// ErrInvalidPayload or ErrNotOffered.
type InvalidPaymentError struct {
	Err error
}

func (e *InvalidPaymentError) Error() string {
	return "invalid " + HeaderPaymentSignature + " header: " + e.Err.Error()
}

func (e *InvalidPaymentError) Unwrap() error { return e.Err }

// HTTPStatus is the status the proxy answers: 400 Bad Request.
func (e *InvalidPaymentError) HTTPStatus() int { return http.StatusBadRequest }

func invalid(kind error, format string, args ...any) error {
	return &InvalidPaymentError{Err: fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))}
}

// wirePayload is a PaymentPayload before its fields are checked.
type wirePayload struct {
	X402Version json.RawMessage `json:"x402Version"`
	Resource    json.RawMessage `json:"resource"`
	Accepted    json.RawMessage `json:"accepted"`
	Payload     json.RawMessage `json:"payload"`
	Extensions  json.RawMessage `json:"extensions"`
}

// ParsePayment decodes a PAYMENT-SIGNATURE header value and checks it against
// the requirements the 402 offered: it must be an x402 v2 payload whose
// accepted requirement has the scheme, network, asset, payTo and amount of one
// of offered (EVM addresses compared without regard to case), with a payload
// object. It returns the payment and the matching offered requirement, which
// is what the facilitator must verify against; every error is an
// *InvalidPaymentError.
//
// ParsePayment checks the protocol, not the proof: the signature and the
// scheme's payload are the facilitator's to verify.
func ParsePayment(header string, offered []Requirement) (PaymentPayload, Requirement, error) {
	raw, err := decodeBase64(header)
	if err != nil {
		return PaymentPayload{}, Requirement{}, &InvalidPaymentError{Err: err}
	}
	if !isObject(raw) {
		return PaymentPayload{}, Requirement{}, invalid(ErrInvalidJSON, "the payment is not a JSON object")
	}
	var w wirePayload
	if err := json.Unmarshal(raw, &w); err != nil {
		return PaymentPayload{}, Requirement{}, invalid(ErrInvalidJSON, "%s", jsonProblem(err))
	}

	var p PaymentPayload
	if isAbsent(w.X402Version) {
		return PaymentPayload{}, Requirement{}, invalid(ErrUnsupportedVersion, "x402Version is missing; this server speaks x402 version %d", Version)
	}
	if err := json.Unmarshal(w.X402Version, &p.X402Version); err != nil {
		return PaymentPayload{}, Requirement{}, invalid(ErrUnsupportedVersion, "x402Version must be an integer")
	}
	if p.X402Version != Version {
		return PaymentPayload{}, Requirement{}, invalid(ErrUnsupportedVersion, "x402Version %d is not supported; this server speaks x402 version %d", p.X402Version, Version)
	}

	if isAbsent(w.Accepted) {
		return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "accepted is missing")
	}
	if !isObject(w.Accepted) {
		return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "accepted must be an object")
	}
	if err := json.Unmarshal(w.Accepted, &p.Accepted); err != nil {
		return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "accepted: %s", jsonProblem(err))
	}
	for _, f := range [...]struct{ name, value string }{
		{"scheme", p.Accepted.Scheme}, {"network", p.Accepted.Network}, {"amount", p.Accepted.Amount},
		{"asset", p.Accepted.Asset}, {"payTo", p.Accepted.PayTo},
	} {
		if f.value == "" {
			return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "accepted.%s is missing or empty", f.name)
		}
	}
	if len(p.Accepted.Extra) > 0 && !isObject(p.Accepted.Extra) && !isNull(p.Accepted.Extra) {
		return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "accepted.extra must be an object")
	}

	if isAbsent(w.Payload) {
		return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "payload is missing")
	}
	if !isObject(w.Payload) {
		return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "payload must be an object")
	}
	p.Payload = w.Payload

	if !isAbsent(w.Resource) {
		if !isObject(w.Resource) {
			return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "resource must be an object")
		}
		p.Resource = new(ResourceInfo)
		if err := json.Unmarshal(w.Resource, p.Resource); err != nil {
			return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "resource: %s", jsonProblem(err))
		}
	}
	if !isAbsent(w.Extensions) {
		if !isObject(w.Extensions) {
			return PaymentPayload{}, Requirement{}, invalid(ErrInvalidPayload, "extensions must be an object")
		}
		p.Extensions = w.Extensions
	}

	req, err := match(p.Accepted, offered)
	if err != nil {
		return PaymentPayload{}, Requirement{}, err
	}
	return p, req, nil
}

// match finds the offered requirement that a accepts, or explains the
// difference from the nearest offer.
func match(a Requirement, offered []Requirement) (Requirement, error) {
	var near *Requirement
	for i := range offered {
		o := &offered[i]
		if o.Scheme != a.Scheme || o.Network != a.Network {
			continue
		}
		if sameAddress(o.Network, o.Asset, a.Asset) && sameAddress(o.Network, o.PayTo, a.PayTo) && o.Amount == a.Amount {
			return *o, nil
		}
		if near == nil {
			near = o
		}
	}
	switch {
	case near == nil:
		return Requirement{}, invalid(ErrNotOffered, "scheme %s on network %s was not offered", quote(a.Scheme), quote(a.Network))
	case !sameAddress(near.Network, near.Asset, a.Asset):
		return Requirement{}, invalid(ErrNotOffered, "asset %s is not the offered %s", quote(a.Asset), quote(near.Asset))
	case !sameAddress(near.Network, near.PayTo, a.PayTo):
		return Requirement{}, invalid(ErrNotOffered, "payTo %s is not the offered %s", quote(a.PayTo), quote(near.PayTo))
	default:
		return Requirement{}, invalid(ErrNotOffered, "amount %s is not the offered %s", quote(a.Amount), quote(near.Amount))
	}
}

// sameAddress compares addresses: EVM hex addresses without regard to case,
// as their mixed case is only a checksum; others, such as Solana's base58,
// exactly.
func sameAddress(network, a, b string) bool {
	if strings.HasPrefix(network, "eip155:") && isHexAddress(a) && isHexAddress(b) {
		return strings.EqualFold(a, b)
	}
	return a == b
}

func isHexAddress(s string) bool {
	if len(s) != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return false
	}
	for i := 2; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// quote quotes a client's value for an error message, cut to a sane length.
func quote(s string) string {
	const limit = 80
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

func isAbsent(raw json.RawMessage) bool { return len(raw) == 0 || isNull(raw) }

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func isObject(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}
