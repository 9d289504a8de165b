package x402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The PAYMENT-REQUIRED example of the x402 v2 HTTP transport specification.
const specPaymentRequired = "eyJ4NDAyVmVyc2lvbiI6MiwiZXJyb3IiOiJQQVlNRU5ULVNJR05BVFVSRSBoZWFkZXIgaXMgcmVxdWlyZWQiLCJyZXNvdXJjZSI6eyJ1cmwiOiJodHRwczovL2FwaS5leGFtcGxlLmNvbS9wcmVtaXVtLWRhdGEiLCJkZXNjcmlwdGlvbiI6IkFjY2VzcyB0byBwcmVtaXVtIG1hcmtldCBkYXRhIiwibWltZVR5cGUiOiJhcHBsaWNhdGlvbi9qc29uIn0sImFjY2VwdHMiOlt7InNjaGVtZSI6ImV4YWN0IiwibmV0d29yayI6ImVpcDE1NTo4NDUzMiIsImFtb3VudCI6IjEwMDAwIiwiYXNzZXQiOiIweDAzNkNiRDUzODQyYzU0MjY2MzRlNzkyOTU0MWVDMjMxOGYzZENGN2UiLCJwYXlUbyI6IjB4MjA5NjkzQmM2YWZjMEM1MzI4YkEzNkZhRjAzQzUxNEVGMzEyMjg3QyIsIm1heFRpbWVvdXRTZWNvbmRzIjo2MCwiZXh0cmEiOnsibmFtZSI6IlVTREMiLCJ2ZXJzaW9uIjoiMiJ9fV19"

// The PAYMENT-RESPONSE example of the same specification.
const specPaymentResponse = "eyJzdWNjZXNzIjp0cnVlLCJ0cmFuc2FjdGlvbiI6IjB4MTIzNDU2Nzg5MGFiY2RlZjEyMzQ1Njc4OTBhYmNkZWYxMjM0NTY3ODkwYWJjZGVmMTIzNDU2Nzg5MGFiY2RlZiIsIm5ldHdvcmsiOiJlaXAxNTU6ODQ1MzIiLCJwYXllciI6IjB4ODU3YjA2NTE5RTkxZTNBNTQ1Mzg3OTFiRGJiMEUyMjM3M2UzNmI2NiJ9"

func specRequirement() Requirement {
	return Requirement{
		Scheme:            "exact",
		Network:           "eip155:84532",
		Amount:            "10000",
		Asset:             "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
		PayTo:             "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		MaxTimeoutSeconds: 60,
		Extra:             json.RawMessage(`{"name":"USDC","version":"2"}`),
	}
}

func specRequired() PaymentRequired {
	return NewPaymentRequired("PAYMENT-SIGNATURE header is required",
		ResourceInfo{URL: "https://api.example.com/premium-data", Description: "Access to premium market data", MimeType: "application/json"},
		[]Requirement{specRequirement()})
}

func TestEncodeHeaderMatchesSpecExample(t *testing.T) {
	got, err := EncodeHeader(specRequired())
	if err != nil {
		t.Fatal(err)
	}
	if got != specPaymentRequired {
		t.Errorf("EncodeHeader differs from the specification's example:\n got %s\nwant %s", got, specPaymentRequired)
	}
}

func TestDecodeHeaderSpecExamples(t *testing.T) {
	var pr PaymentRequired
	if err := DecodeHeader(specPaymentRequired, &pr); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(specRequired(), pr); diff != "" {
		t.Errorf("PAYMENT-REQUIRED (-want +got):\n%s", diff)
	}
	var sr SettleResponse
	if err := DecodeHeader(specPaymentResponse, &sr); err != nil {
		t.Fatal(err)
	}
	want := SettleResponse{Success: true, Transaction: "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
		Network: "eip155:84532", Payer: "0x857b06519E91e3A54538791bDbb0E22373e36b66"}
	if diff := cmp.Diff(want, sr); diff != "" {
		t.Errorf("PAYMENT-RESPONSE (-want +got):\n%s", diff)
	}
}

