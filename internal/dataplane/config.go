// Package dataplane is the versioned proxy configuration that the manager
// renders for each Gateway and the proxy loads. It has no Kubernetes imports
// so that the proxy can be tested and run without a cluster.
//
// Names of objects are "namespace/name". Amounts are int64 micro-units of
// the owning policy's or provider's currency. Secrets never appear here: the
// config names keys of the Gateway's credentials Secret instead.
package dataplane

import (
	"encoding/json"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// SchemaVersion is the version of this schema. A proxy refuses a config of
// another version instead of guessing at it during a rolling upgrade.
const SchemaVersion = 1

// Config is everything one Gateway's proxies need, but secrets.
type Config struct {
	SchemaVersion int    `json:"schemaVersion"`
	Gateway       string `json:"gateway"`
	// Hash is the SHA-256 of the config with Hash empty; proxies report it back.
	Hash      string     `json:"hash"`
	Sources   []Source   `json:"sources,omitempty"`
	Listeners []Listener `json:"listeners"`
	Limits    Limits     `json:"limits"`
	Logging   Logging    `json:"logging"`
	Ledger    Ledger     `json:"ledger"`
	Providers []Provider `json:"providers,omitempty"`
	Routes    []Route    `json:"routes,omitempty"`
	Tenants   []Tenant   `json:"tenants,omitempty"`
	Policies  []Policy   `json:"policies,omitempty"`
}

// Source is an input object and the generation the config was built from.
type Source struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Generation int64  `json:"generation"`
}

// Listener is a port the proxy serves traffic on.
type Listener struct {
	Name string `json:"name"`
	// Port is where the proxy listens; GatewayPort is the Gateway
	// listener's port, which the Service exposes. They differ for ports
	// below 1024, so that the proxy runs unprivileged.
	Port        int32  `json:"port"`
	GatewayPort int32  `json:"gatewayPort"`
	Hostname    string `json:"hostname,omitempty"`
}

// Limits bound what one request may cost the proxy.
type Limits struct {
	MaxRequestBodyBytes int64 `json:"maxRequestBodyBytes"`
}

// Logging configures the proxy's logs.
type Logging struct {
	Level      string `json:"level"`
	LogPrompts bool   `json:"logPrompts,omitempty"`
}

// Ledger says where spend is kept.
type Ledger struct {
	Type  string       `json:"type"` // Embedded or Redis
	Path  string       `json:"path,omitempty"`
	Redis *RedisLedger `json:"redis,omitempty"`
}

// RedisLedger is a shared Redis ledger.
type RedisLedger struct {
	Address     string `json:"address"`
	PasswordKey string `json:"passwordKey,omitempty"`
	TLS         bool   `json:"tls,omitempty"`
}

// Provider is an upstream LLM API.
type Provider struct {
	Name            string   `json:"name"`
	Type            string   `json:"type"`
	BaseURL         string   `json:"baseURL"`
	CredentialKey   string   `json:"credentialKey,omitempty"`
	AzureAPIVersion string   `json:"azureAPIVersion,omitempty"`
	Timeout         Duration `json:"timeout"`
	Currency        string   `json:"currency"`
	Models          []Model  `json:"models,omitempty"`
}

// Model is a model of a provider with its list price.
type Model struct {
	Name  string `json:"name"`
	Price Price  `json:"price"`
}

// Price is a price per million tokens, plus a flat price per request.
type Price struct {
	InputPerMillion       money.Micros `json:"inputPerMillion,omitempty"`
	CachedInputPerMillion money.Micros `json:"cachedInputPerMillion,omitempty"`
	OutputPerMillion      money.Micros `json:"outputPerMillion,omitempty"`
	PerRequest            money.Micros `json:"perRequest,omitempty"`
}

// Route is an AIRoute attached to this Gateway.
type Route struct {
	Name      string   `json:"name"`
	Hostnames []string `json:"hostnames,omitempty"`
	// ApprovalRequired routes admit only Tenants, the tenants that are both
	// approved by the route and subscribed to it. Open routes admit every tenant.
	ApprovalRequired bool     `json:"approvalRequired,omitempty"`
	Tenants          []string `json:"tenants,omitempty"`
	Rules            []Rule   `json:"rules"`
}

// Rule sends matching requests to backends.
type Rule struct {
	Name     string    `json:"name"`
	Matches  []Match   `json:"matches,omitempty"`
	Backends []Backend `json:"backends"`
	Retries  int32     `json:"retries,omitempty"`
	Backoff  Duration  `json:"backoff,omitempty"`
	Timeout  Duration  `json:"timeout,omitempty"`
	Prompt   *Prompt   `json:"prompt,omitempty"`
}

