package x402_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy/x402"
	"github.com/tollgate-dev/tollgate/internal/proxy/x402/x402test"
)

// These tests run the official x402 TypeScript package, @x402/core, on the
// headers this package writes, from test/x402-node. They need Node.js and
// npm, and install the package from the lock file on first use.

var (
	nodeOnce sync.Once
	nodeDir  string
	nodeErr  error
)

// nodeCheck returns the directory of the Node check, installed.
func nodeCheck(t *testing.T) string {
	t.Helper()
	nodeOnce.Do(func() { nodeDir, nodeErr = installNodeCheck() })
	if nodeErr != nil {
		t.Fatal(nodeErr)
	}
	return nodeDir
}

func installNodeCheck() (string, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", errors.New(tool + " is not on PATH: install Node.js 20 or later with npm " +
				"(for example `apt-get install nodejs npm`) to run the x402 interoperability tests")
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
	dir = filepath.Join(dir, "test", "x402-node")
	if installed(dir) {
		return dir, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NPM_CONFIG_UPDATE_NOTIFIER=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New("npm ci in test/x402-node: " + err.Error() + "\n" + string(out))
	}
	if !installed(dir) {
		return "", errors.New("npm ci in test/x402-node did not install the locked @x402/core")
	}
	return dir, nil
}