func TestEncodeHeaderIsStandardPadded(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    map[string]string
		json string
	}{
		{"one padding character", map[string]string{"a": "bcd"}, `{"a":"bcd"}`},
		{"two padding characters", map[string]string{"a": "bc"}, `{"a":"bc"}`},
		{"no padding", map[string]string{"a": "b"}, `{"a":"b"}`},
		{"HTML characters kept literal", map[string]string{"m": "<&>"}, `{"m":"<&>"}`},
		{"alphabet-specific characters", map[string]string{"a": "???>>>"}, `{"a":"???>>>"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := EncodeHeader(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := base64.StdEncoding.Strict().DecodeString(h)
			if err != nil {
				t.Fatalf("%q is not strict standard padded base64: %v", h, err)
			}
			if string(raw) != tc.json {
				t.Errorf("decoded %s, want %s", raw, tc.json)
			}
			if n := strings.Count(h, "="); n != (3-len(tc.json)%3)%3 {
				t.Errorf("%q has %d padding characters for %d bytes", h, n, len(tc.json))
			}
			if strings.ContainsAny(h, "-_") {
				t.Errorf("%q uses the URL-safe alphabet", h)
			}
		})
	}
}

func TestEncodeHeaderError(t *testing.T) {
	if _, err := EncodeHeader(map[string]any{"f": func() {}}); err == nil {
		t.Error("EncodeHeader of a func succeeded")
	}
}

func TestDecodeHeaderLenient(t *testing.T) {
	// {"a":"b?>"} encodes with + or - and / or _ in both alphabets.
	payload := []byte(`{"a":"???>>>"}`)
	std := base64.StdEncoding.EncodeToString(payload)
	if !strings.ContainsAny(std, "+/") {
		t.Fatalf("test payload %s has no alphabet-specific characters", std)
	}
	for _, tc := range []struct{ name, in string }{
		{"standard padded", std},
		{"standard unpadded", base64.RawStdEncoding.EncodeToString(payload)},
		{"URL-safe padded", base64.URLEncoding.EncodeToString(payload)},
		{"URL-safe unpadded", base64.RawURLEncoding.EncodeToString(payload)},
		{"surrounding spaces", "  " + std + "\t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v map[string]string
			if err := DecodeHeader(tc.in, &v); err != nil {
				t.Fatalf("DecodeHeader(%q): %v", tc.in, err)
			}
			if v["a"] != "???>>>" {
				t.Errorf("decoded %v", v)
			}
		})
	}
}

func TestDecodeHeaderErrors(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMalformedHeader},
		{"only spaces", "   ", ErrMalformedHeader},
		{"bad character", "eyJh!!", ErrMalformedHeader},
		{"inner space", "eyJh IjoxfQ==", ErrMalformedHeader},
		{"newline", "eyJhIjox\nfQ==", ErrMalformedHeader},
		{"mixed alphabets", "ab+c-d", ErrMalformedHeader},
		{"three padding characters", "eyJhIjoxfQ===", ErrMalformedHeader},
		{"padding inside", "ey=JhIjoxfQ", ErrMalformedHeader},
		{"impossible length", "eyJhI", ErrMalformedHeader},
		{"too long", strings.Repeat("A", MaxHeaderBytes+4), ErrMalformedHeader},
		{"not JSON", b64([]byte("hello")), ErrInvalidJSON},
		{"truncated JSON", b64([]byte(`{"x402Version":2`)), ErrInvalidJSON},
		{"trailing data", b64([]byte(`{"x402Version":2} {}`)), ErrInvalidJSON},
		{"wrong type", b64([]byte(`{"x402Version":"2"}`)), ErrInvalidJSON},
		{"array", b64([]byte(`[1]`)), ErrInvalidJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v PaymentRequired
			err := DecodeHeader(tc.in, &v)
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeHeader(%.40q) = %v, want %v", tc.in, err, tc.want)
			}
			if strings.Contains(err.Error(), "x402.") || strings.Contains(err.Error(), "Go struct") {
				t.Errorf("message %q names Go types", err)
			}
		})
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	values := []any{
		specRequired(),
		PaymentPayload{X402Version: 2, Accepted: specRequirement(), Payload: json.RawMessage(`{"signature":"0x00"}`),
			Resource: &ResourceInfo{URL: "https://gw.example/v1/chat/completions"}},
		SettleResponse{Success: false, ErrorReason: "insufficient_funds", Network: "eip155:84532"},
		VerifyResponse{IsValid: true, Payer: "0x857b06519E91e3A54538791bDbb0E22373e36b66"},
	}
	for _, v := range values {
		h, err := EncodeHeader(v)
		if err != nil {
			t.Fatal(err)
		}
		switch want := v.(type) {
		case PaymentRequired:
			var got PaymentRequired
			roundTrip(t, h, &got, &want)
		case PaymentPayload:
			var got PaymentPayload
			roundTrip(t, h, &got, &want)
		case SettleResponse:
			var got SettleResponse
			roundTrip(t, h, &got, &want)
		case VerifyResponse:
			var got VerifyResponse
			roundTrip(t, h, &got, &want)
		}
	}
}

func roundTrip[T any](t *testing.T, h string, got, want *T) {
	t.Helper()
	if err := DecodeHeader(h, got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%T round trip (-want +got):\n%s", *want, diff)
	}
}
