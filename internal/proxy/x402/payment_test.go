package x402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The PAYMENT-SIGNATURE example of the x402 v2 HTTP transport specification.
const specPaymentSignature = "eyJ4NDAyVmVyc2lvbiI6MiwicmVzb3VyY2UiOnsidXJsIjoiaHR0cHM6Ly9hcGkuZXhhbXBsZS5jb20vcHJlbWl1bS1kYXRhIiwiZGVzY3JpcHRpb24iOiJBY2Nlc3MgdG8gcHJlbWl1bSBtYXJrZXQgZGF0YSIsIm1pbWVUeXBlIjoiYXBwbGljYXRpb24vanNvbiJ9LCJhY2NlcHRlZCI6eyJzY2hlbWUiOiJleGFjdCIsIm5ldHdvcmsiOiJlaXAxNTU6ODQ1MzIiLCJhbW91bnQiOiIxMDAwMCIsImFzc2V0IjoiMHgwMzZDYkQ1Mzg0MmM1NDI2NjM0ZTc5Mjk1NDFlQzIzMThmM2RDRjdlIiwicGF5VG8iOiIweDIwOTY5M0JjNmFmYzBDNTMyOGJBMzZGYUYwM0M1MTRFRjMxMjI4N0MiLCJtYXhUaW1lb3V0U2Vjb25kcyI6NjAsImV4dHJhIjp7Im5hbWUiOiJVU0RDIiwidmVyc2lvbiI6IjIifX0sInBheWxvYWQiOnsic2lnbmF0dXJlIjoiMHgyZDZhNzU4OGQ2YWNjYTUwNWNiZjBkOWE0YTIyN2UwYzUyYzZjMzQwMDhjOGU4OTg2YTEyODMyNTk3NjQxNzM2MDhhMmNlNjQ5NjY0MmUzNzdkNmRhOGRiYmY1ODM2ZTliZDE1MDkyZjllY2FiMDVkZWQzZDYyOTNhZjE0OGI1NzFjIiwiYXV0aG9yaXphdGlvbiI6eyJmcm9tIjoiMHg4NTdiMDY1MTlFOTFlM0E1NDUzODc5MWJEYmIwRTIyMzczZTM2YjY2IiwidG8iOiIweDIwOTY5M0JjNmFmYzBDNTMyOGJBMzZGYUYwM0M1MTRFRjMxMjI4N0MiLCJ2YWx1ZSI6IjEwMDAwIiwidmFsaWRBZnRlciI6IjE3NDA2NzIwODkiLCJ2YWxpZEJlZm9yZSI6IjE3NDA2NzIxNTQiLCJub25jZSI6IjB4ZjM3NDY2MTNjMmQ5MjBiNWZkYWJjMDg1NmYyYWViMmQ0Zjg4ZWU2MDM3YjhjYzVkMDRhNzFhNDQ2MmYxMzQ4MCJ9fX0="