// installed reports whether node_modules holds the @x402/core version that
// package-lock.json names.
func installed(dir string) bool {
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	var pkg struct {
		Version string `json:"version"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil || json.Unmarshal(b, &lock) != nil {
		return false
	}
	b, err = os.ReadFile(filepath.Join(dir, "node_modules", "@x402", "core", "package.json"))
	if err != nil || json.Unmarshal(b, &pkg) != nil {
		return false
	}
	want := lock.Packages["node_modules/@x402/core"].Version
	return want != "" && pkg.Version == want
}

// runCheck runs check-header.mjs on a header value of kind, passed as an
// argument, or on stdin if stdin is set. It returns stdout, stderr, and the
// run's error.
func runCheck(t *testing.T, kind, value string, stdin bool) ([]byte, string, error) {
	t.Helper()
	dir := nodeCheck(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"check-header.mjs", "--kind", kind}
	if !stdin {
		args = append(args, value)
	}
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir
	if stdin {
		cmd.Stdin = strings.NewReader(value + "\n")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	// The script prints indented JSON; compact it so that raw fields, such
	// as extra, compare as this package writes them.
	var compact bytes.Buffer
	if err == nil && json.Compact(&compact, stdout.Bytes()) == nil {
		return compact.Bytes(), stderr.String(), nil
	}
	return stdout.Bytes(), stderr.String(), err
}

func baseSepoliaOptions() []dataplane.X402Option {
	return []dataplane.X402Option{{
		Scheme: "exact", Network: "eip155:84532", Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", Decimals: 6,
		PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", MaxTimeoutSeconds: 60,
		Extra: json.RawMessage(`{"name": "USDC", "version": "2"}`),
	}, {
		Scheme: "exact", Network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", Asset: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
		Decimals: 6, PayTo: "CKPKJWNdJEqa81x7CkZ14BVPiY6y16Sxs7owznqtWYp5", MaxTimeoutSeconds: 120,
	}}
}

func TestNodeClientReadsPaymentRequired(t *testing.T) {
	const url = "https://gateway.example.com/v1/chat/completions"
	reqs, err := x402.Requirements(baseSepoliaOptions(), money.MustParse("0.0125"), url, "Chat completion on gpt-4o")
	if err != nil {
		t.Fatal(err)
	}
	want := x402.NewPaymentRequired("Budget exhausted: pay per request with x402",
		x402.ResourceInfo{URL: url, Description: "Chat completion on gpt-4o", MimeType: "application/json"}, reqs)
	header, err := x402.EncodeHeader(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, stdin := range []bool{false, true} {
		out, stderr, err := runCheck(t, "required", header, stdin)
		if err != nil {
			t.Fatalf("the official client rejects our header (stdin %v): %v\n%s", stdin, err, stderr)
		}
		var got x402.PaymentRequired
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("output %s: %v", out, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("what @x402/core read (-sent +read):\n%s", diff)
		}
		a := got.Accepts[0]
		if a.Amount != "12500" || a.Network != "eip155:84532" || a.PayTo != "0x209693Bc6afc0C5328bA36FaF03C514EF312287C" ||
			a.Asset != "0x036CbD53842c5426634e7929541eC2318f3dCF7e" || string(a.Extra) != `{"name":"USDC","version":"2"}` {
			t.Errorf("accepts[0] = %+v", a)
		}
	}
}

func TestNodeClientRejectsBrokenHeaders(t *testing.T) {
	valid := func(f func(m map[string]any)) string {
		m := map[string]any{
			"x402Version": 2,
			"resource":    map[string]any{"url": "https://gateway.example.com/v1/chat/completions"},
			"accepts": []any{map[string]any{
				"scheme": "exact", "network": "eip155:84532", "amount": "12500",
				"asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
				"maxTimeoutSeconds": 60,
			}},
		}
		if f != nil {
			f(m)
		}
		b, _ := json.Marshal(m)
		return base64.StdEncoding.EncodeToString(b)
	}
	accept := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m["accepts"].([]any)[0].(map[string]any)[k] = v }
	}
	// The control: the unbroken header passes, so each failure below is the
	// breakage's.
	if _, stderr, err := runCheck(t, "required", valid(nil), false); err != nil {
		t.Fatalf("control header rejected: %v\n%s", err, stderr)
	}
	for _, tc := range []struct {
		name, header, stderr string
	}{
		{"bad base64", "not*base64!", "Invalid payment required header"},
		{"JSON not base64", `{"x402Version":2}`, "Invalid payment required header"},
		{"base64 of non-JSON", base64.StdEncoding.EncodeToString([]byte("pay me")), "x402 check failed"},
		{"missing accepts", valid(func(m map[string]any) { delete(m, "accepts") }), "accepts"},
		{"empty accepts", valid(func(m map[string]any) { m["accepts"] = []any{} }), "accepts"},
		{"missing resource", valid(func(m map[string]any) { delete(m, "resource") }), "resource"},
		{"version 1 shape", valid(func(m map[string]any) { m["x402Version"] = 1 }), "x402 check failed"},
		{"network not CAIP-2", valid(accept("network", "base-sepolia")), "CAIP-2"},
		{"amount as a number", valid(accept("amount", 12500)), "amount"},
		{"amount in dollars", valid(accept("amount", "0.0125")), "not a count of atomic units"},
		{"zero timeout", valid(accept("maxTimeoutSeconds", 0)), "maxTimeoutSeconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := runCheck(t, "required", tc.header, false)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("check of a broken header: err %v, want exit status 1\nstdout %s\nstderr %s", err, out, stderr)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q does not say %q", stderr, tc.stderr)
			}
		})
	}
}

func TestNodeReadsPaymentSignatureAndResponse(t *testing.T) {
	reqs, err := x402.Requirements(baseSepoliaOptions()[:1], money.MustParse("0.0125"), "https://gateway.example.com/v1/chat/completions", "")
	if err != nil {
		t.Fatal(err)
	}
	s := x402test.NewServer()
	defer s.Close()
	p, err := x402test.ExactEVMPayment(reqs[0], "node-interop")
	if err != nil {
		t.Fatal(err)
	}
	p.Resource = &x402.ResourceInfo{URL: "https://gateway.example.com/v1/chat/completions"}
	sig, err := x402.EncodeHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCheck(t, "signature", sig, false)
	if err != nil {
		t.Fatalf("the official server code rejects the test payment: %v\n%s", err, stderr)
	}
	var got x402.PaymentPayload
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("what @x402/core read (-sent +read):\n%s", diff)
	}

	settled, err := s.Facilitator().Settle(context.Background(), p, reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	resp, err := x402.EncodeHeader(settled)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err = runCheck(t, "response", resp, false)
	if err != nil {
		t.Fatalf("the official client rejects our PAYMENT-RESPONSE: %v\n%s", err, stderr)
	}
	var sr x402.SettleResponse
	if err := json.Unmarshal(out, &sr); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	if sr != settled || !sr.Success || sr.Transaction == "" {
		t.Errorf("read %+v, sent %+v", sr, settled)
	}
}
