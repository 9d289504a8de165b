// Package proxy is the data plane: it authenticates tenants, routes LLM API
// requests to providers, meters tokens and cost, and hands every request to
// an Admitter before forwarding and after the answer, which is where
// payment policies plug in.
package proxy

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
)

// table is one loaded config compiled for lookups. It is immutable once
// built and swapped whole, so requests never see half a config.
type table struct {
	cfg       *dataplane.Config
	tenants   map[[32]byte]*tenant // by SHA-256 of the API key
	routes    []*route
	providers map[string]*upstream
}

type tenant struct {
	dataplane.Tenant
}

type route struct {
	dataplane.Route
	approved map[string]bool
	rules    []*rule
}

type rule struct {
	dataplane.Rule
	route *route
	// tiers are the backends by priority, lowest first: fallbacks follow.
	tiers [][]*backend
}

type backend struct {
	up     *upstream
	model  string // rewrite; empty keeps the client's model
	weight int32
}

// upstream is a provider with its credential.
type upstream struct {
	dataplane.Provider
	wire   provider.Upstream
	prices map[string]dataplane.Price
}

// compile builds a table from a config and the credentials it names.
func compile(cfg *dataplane.Config, creds map[string][]byte) (*table, error) {
	t := &table{cfg: cfg, tenants: map[[32]byte]*tenant{}, providers: map[string]*upstream{}}
	for _, p := range cfg.Providers {
		u := &upstream{Provider: p, prices: map[string]dataplane.Price{}}
		u.wire = provider.Upstream{Type: p.Type, BaseURL: p.BaseURL, AzureAPIVersion: p.AzureAPIVersion}
		if p.CredentialKey != "" {
			key, ok := creds[p.CredentialKey]
			if !ok {
				return nil, fmt.Errorf("provider %s: credential %q is missing", p.Name, p.CredentialKey)
			}
			u.wire.APIKey = string(key)
		}
		for _, m := range p.Models {
			u.prices[m.Name] = m.Price
		}
		t.providers[p.Name] = u
	}
	for i := range cfg.Tenants {
		tn := &tenant{Tenant: cfg.Tenants[i]}
		for _, k := range tn.Keys {
			var h [32]byte
			if _, err := hex.Decode(h[:], []byte(k.SHA256)); err != nil {
				return nil, fmt.Errorf("tenant %s key %s: %w", tn.Name, k.Name, err)
			}
			t.tenants[h] = tn
		}
	}
	for _, r := range cfg.Routes {
		rt := &route{Route: r, approved: map[string]bool{}}
		for _, name := range r.Tenants {
			rt.approved[name] = true
		}
		for _, ru := range r.Rules {
			cr := &rule{Rule: ru, route: rt}
			byPriority := map[int32][]*backend{}
			for _, b := range ru.Backends {
				if b.Weight <= 0 {
					continue
				}
				up := t.providers[b.Provider]
				if up == nil {
					return nil, fmt.Errorf("route %s rule %s: provider %s is not in the config", r.Name, ru.Name, b.Provider)
				}
				byPriority[b.Priority] = append(byPriority[b.Priority], &backend{up: up, model: b.Model, weight: b.Weight})
			}
			for _, p := range slices.Sorted(maps.Keys(byPriority)) {
				cr.tiers = append(cr.tiers, byPriority[p])
			}
			rt.rules = append(rt.rules, cr)
		}
		t.routes = append(t.routes, rt)
	}
	return t, nil
}

// matchModel reports whether a model matches a pattern: exact, or a prefix ending in "*".
func matchModel(pattern, model string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(model, prefix)
	}
	return pattern == model
}

// allows says whether the tenant may call a model.
func (tn *tenant) allows(model string) bool {
	if len(tn.AllowedModels) == 0 {
		return true
	}
	return slices.ContainsFunc(tn.AllowedModels, func(p string) bool { return matchModel(p, model) })
}

// price is a provider's list price for a model, zero when it lists none.
func (u *upstream) price(model string) dataplane.Price { return u.prices[model] }

// Cost is what a call's usage costs at a price, rounded up once to the next
// micro-unit. Cached input tokens are a subset of input tokens and are
// priced at the cached rate.
func Cost(p dataplane.Price, u provider.Usage) money.Micros {
	cached := min(max(u.CachedInputTokens, 0), max(u.InputTokens, 0))
	fresh := max(u.InputTokens, 0) - cached
	sum := money.SumOfProducts(
		[2]int64{fresh, int64(p.InputPerMillion)},
		[2]int64{cached, int64(p.CachedInputPerMillion)},
		[2]int64{max(u.OutputTokens, 0), int64(p.OutputPerMillion)},
	)
	return money.Micros(money.CeilDiv(sum, money.Scale)) + p.PerRequest
}