func TestParsePaymentSpecExample(t *testing.T) {
	other := specRequirement()
	other.Network = "eip155:8453"
	offered := []Requirement{other, specRequirement()}
	p, req, err := ParsePayment(specPaymentSignature, offered)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(specRequirement(), req); diff != "" {
		t.Errorf("requirement (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(specRequirement(), p.Accepted); diff != "" {
		t.Errorf("accepted (-want +got):\n%s", diff)
	}
	want := &ResourceInfo{URL: "https://api.example.com/premium-data", Description: "Access to premium market data", MimeType: "application/json"}
	if diff := cmp.Diff(want, p.Resource); diff != "" {
		t.Errorf("resource (-want +got):\n%s", diff)
	}
	var payload struct {
		Signature     string `json:"signature"`
		Authorization struct {
			Value string `json:"value"`
			Nonce string `json:"nonce"`
		} `json:"authorization"`
	}
	if err := json.Unmarshal(p.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if payload.Authorization.Value != "10000" || len(payload.Signature) != 132 {
		t.Errorf("payload = %+v", payload)
	}
}

// payment is a valid payment of specRequirement as a JSON object, for tests
// to break.
func payment() map[string]any {
	return map[string]any{
		"x402Version": 2,
		"resource":    map[string]any{"url": "https://gateway.example.com/v1/chat/completions"},
		"accepted": map[string]any{
			"scheme": "exact", "network": "eip155:84532", "amount": "10000",
			"asset": baseSepoliaUSDC, "payTo": payTo, "maxTimeoutSeconds": 60,
			"extra": map[string]any{"name": "USDC", "version": "2"},
		},
		"payload":    map[string]any{"signature": "0x00", "authorization": map[string]any{"value": "10000"}},
		"extensions": map[string]any{},
	}
}

func encodeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestParsePaymentAccepts(t *testing.T) {
	offered := []Requirement{specRequirement()}
	for _, tc := range []struct {
		name   string
		change func(p map[string]any)
		encode func(b []byte) string
	}{
		{name: "as sent"},
		{name: "lower-case EVM addresses", change: func(p map[string]any) {
			a := p["accepted"].(map[string]any)
			a["asset"] = strings.ToLower(baseSepoliaUSDC)
			a["payTo"] = strings.ToLower(payTo)
		}},
		{name: "without optional fields", change: func(p map[string]any) {
			delete(p, "resource")
			delete(p, "extensions")
			delete(p["accepted"].(map[string]any), "extra")
		}},
		{name: "null optional fields", change: func(p map[string]any) {
			p["resource"] = nil
			p["extensions"] = nil
			p["accepted"].(map[string]any)["extra"] = nil
		}},
		{name: "different maxTimeoutSeconds and extra", change: func(p map[string]any) {
			a := p["accepted"].(map[string]any)
			a["maxTimeoutSeconds"] = 30
			a["extra"] = map[string]any{"name": "USD Coin"}
		}},
		{name: "unknown fields", change: func(p map[string]any) { p["future"] = true }},
		{name: "URL-safe unpadded", encode: base64.RawURLEncoding.EncodeToString},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := payment()
			if tc.change != nil {
				tc.change(p)
			}
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			enc := base64.StdEncoding.EncodeToString
			if tc.encode != nil {
				enc = tc.encode
			}
			got, req, err := ParsePayment(enc(b), offered)
			if err != nil {
				t.Fatalf("ParsePayment: %v", err)
			}
			// The requirement to verify against is the one offered, not
			// the client's copy of it.
			if diff := cmp.Diff(specRequirement(), req); diff != "" {
				t.Errorf("requirement (-want +got):\n%s", diff)
			}
			if got.X402Version != 2 || !strings.HasPrefix(string(got.Payload), "{") {
				t.Errorf("payment = %+v", got)
			}
		})
	}
}

