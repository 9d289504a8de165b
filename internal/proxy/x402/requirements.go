package x402

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Requirements turns a policy's payment options into the accepts list of a
// 402 for a price of amount: one Requirement per option, in order, the amount
// in the option's atomic units (rounded up for assets with fewer than six
// decimals), and the option's extra passed through.
//
// In x402 v2 the resource and its description are not part of a requirement
// any more but of PaymentRequired.Resource, so the caller passes them to
// NewPaymentRequired too. Requirements checks that resourceURL is absolute,
// so that a bad resource fails with the rest of the 402; description is
// free text and is not checked.
func Requirements(opts []dataplane.X402Option, amount money.Micros, resourceURL, description string) ([]Requirement, error) {
	if len(opts) == 0 {
		return nil, errors.New("x402: no payment options")
	}
	if amount <= 0 {
		return nil, fmt.Errorf("x402: price %s is not positive", amount)
	}
	if err := checkResource(resourceURL); err != nil {
		return nil, err
	}
	reqs := make([]Requirement, 0, len(opts))
	for i, o := range opts {
		r, err := requirement(o, amount)
		if err != nil {
			return nil, fmt.Errorf("x402: accepts[%d]: %w", i, err)
		}
		reqs = append(reqs, r)
	}
	return reqs, nil
}

func requirement(o dataplane.X402Option, amount money.Micros) (Requirement, error) {
	switch {
	case o.Scheme == "":
		return Requirement{}, errors.New("scheme is empty")
	case !isCAIP2(o.Network):
		return Requirement{}, fmt.Errorf("network %q is not a CAIP-2 chain id", o.Network)
	case o.Asset == "":
		return Requirement{}, errors.New("asset is empty")
	case o.PayTo == "":
		return Requirement{}, errors.New("payTo is empty")
	case o.MaxTimeoutSeconds <= 0:
		return Requirement{}, fmt.Errorf("maxTimeoutSeconds %d is not positive", o.MaxTimeoutSeconds)
	}
	units, err := money.AtomicUnits(amount, int(o.Decimals))
	if err != nil {
		return Requirement{}, err
	}
	var extra json.RawMessage
	if t := bytes.TrimSpace(o.Extra); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		if t[0] != '{' || !json.Valid(t) {
			return Requirement{}, errors.New("extra is not a JSON object")
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, t); err != nil {
			return Requirement{}, fmt.Errorf("extra: %w", err)
		}
		extra = buf.Bytes()
	}
	return Requirement{
		Scheme:            o.Scheme,
		Network:           o.Network,
		Amount:            units,
		Asset:             o.Asset,
		PayTo:             o.PayTo,
		MaxTimeoutSeconds: int(o.MaxTimeoutSeconds),
		Extra:             extra,
	}, nil
}

// isCAIP2 reports whether s looks like a CAIP-2 chain id, namespace:reference.
func isCAIP2(s string) bool {
	ns, ref, ok := strings.Cut(s, ":")
	return ok && len(ns) >= 3 && len(ns) <= 8 && ref != "" && len(ref) <= 32 &&
		!strings.ContainsFunc(ns, func(r rune) bool { return !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) &&
		!strings.ContainsFunc(ref, func(r rune) bool {
			return !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		})
}

func checkResource(resourceURL string) error {
	u, err := url.Parse(resourceURL)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("x402: resource URL %q is not an absolute URL", resourceURL)
	}
	return nil
}
