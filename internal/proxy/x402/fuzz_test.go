package x402

import (
	"encoding/base64"
	"errors"
	"reflect"
	"testing"
)

// The seed corpora are in testdata/fuzz; these seeds are the spec's examples.

func FuzzDecodeHeader(f *testing.F) {
	f.Add(specPaymentRequired)
	f.Add(specPaymentResponse)
	f.Fuzz(func(t *testing.T, s string) {
		var v PaymentRequired
		err := DecodeHeader(s, &v)
		if err != nil {
			if !errors.Is(err, ErrMalformedHeader) && !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("DecodeHeader(%q) = %v, neither malformed nor invalid JSON", s, err)
			}
			return
		}
		// What decodes encodes strictly and then round-trips unchanged.
		h1, err := EncodeHeader(v)
		if err != nil {
			t.Fatalf("EncodeHeader(%+v): %v", v, err)
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(h1); err != nil {
			t.Fatalf("EncodeHeader gave %q, not standard padded base64", h1)
		}
		var v2 PaymentRequired
		if err := DecodeHeader(h1, &v2); err != nil {
			t.Fatalf("DecodeHeader(EncodeHeader(%+v)): %v", v, err)
		}
		h2, err := EncodeHeader(v2)
		if err != nil {
			t.Fatal(err)
		}
		if h1 != h2 {
			t.Fatalf("round trip changed the header:\n%s\n%s", h1, h2)
		}
	})
}

func FuzzParsePayment(f *testing.F) {
	f.Add(specPaymentSignature)
	offered := []Requirement{specRequirement(), {
		Scheme: "exact", Network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", Amount: "10000",
		Asset: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", PayTo: "CKPKJWNdJEqa81x7CkZ14BVPiY6y16Sxs7owznqtWYp5",
		MaxTimeoutSeconds: 60,
	}}
	kinds := []error{ErrMalformedHeader, ErrInvalidJSON, ErrUnsupportedVersion, ErrInvalidPayload, ErrNotOffered}
	f.Fuzz(func(t *testing.T, header string) {
		p, req, err := ParsePayment(header, offered)
		if err != nil {
			var ie *InvalidPaymentError
			if !errors.As(err, &ie) {
				t.Fatalf("ParsePayment(%q) error %v is a %T", header, err, err)
			}
			for _, k := range kinds {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("ParsePayment(%q) error %v is of no known kind", header, err)
		}
		found := false
		for _, o := range offered {
			found = found || reflect.DeepEqual(o, req)
		}
		if !found {
			t.Fatalf("ParsePayment(%q) matched %+v, which was not offered", header, req)
		}
		if p.X402Version != Version || !isObject(p.Payload) {
			t.Fatalf("ParsePayment(%q) accepted %+v", header, p)
		}
		// The payment the proxy forwards parses again to the same offer.
		h, err := EncodeHeader(p)
		if err != nil {
			t.Fatal(err)
		}
		_, req2, err := ParsePayment(h, offered)
		if err != nil || !reflect.DeepEqual(req, req2) {
			t.Fatalf("re-encoded payment %q: %+v, %v", h, req2, err)
		}
	})
}