// Match is a set of conditions that must all hold.
type Match struct {
	Model      string   `json:"model,omitempty"` // exact, or a prefix ending in "*"
	PathExact  string   `json:"pathExact,omitempty"`
	PathPrefix string   `json:"pathPrefix,omitempty"`
	Headers    []Header `json:"headers,omitempty"`
}

// Header is a header name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Backend is a provider that serves a rule.
type Backend struct {
	Provider string `json:"provider"`
	Model    string `json:"model,omitempty"`
	Weight   int32  `json:"weight"`
	Priority int32  `json:"priority"`
}

// Prompt renders chat messages from JSON variables.
type Prompt struct {
	System    string     `json:"system,omitempty"`
	Template  string     `json:"template"`
	Variables []Variable `json:"variables,omitempty"`
}

// Variable is a placeholder of a prompt template.
type Variable struct {
	Name    string  `json:"name"`
	Default *string `json:"default,omitempty"`
}

// Tenant is a caller of the gateway.
type Tenant struct {
	Name          string   `json:"name"`
	DisplayName   string   `json:"displayName,omitempty"`
	Keys          []Key    `json:"keys,omitempty"`
	AllowedModels []string `json:"allowedModels,omitempty"`
	Suspended     bool     `json:"suspended,omitempty"`
	Credits       []Credit `json:"credits,omitempty"`
}

// Key is the SHA-256 of an API key, hex encoded. The proxy never sees keys.
type Key struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// Credit is a prepaid grant.
type Credit struct {
	ID        string       `json:"id"`
	Amount    money.Micros `json:"amount"`
	ExpiresAt *time.Time   `json:"expiresAt,omitempty"`
}

// Policy is a PaymentPolicy and the requests it applies to.
type Policy struct {
	Name          string        `json:"name"`
	Mode          string        `json:"mode"`
	Currency      string        `json:"currency"`
	Admission     string        `json:"admission"`
	FailureMode   string        `json:"failureMode"`
	Prepaid       bool          `json:"prepaid,omitempty"`
	Budget        *Budget       `json:"budget,omitempty"`
	PayPerRequest money.Micros  `json:"payPerRequest,omitempty"`
	Pricing       Pricing       `json:"pricing"`
	SoftLimits    []int32       `json:"softLimits,omitempty"`
	Refusal       Refusal       `json:"refusal"`
	Targets       PolicyTargets `json:"targets"`
}

// PolicyTargets are the requests a policy applies to: all of the Gateway's,
// those on some routes, or those of some tenants.
type PolicyTargets struct {
	Gateway bool     `json:"gateway,omitempty"`
	Routes  []string `json:"routes,omitempty"`
	Tenants []string `json:"tenants,omitempty"`
}

// Budget caps spend per window.
type Budget struct {
	Limit    money.Micros `json:"limit"`
	Calendar string       `json:"calendar,omitempty"`
	Timezone string       `json:"timezone,omitempty"`
	Rolling  Duration     `json:"rolling,omitempty"`
}

// Pricing overrides list prices.
type Pricing struct {
	// MarkupPercent is in micro-percent: 12.5% is 12_500_000.
	MarkupPercent money.Micros `json:"markupPercent,omitempty"`
	Models        []ModelPrice `json:"models,omitempty"`
}

// ModelPrice is a policy's price for models matching Name.
type ModelPrice struct {
	Name  string `json:"name"`
	Price Price  `json:"price"`
}

// Refusal is the declared 402.
type Refusal struct {
	Message  string   `json:"message,omitempty"`
	Code     string   `json:"code,omitempty"`
	TopUpURL string   `json:"topUpURL,omitempty"`
	Headers  []Header `json:"headers,omitempty"`
	X402     *X402    `json:"x402,omitempty"`
}

// X402 is how a refused request can be paid.
type X402 struct {
	Accepts        []X402Option `json:"accepts"`
	FacilitatorURL string       `json:"facilitatorURL"`
	// FacilitatorTokenKey names the credentials key of the facilitator's bearer token.
	FacilitatorTokenKey string `json:"facilitatorTokenKey,omitempty"`
}

// X402Option is one accepted way to pay.
type X402Option struct {
	Scheme            string          `json:"scheme"`
	Network           string          `json:"network"`
	Asset             string          `json:"asset"`
	Decimals          int32           `json:"decimals"`
	PayTo             string          `json:"payTo"`
	MaxTimeoutSeconds int32           `json:"maxTimeoutSeconds"`
	Extra             json.RawMessage `json:"extra,omitempty"`
}
