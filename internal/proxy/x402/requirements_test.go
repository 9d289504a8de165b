package x402

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
)

const (
	baseSepoliaUSDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
	payTo           = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
	resourceURL     = "https://gateway.example.com/v1/chat/completions"
)

func usdcOption() dataplane.X402Option {
	return dataplane.X402Option{Scheme: "exact", Network: "eip155:84532", Asset: baseSepoliaUSDC, Decimals: 6,
		PayTo: payTo, MaxTimeoutSeconds: 60, Extra: json.RawMessage(`{"name": "USDC", "version": "2"}`)}
}

func TestRequirements(t *testing.T) {
	with := func(f func(*dataplane.X402Option)) dataplane.X402Option {
		o := usdcOption()
		f(&o)
		return o
	}
	solana := dataplane.X402Option{Scheme: "exact", Network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
		Asset: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", Decimals: 6,
		PayTo: "CKPKJWNdJEqa81x7CkZ14BVPiY6y16Sxs7owznqtWYp5", MaxTimeoutSeconds: 120}
	for _, tc := range []struct {
		name   string
		opts   []dataplane.X402Option
		amount money.Micros
		want   []Requirement
	}{
		{
			name: "USDC, one cent", opts: []dataplane.X402Option{usdcOption()}, amount: money.MustParse("0.01"),
			want: []Requirement{{Scheme: "exact", Network: "eip155:84532", Amount: "10000", Asset: baseSepoliaUSDC,
				PayTo: payTo, MaxTimeoutSeconds: 60, Extra: json.RawMessage(`{"name":"USDC","version":"2"}`)}},
		},
		{
			name: "one micro-unit", opts: []dataplane.X402Option{usdcOption()}, amount: 1,
			want: []Requirement{{Scheme: "exact", Network: "eip155:84532", Amount: "1", Asset: baseSepoliaUSDC,
				PayTo: payTo, MaxTimeoutSeconds: 60, Extra: json.RawMessage(`{"name":"USDC","version":"2"}`)}},
		},
		{
			name: "18 decimals", opts: []dataplane.X402Option{with(func(o *dataplane.X402Option) { o.Decimals = 18; o.Extra = nil })},
			amount: money.MustParse("12.50"),
			want: []Requirement{{Scheme: "exact", Network: "eip155:84532", Amount: "12500000000000000000",
				Asset: baseSepoliaUSDC, PayTo: payTo, MaxTimeoutSeconds: 60}},
		},
		{
			name: "2 decimals round up", opts: []dataplane.X402Option{with(func(o *dataplane.X402Option) { o.Decimals = 2; o.Extra = json.RawMessage("null") })},
			amount: money.MustParse("0.001"),
			want: []Requirement{{Scheme: "exact", Network: "eip155:84532", Amount: "1",
				Asset: baseSepoliaUSDC, PayTo: payTo, MaxTimeoutSeconds: 60}},
		},
		{
			name: "two options keep their order", opts: []dataplane.X402Option{solana, usdcOption()}, amount: money.MustParse("1.25"),
			want: []Requirement{
				{Scheme: "exact", Network: solana.Network, Amount: "1250000", Asset: solana.Asset, PayTo: solana.PayTo, MaxTimeoutSeconds: 120},
				{Scheme: "exact", Network: "eip155:84532", Amount: "1250000", Asset: baseSepoliaUSDC, PayTo: payTo,
					MaxTimeoutSeconds: 60, Extra: json.RawMessage(`{"name":"USDC","version":"2"}`)},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Requirements(tc.opts, tc.amount, resourceURL, "chat completion")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Requirements (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequirementsErrors(t *testing.T) {
	with := func(f func(*dataplane.X402Option)) []dataplane.X402Option {
		o := usdcOption()
		f(&o)
		return []dataplane.X402Option{usdcOption(), o}
	}
	ok := []dataplane.X402Option{usdcOption()}
	for _, tc := range []struct {
		name     string
		opts     []dataplane.X402Option
		amount   money.Micros
		resource string
		want     string
	}{
		{"no options", nil, 1, resourceURL, "no payment options"},
		{"zero price", ok, 0, resourceURL, "not positive"},
		{"negative price", ok, -5, resourceURL, "not positive"},
		{"relative resource", ok, 1, "/v1/chat/completions", "not an absolute URL"},
		{"empty resource", ok, 1, "", "not an absolute URL"},
		{"empty scheme", with(func(o *dataplane.X402Option) { o.Scheme = "" }), 1, resourceURL, "accepts[1]: scheme is empty"},
		{"v1 network name", with(func(o *dataplane.X402Option) { o.Network = "base-sepolia" }), 1, resourceURL, "not a CAIP-2"},
		{"network with space", with(func(o *dataplane.X402Option) { o.Network = "eip155:84 532" }), 1, resourceURL, "not a CAIP-2"},
		{"empty asset", with(func(o *dataplane.X402Option) { o.Asset = "" }), 1, resourceURL, "asset is empty"},
		{"empty payTo", with(func(o *dataplane.X402Option) { o.PayTo = "" }), 1, resourceURL, "payTo is empty"},
		{"zero timeout", with(func(o *dataplane.X402Option) { o.MaxTimeoutSeconds = 0 }), 1, resourceURL, "maxTimeoutSeconds 0"},
		{"19 decimals", with(func(o *dataplane.X402Option) { o.Decimals = 19 }), 1, resourceURL, "19 decimals"},
		{"negative decimals", with(func(o *dataplane.X402Option) { o.Decimals = -1 }), 1, resourceURL, "-1 decimals"},
		{"extra is an array", with(func(o *dataplane.X402Option) { o.Extra = json.RawMessage(`["USDC"]`) }), 1, resourceURL, "extra is not a JSON object"},
		{"extra is broken", with(func(o *dataplane.X402Option) { o.Extra = json.RawMessage(`{"name":`) }), 1, resourceURL, "extra is not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Requirements(tc.opts, tc.amount, tc.resource, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Requirements = %v, %v; want an error containing %q", got, err, tc.want)
			}
		})
	}
}