func TestParsePaymentRejects(t *testing.T) {
	solana := Requirement{Scheme: "exact", Network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", Amount: "10000",
		Asset: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", PayTo: "CKPKJWNdJEqa81x7CkZ14BVPiY6y16Sxs7owznqtWYp5", MaxTimeoutSeconds: 60}
	offered := []Requirement{specRequirement(), solana}
	accepted := func(field string, v any) func(map[string]any) {
		return func(p map[string]any) { p["accepted"].(map[string]any)[field] = v }
	}
	set := func(field string, v any) func(map[string]any) {
		return func(p map[string]any) { p[field] = v }
	}
	for _, tc := range []struct {
		name   string
		header string                 // used if set
		change func(p map[string]any) // else payment() changed
		raw    string                 // else this JSON, if set
		kind   error
		msg    string
	}{
		{name: "empty", header: " ", kind: ErrMalformedHeader, msg: "empty"},
		{name: "not base64", header: "not base64!", kind: ErrMalformedHeader, msg: "not base64"},
		{name: "v1 JSON sent raw", header: `{"x402Version":1}`, kind: ErrMalformedHeader, msg: "character '{'"},
		{name: "not JSON", raw: "payment", kind: ErrInvalidJSON, msg: "not valid JSON"},
		{name: "JSON array", raw: `[{"x402Version":2}]`, kind: ErrInvalidJSON, msg: "not a JSON object"},
		{name: "JSON null", raw: `null`, kind: ErrInvalidJSON, msg: "not a JSON object"},
		{name: "truncated JSON", raw: `{"x402Version":2,`, kind: ErrInvalidJSON, msg: "not valid JSON"},
		{name: "version missing", change: func(p map[string]any) { delete(p, "x402Version") }, kind: ErrUnsupportedVersion, msg: "x402Version is missing"},
		{name: "version 1", change: set("x402Version", 1), kind: ErrUnsupportedVersion, msg: "x402Version 1 is not supported"},
		{name: "version 3", change: set("x402Version", 3), kind: ErrUnsupportedVersion, msg: "x402Version 3 is not supported"},
		{name: "version string", change: set("x402Version", "2"), kind: ErrUnsupportedVersion, msg: "must be an integer"},
		{name: "version fraction", change: set("x402Version", 2.5), kind: ErrUnsupportedVersion, msg: "must be an integer"},
		{name: "accepted missing", change: func(p map[string]any) { delete(p, "accepted") }, kind: ErrInvalidPayload, msg: "accepted is missing"},
		{name: "accepted null", change: set("accepted", nil), kind: ErrInvalidPayload, msg: "accepted is missing"},
		{name: "accepted array", change: set("accepted", []any{}), kind: ErrInvalidPayload, msg: "accepted must be an object"},
		{name: "amount number", change: accepted("amount", 10000), kind: ErrInvalidPayload, msg: "field amount must not be a JSON number"},
		{name: "timeout string", change: accepted("maxTimeoutSeconds", "60"), kind: ErrInvalidPayload, msg: "maxTimeoutSeconds"},
		{name: "scheme empty", change: accepted("scheme", ""), kind: ErrInvalidPayload, msg: "accepted.scheme is missing or empty"},
		{name: "payTo missing", change: func(p map[string]any) { delete(p["accepted"].(map[string]any), "payTo") }, kind: ErrInvalidPayload, msg: "accepted.payTo"},
		{name: "extra string", change: accepted("extra", "USDC"), kind: ErrInvalidPayload, msg: "accepted.extra must be an object"},
		{name: "payload missing", change: func(p map[string]any) { delete(p, "payload") }, kind: ErrInvalidPayload, msg: "payload is missing"},
		{name: "payload string", change: set("payload", "0xdeadbeef"), kind: ErrInvalidPayload, msg: "payload must be an object"},
		{name: "resource string", change: set("resource", "https://x.example"), kind: ErrInvalidPayload, msg: "resource must be an object"},
		{name: "resource url number", change: set("resource", map[string]any{"url": 1}), kind: ErrInvalidPayload, msg: "resource: field url"},
		{name: "extensions array", change: set("extensions", []any{}), kind: ErrInvalidPayload, msg: "extensions must be an object"},
		{name: "scheme not offered", change: accepted("scheme", "upto"), kind: ErrNotOffered, msg: `scheme "upto" on network "eip155:84532" was not offered`},
		{name: "network not offered", change: accepted("network", "eip155:8453"), kind: ErrNotOffered, msg: "was not offered"},
		{name: "other asset", change: accepted("asset", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"), kind: ErrNotOffered, msg: "asset \"0x8335"},
		{name: "other payTo", change: accepted("payTo", "0x857b06519E91e3A54538791bDbb0E22373e36b66"), kind: ErrNotOffered, msg: "payTo \"0x857b"},
		{name: "lower amount", change: accepted("amount", "9999"), kind: ErrNotOffered, msg: `amount "9999" is not the offered "10000"`},
		{name: "amount with leading zero", change: accepted("amount", "010000"), kind: ErrNotOffered, msg: "amount"},
		{name: "address without 0x", change: accepted("payTo", strings.TrimPrefix(payTo, "0x")), kind: ErrNotOffered, msg: "payTo"},
		{name: "Solana address case differs", change: func(p map[string]any) {
			p["accepted"] = map[string]any{"scheme": "exact", "network": solana.Network, "amount": "10000",
				"asset": solana.Asset, "payTo": strings.ToLower(solana.PayTo), "maxTimeoutSeconds": 60}
		}, kind: ErrNotOffered, msg: "payTo"},
		{name: "long value is cut", change: accepted("amount", strings.Repeat("9", 500)), kind: ErrNotOffered, msg: `"... is not the offered`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			switch {
			case h != "":
			case tc.raw != "":
				h = base64.StdEncoding.EncodeToString([]byte(tc.raw))
			default:
				p := payment()
				tc.change(p)
				h = encodeJSON(t, p)
			}
			_, _, err := ParsePayment(h, offered)
			var ie *InvalidPaymentError
			if !errors.As(err, &ie) {
				t.Fatalf("ParsePayment error = %v (%T), want an *InvalidPaymentError", err, err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %q", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "invalid PAYMENT-SIGNATURE header: ") {
				t.Errorf("error %q does not name the header", err)
			}
			if ie.HTTPStatus() != http.StatusBadRequest {
				t.Errorf("HTTPStatus = %d", ie.HTTPStatus())
			}
			if len(err.Error()) > 400 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestParsePaymentNothingOffered(t *testing.T) {
	_, _, err := ParsePayment(specPaymentSignature, nil)
	if !errors.Is(err, ErrNotOffered) {
		t.Fatalf("err = %v", err)
	}
}
