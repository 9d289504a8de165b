package dataplane

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written as "1m30s" in the JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Std is the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// emptyHash is how the hash field encodes before it is set. Hash is the
// third field of Config, after a version number and a Gateway name, so its
// first occurrence is always that field.
var emptyHash = []byte(`"hash":""`)

// Encode sets c.Hash and returns the config as JSON. The hash is over the
// encoding with an empty hash, so equal configs hash equal; the hash is then
// written into that same encoding rather than marshalling twice.
func Encode(c *Config) ([]byte, error) {
	c.Hash = ""
	body, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	c.Hash = "sha256:" + hex.EncodeToString(sum[:])
	at := bytes.Index(body, emptyHash)
	if at < 0 {
		return nil, errors.New("config encoding has no hash field")
	}
	out := make([]byte, 0, len(body)+len(c.Hash))
	out = append(out, body[:at]...)
	out = append(out, `"hash":"`+c.Hash+`"`...)
	return append(out, body[at+len(emptyHash):]...), nil
}

// Decode parses a config, checks its hash and validates it.
func Decode(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	c := &Config{}
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("config is not valid JSON of schema %d: %w", SchemaVersion, err)
	}
	if c.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("config schemaVersion %d, this proxy reads %d (a rolling upgrade in progress?)", c.SchemaVersion, SchemaVersion)
	}
	want := c.Hash
	if _, err := Encode(c); err != nil {
		return nil, err
	}
	if c.Hash != want {
		return nil, fmt.Errorf("config hash %q does not match its content (%q)", want, c.Hash)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks what a proxy relies on: unique names and references that resolve.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.Listeners) == 0 {
		bad("no listeners")
	}
	ports := map[int32]bool{}
	for _, l := range c.Listeners {
		if l.Port < 1 || l.Port > 65535 {
			bad("listener %q: port %d out of range", l.Name, l.Port)
		}
		ports[l.Port] = true
	}
	if c.Limits.MaxRequestBodyBytes <= 0 {
		bad("limits.maxRequestBodyBytes must be positive")
	}
	switch c.Ledger.Type {
	case "Embedded":
	case "Redis":
		if c.Ledger.Redis == nil || c.Ledger.Redis.Address == "" {
			bad("ledger Redis needs an address")
		}
	default:
		bad("ledger type %q unknown", c.Ledger.Type)
	}

	providers := map[string]bool{}
	for _, p := range c.Providers {
		if providers[p.Name] {
			bad("provider %q twice", p.Name)
		}
		providers[p.Name] = true
		if !strings.HasPrefix(p.BaseURL, "http://") && !strings.HasPrefix(p.BaseURL, "https://") {
			bad("provider %q: baseURL %q is not http(s)", p.Name, p.BaseURL)
		}
	}
	routes := map[string]bool{}
	for _, r := range c.Routes {
		if routes[r.Name] {
			bad("route %q twice", r.Name)
		}
		routes[r.Name] = true
		for _, rule := range r.Rules {
			for _, b := range rule.Backends {
				if !providers[b.Provider] {
					bad("route %q rule %q: provider %q is not in the config", r.Name, rule.Name, b.Provider)
				}
			}
		}
	}
	tenants := map[string]bool{}
	keys := map[string]string{}
	for _, t := range c.Tenants {
		if tenants[t.Name] {
			bad("tenant %q twice", t.Name)
		}
		tenants[t.Name] = true
		for _, k := range t.Keys {
			if len(k.SHA256) != 64 {
				bad("tenant %q key %q: not a hex SHA-256", t.Name, k.Name)
			}
			if other, dup := keys[k.SHA256]; dup && other != t.Name {
				bad("tenants %q and %q share a key", other, t.Name)
			}
			keys[k.SHA256] = t.Name
		}
	}
	policies := map[string]bool{}
	for _, p := range c.Policies {
		if policies[p.Name] {
			bad("policy %q twice", p.Name)
		}
		policies[p.Name] = true
		for _, r := range p.Targets.Routes {
			if !routes[r] {
				bad("policy %q targets route %q that is not in the config", p.Name, r)
			}
		}
		for _, t := range p.Targets.Tenants {
			if !tenants[t] {
				bad("policy %q targets tenant %q that is not in the config", p.Name, t)
			}
		}
	}
	return errors.Join(errs...)
}
