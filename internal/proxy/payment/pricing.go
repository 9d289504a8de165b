package payment

import (
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
)

// DefaultMaxOutputTokens bounds the output a request is reserved for when
// the client sets no max_tokens.
const DefaultMaxOutputTokens = 4096

// price is what a model costs under a policy: its own price for the model
// when it sets one (first matching entry), else the provider's list price.
func (p *policy) price(c proxy.Candidate) dataplane.Price {
	for _, m := range p.Pricing.Models {
		if matchModel(m.Name, c.Model) {
			return m.Price
		}
	}
	return c.Price
}

// cost is what usage on an upstream costs under the policy, markup included.
func (p *policy) cost(c proxy.Candidate, u provider.Usage) money.Micros {
	cost := proxy.Cost(p.price(c), u)
	if p.Pricing.MarkupPercent > 0 {
		cost = money.AddPercent(cost, p.Pricing.MarkupPercent)
	}
	return cost + p.PayPerRequest
}

// estimate is the most a request can cost under the policy: its prompt
// estimate and output cap, on the dearest upstream the rule may use.
func (p *policy) estimate(x *proxy.Exchange) money.Micros {
	out := x.MaxTokens
	if out <= 0 {
		out = DefaultMaxOutputTokens
	}
	u := provider.Usage{InputTokens: x.PromptTokens, OutputTokens: out}
	var most money.Micros
	for _, c := range x.Candidates {
		most = max(most, p.cost(c, u))
	}
	return most
}

func matchModel(pattern, model string) bool {
	if n := len(pattern); n > 0 && pattern[n-1] == '*' {
		return len(model) >= n-1 && model[:n-1] == pattern[:n-1]
	}
	return pattern == model
}
