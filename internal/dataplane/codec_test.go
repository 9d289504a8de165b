package dataplane

import (
	"strings"
	"testing"
	"time"
)

func valid() *Config {
	return &Config{
		SchemaVersion: SchemaVersion,
		Gateway:       "ns/gw",
		Listeners:     []Listener{{Name: "http", Port: 8080}},
		Limits:        Limits{MaxRequestBodyBytes: 1 << 20},
		Ledger:        Ledger{Type: "Embedded", Path: "/tmp/ledger.db"},
		Providers:     []Provider{{Name: "ns/openai", Type: "OpenAI", BaseURL: "https://api.openai.com/v1", Timeout: Duration(time.Minute)}},
		Routes:        []Route{{Name: "ns/chat", Rules: []Rule{{Name: "r", Backends: []Backend{{Provider: "ns/openai", Weight: 1}}}}}},
		Tenants:       []Tenant{{Name: "ns/acme", Keys: []Key{{Name: "k", SHA256: strings.Repeat("a", 64)}}}},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	c := valid()
	data, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Hash, "sha256:") || !strings.Contains(string(data), `"timeout":"1m0s"`) || !strings.Contains(string(data), `"hash":"`+c.Hash+`"`) {
		t.Fatalf("hash %q, encoding:\n%s", c.Hash, data)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != c.Hash || got.Providers[0].Timeout.Std() != time.Minute {
		t.Fatalf("decoded %+v", got)
	}
	// Equal content hashes equal; any change changes the hash.
	again := valid()
	if _, err := Encode(again); err != nil || again.Hash != c.Hash {
		t.Fatalf("same content, hash %q vs %q", again.Hash, c.Hash)
	}
	again.Tenants[0].Suspended = true
	if _, _ = Encode(again); again.Hash == c.Hash {
		t.Fatal("changed content kept the hash")
	}
}

func TestDecodeRefuses(t *testing.T) {
	encode := func(mutate func(*Config)) string {
		c := valid()
		mutate(c)
		data, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	tests := map[string]struct {
		data string
		want string
	}{
		"tampered content": {data: strings.Replace(encode(func(*Config) {}), `"ns/acme"`, `"ns/evil"`, 1), want: "does not match its content"},
		"other schema":     {data: encode(func(c *Config) { c.SchemaVersion = 2 }), want: "schemaVersion 2"},
		"unknown field":    {data: `{"schemaVersion":1,"surprise":true}`, want: "unknown field"},
		"not json":         {data: `{`, want: "not valid JSON"},
		"dangling backend": {data: encode(func(c *Config) { c.Routes[0].Rules[0].Backends[0].Provider = "ns/ghost" }), want: `provider "ns/ghost" is not in the config`},
		"no listeners":     {data: encode(func(c *Config) { c.Listeners = nil }), want: "no listeners"},
		"bad port":         {data: encode(func(c *Config) { c.Listeners[0].Port = 70000 }), want: "port 70000 out of range"},
		"shared key": {data: encode(func(c *Config) {
			c.Tenants = append(c.Tenants, Tenant{Name: "ns/other", Keys: c.Tenants[0].Keys})
		}), want: "share a key"},
		"redis without address": {data: encode(func(c *Config) { c.Ledger = Ledger{Type: "Redis"} }), want: "needs an address"},
		"policy on unknown tenant": {data: encode(func(c *Config) {
			c.Policies = []Policy{{Name: "ns/p", Targets: PolicyTargets{Tenants: []string{"ns/nobody"}}}}
		}), want: `targets tenant "ns/nobody"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
