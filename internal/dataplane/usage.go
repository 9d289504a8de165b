package dataplane

import (
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
)

// UsageReport is what a Gateway's proxies report of spend, read from the
// ledger, for the manager to show in Tenant and PaymentPolicy status. It is
// a summary per tenant and per policy, never one entry per request or key.
type UsageReport struct {
	Gateway   string                   `json:"gateway"`
	UpdatedAt time.Time                `json:"updatedAt"`
	Tenants   map[string]TenantUsage   `json:"tenants,omitempty"`
	Policies  map[string][]PolicySpend `json:"policies,omitempty"`
	// SoftLimits are the highest soft limits that tenants crossed, per policy.
	SoftLimits []SoftLimit `json:"softLimits,omitempty"`
}

// SoftLimit says that a tenant spent at least Percent of what a policy allows.
type SoftLimit struct {
	Policy  string `json:"policy"`
	Tenant  string `json:"tenant"`
	Percent int32  `json:"percent"`
}

// TenantUsage is one tenant's spend: its prepaid balance when it has one,
// else its tightest budget.
type TenantUsage struct {
	Currency     string       `json:"currency"`
	Spent        money.Micros `json:"spent"`
	Remaining    money.Micros `json:"remaining"`
	Requests     int64        `json:"requests"`
	InputTokens  int64        `json:"inputTokens"`
	OutputTokens int64        `json:"outputTokens"`
	WindowStart  *time.Time   `json:"windowStart,omitempty"`
}

// PolicySpend is one tenant's spend under a policy.
type PolicySpend struct {
	Tenant    string       `json:"tenant"`
	Spent     money.Micros `json:"spent"`
	Remaining money.Micros `json:"remaining"`
	Requests  int64        `json:"requests"`
}

// TopTenants is how many tenants a policy's report keeps, biggest spenders first.
const TopTenants = 10
