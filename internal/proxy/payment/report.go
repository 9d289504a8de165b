package payment

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/ledger"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Report reads every (policy, tenant) account of the config from the
// ledger and summarises it per tenant and per policy.
func (e *Enforcer) Report(ctx context.Context, gateway string) (*dataplane.UsageReport, error) {
	st := e.state.Load()
	if st == nil || e.ledger == nil {
		return nil, nil
	}
	now := e.now()
	r := &dataplane.UsageReport{Gateway: gateway, UpdatedAt: now.UTC(), Tenants: map[string]dataplane.TenantUsage{}, Policies: map[string][]dataplane.PolicySpend{}}
	byPolicy := map[string]*policy{}
	tenantsOf := map[string][]string{}
	for tenant, ps := range st.tenants {
		for _, p := range ps {
			byPolicy[p.Name] = p
			tenantsOf[p.Name] = append(tenantsOf[p.Name], tenant)
		}
	}
	// Gateway and route policies keep counters for every tenant that calls.
	for _, ps := range append(slices.Collect(maps.Values(st.routes)), st.gateway) {
		for _, p := range ps {
			if _, done := byPolicy[p.Name]; !done {
				byPolicy[p.Name] = p
				tenantsOf[p.Name] = slices.Collect(maps.Keys(st.credits))
			}
		}
	}
	for name, p := range byPolicy {
		for _, tenant := range tenantsOf[name] {
			hs := p.holds(tenant, 0)
			// A tenant that has not called yet still shows its declared credit.
			if err := e.grants(ctx, st, tenant, now, hs); err != nil {
				return nil, err
			}
			for _, h := range hs {
				s, err := e.ledger.Balance(ctx, h.Account, now)
				if err != nil {
					return nil, err
				}
				r.Policies[name] = append(r.Policies[name], dataplane.PolicySpend{Tenant: tenant, Spent: s.Spent, Remaining: s.Remaining, Requests: s.Usage.Requests})
				if pct := crossed(p.SoftLimits, s); pct > 0 {
					r.SoftLimits = append(r.SoftLimits, dataplane.SoftLimit{Policy: name, Tenant: tenant, Percent: pct})
				}
				tu, seen := r.Tenants[tenant]
				// A prepaid balance is what a tenant watches; else its tightest budget.
				prepaid := h.Account.Kind == ledger.Prepaid
				if !seen || prepaid || (tu.WindowStart != nil && s.Remaining < tu.Remaining) {
					tu = dataplane.TenantUsage{Currency: p.Currency, Spent: s.Spent, Remaining: s.Remaining, Requests: s.Usage.Requests,
						InputTokens: s.Usage.InputTokens, OutputTokens: s.Usage.OutputTokens}
					if !prepaid {
						start := s.WindowStart.UTC()
						tu.WindowStart = &start
					}
					r.Tenants[tenant] = tu
				}
			}
		}
	}
	slices.SortFunc(r.SoftLimits, func(a, b dataplane.SoftLimit) int {
		return cmp.Or(cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.Tenant, b.Tenant))
	})
	for name, spends := range r.Policies {
		slices.SortFunc(spends, func(a, b dataplane.PolicySpend) int {
			return cmp.Or(cmp.Compare(b.Spent, a.Spent), cmp.Compare(a.Tenant, b.Tenant))
		})
		spends = slices.CompactFunc(spends, func(a, b dataplane.PolicySpend) bool { return a.Tenant == b.Tenant })
		r.Policies[name] = spends[:min(len(spends), dataplane.TopTenants)]
	}
	return r, nil
}

// crossed is the highest soft limit, in percent, that an account's spend
// reached: of its budget, or of its prepaid grants.
func crossed(limits []int32, s ledger.Snapshot) int32 {
	total := s.Spent + s.Held + max(s.Remaining, 0)
	if len(limits) == 0 || total <= 0 {
		return 0
	}
	used := money.MulDivCeil(int64(s.Spent), 100, int64(total))
	var out int32
	for _, l := range limits {
		if used >= int64(l) && l > out {
			out = l
		}
	}
	return out
}
