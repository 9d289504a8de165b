// Package x402test is a fake x402 facilitator and fake payments for tests.
//
// The payments are well-formed x402 v2 "exact" payments on EVM networks, but
// their EIP-3009 signatures are fakes: a keyed hash of the authorization that
// only this package's Server checks. Nothing here touches a chain or a key.
package x402test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/internal/proxy/x402"
)

// DefaultPayer is the address fake payments come from unless a Payer says
// otherwise.
const DefaultPayer = "0x5eed000000000000000000000000000000000001"

// Authorization is an EIP-3009 transferWithAuthorization, as the exact
// scheme carries it; integers are decimal strings.
type Authorization struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Value       string `json:"value"`
	ValidAfter  string `json:"validAfter"`
	ValidBefore string `json:"validBefore"`
	Nonce       string `json:"nonce"` // 0x and 32 bytes of hex
}

// ExactEVMPayload is the payload of an exact payment on an EVM network.
type ExactEVMPayload struct {
	Signature     string        `json:"signature"` // 0x and 65 bytes of hex
	Authorization Authorization `json:"authorization"`
}

// Payer makes fake exact payments.
type Payer struct {
	// Address pays; empty is DefaultPayer.
	Address string
	// Now is the clock of the validity window; nil is time.Now.
	Now func() time.Time
}

// Pay builds a payment of req. The seed determines the nonce, and so the
// transaction hash the Server settles it under: the same seed is the same
// authorization, which the Server settles only once.
func (p Payer) Pay(req x402.Requirement, seed string) (x402.PaymentPayload, error) {
	if req.Scheme != "exact" {
		return x402.PaymentPayload{}, fmt.Errorf("x402test: scheme %q is not exact", req.Scheme)
	}
	if !strings.HasPrefix(req.Network, "eip155:") {
		return x402.PaymentPayload{}, fmt.Errorf("x402test: network %q is not an EVM (eip155) network", req.Network)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	from := p.Address
	if from == "" {
		from = DefaultPayer
	}
	t := now().Unix()
	timeout := int64(req.MaxTimeoutSeconds)
	if timeout <= 0 {
		timeout = 60
	}
	nonce := sha256.Sum256([]byte("x402test nonce\x00" + seed))
	a := Authorization{
		From:        from,
		To:          req.PayTo,
		Value:       req.Amount,
		ValidAfter:  strconv.FormatInt(t-600, 10),
		ValidBefore: strconv.FormatInt(t+timeout, 10),
		Nonce:       "0x" + hex.EncodeToString(nonce[:]),
	}
	body, err := json.Marshal(ExactEVMPayload{Signature: Signature(req.Network, req.Asset, a), Authorization: a})
	if err != nil {
		return x402.PaymentPayload{}, err
	}
	return x402.PaymentPayload{X402Version: x402.Version, Accepted: req, Payload: body}, nil
}

// Header builds a payment of req as a PAYMENT-SIGNATURE header value.
func (p Payer) Header(req x402.Requirement, seed string) (string, error) {
	pp, err := p.Pay(req, seed)
	if err != nil {
		return "", err
	}
	return x402.EncodeHeader(pp)
}

// ExactEVMPayment is Payer{}.Pay: a payment of req from DefaultPayer.
func ExactEVMPayment(req x402.Requirement, seed string) (x402.PaymentPayload, error) {
	return Payer{}.Pay(req, seed)
}

// ExactEVMHeader is Payer{}.Header: a PAYMENT-SIGNATURE header value paying
// req from DefaultPayer.
func ExactEVMHeader(req x402.Requirement, seed string) (string, error) {
	return Payer{}.Header(req, seed)
}

// Signature is the fake signature of an authorization of asset on network:
// 65 bytes, hex, derived from every signed field, so that the Server notices
// any change to them.
func Signature(network, asset string, a Authorization) string {
	msg := strings.Join([]string{"x402test signature", network, strings.ToLower(asset), strings.ToLower(a.From),
		strings.ToLower(a.To), a.Value, a.ValidAfter, a.ValidBefore, strings.ToLower(a.Nonce)}, "\x00")
	h1 := sha256.Sum256([]byte(msg + "\x001"))
	h2 := sha256.Sum256([]byte(msg + "\x002"))
	return "0x" + hex.EncodeToString(h1[:]) + hex.EncodeToString(h2[:]) + "1b"
}

// TxHash is the transaction hash under which the Server settles the
// authorization with nonce on network.
func TxHash(network, nonce string) string {
	h := sha256.Sum256([]byte("x402test transaction\x00" + network + "\x00" + strings.ToLower(nonce)))
	return "0x" + hex.EncodeToString(h[:])
}

// TxHashOf is the transaction hash under which the Server settles p, which
// must be a payment made by this package.
func TxHashOf(p x402.PaymentPayload) (string, error) {
	var e ExactEVMPayload
	if err := json.Unmarshal(p.Payload, &e); err != nil {
		return "", fmt.Errorf("x402test: not an exact EVM payload: %w", err)
	}
	return TxHash(p.Accepted.Network, e.Authorization.Nonce), nil
}
