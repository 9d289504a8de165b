// Package payment enforces PaymentPolicies at the proxy's admission point:
// it prices each request under every policy that applies, holds its
// maximum cost in the ledger before forwarding (or checks the balance, for
// Settle admission), settles the real cost after, and refuses with the
// 402 each policy declares.
package payment

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/ledger"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
	"github.com/tollgate-dev/tollgate/internal/proxy/x402"
	"github.com/tollgate-dev/tollgate/internal/timezone"
)

// Headers the enforcer adds.
const (
	HeaderDryRun  = "X-Tollgate-Dry-Run"
	HeaderWarning = "X-Tollgate-Warning"
)

// Opener opens the ledger a config declares.
type Opener func(cfg dataplane.Ledger, creds map[string][]byte) (ledger.Ledger, error)

// Enforcer is the proxy's Admitter when payment policies apply.
type Enforcer struct {
	open   Opener
	now    func() time.Time
	log    *slog.Logger
	ledger ledger.Ledger
	kind   string // the ledger type that is open
	state  atomic.Pointer[state]
	// granted remembers which credit grants the ledger already holds, so
	// that each is written once per process (the ledger dedupes by id too).
	grantedMu sync.RWMutex
	granted   map[string]map[string]bool // by account key, then grant id
}

// New returns an Enforcer that opens its ledger with open on the first
// config. now is the clock (time.Now when nil).
func New(open Opener, now func() time.Time, log *slog.Logger) *Enforcer {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Enforcer{open: open, now: now, log: log, granted: map[string]map[string]bool{}}
}

// Close closes the ledger.
func (e *Enforcer) Close() error {
	if e.ledger == nil {
		return nil
	}
	return e.ledger.Close()
}

// Ledger is the ledger in use, nil before the first config.
func (e *Enforcer) Ledger() ledger.Ledger { return e.ledger }

type state struct {
	tokens  map[string]string // facilitator bearer tokens, by policy
	gateway []*policy
	routes  map[string][]*policy
	tenants map[string][]*policy
	credits map[string][]dataplane.Credit
	x402    bool // some policy declares x402: requests may carry a payment
}

type policy struct {
	dataplane.Policy
	window ledger.Window
}

// Configure compiles a config's policies, opening the ledger it declares
// the first time. Switching ledger types needs a restart.
func (e *Enforcer) Configure(cfg *dataplane.Config, creds map[string][]byte) error {
	if e.ledger == nil {
		l, err := e.open(cfg.Ledger, creds)
		if err != nil {
			return fmt.Errorf("opening the %s ledger: %w", cfg.Ledger.Type, err)
		}
		e.ledger, e.kind = l, cfg.Ledger.Type
	} else if cfg.Ledger.Type != e.kind {
		e.log.Warn("The config asks for another ledger type; restart the proxy to switch", "serving", e.kind, "wanted", cfg.Ledger.Type)
	}
	st := &state{tokens: map[string]string{}, routes: map[string][]*policy{}, tenants: map[string][]*policy{}, credits: map[string][]dataplane.Credit{}}
	for _, p := range cfg.Policies {
		cp := &policy{Policy: p}
		if x := p.Refusal.X402; x != nil && x.FacilitatorTokenKey != "" {
			st.tokens[p.Name] = string(creds[x.FacilitatorTokenKey])
		}
		st.x402 = st.x402 || p.Refusal.X402 != nil
		if b := p.Budget; b != nil {
			if b.Calendar != "" {
				loc, err := timezone.Load(cmp.Or(b.Timezone, "UTC"))
				if err != nil {
					return fmt.Errorf("policy %s: %w", p.Name, err)
				}
				cp.window = ledger.Window{Period: ledger.Period(b.Calendar), Location: loc}
			} else {
				cp.window = ledger.Window{Rolling: b.Rolling.Std()}
			}
		}
		if p.Targets.Gateway {
			st.gateway = append(st.gateway, cp)
		}
		for _, r := range p.Targets.Routes {
			st.routes[r] = append(st.routes[r], cp)
		}
		for _, t := range p.Targets.Tenants {
			st.tenants[t] = append(st.tenants[t], cp)
		}
	}
	for _, t := range cfg.Tenants {
		st.credits[t.Name] = t.Credits
	}
	st.gateway = byName(st.gateway)
	for _, m := range []map[string][]*policy{st.routes, st.tenants} {
		for k, ps := range m {
			m[k] = byName(ps)
		}
	}
	e.state.Store(st)
	return nil
}

// applicable are the policies for a tenant on a route, each once, by name.
// Callers must not change the slice: it may be one of the state's.
func (s *state) applicable(route, tenant string) []*policy {
	lists := [...][]*policy{s.gateway, s.routes[route], s.tenants[tenant]}
	var out []*policy
	n := 0
	for _, l := range lists {
		if len(l) > 0 {
			out, n = l, n+1
		}
	}
	if n <= 1 {
		return out // the common case: each list is already byName
	}
	return byName(slices.Concat(lists[:]...))
}

// byName sorts policies by name and keeps each once.
func byName(ps []*policy) []*policy {
	slices.SortFunc(ps, func(a, b *policy) int { return cmp.Compare(a.Name, b.Name) })
	return slices.CompactFunc(ps, func(a, b *policy) bool { return a.Name == b.Name })
}

// hold is one account a request draws on, and the policy it serves.
type hold struct {
	ledger.Hold
	policy *policy
}

func budgetAccount(p *policy, tenant string) ledger.Account {
	return ledger.Account{Key: "budget|" + p.Name + "|" + tenant, Kind: ledger.Budget, Limit: p.Budget.Limit, Window: p.window}
}

// creditsAccount is the tenant's prepaid balance in one currency: every
// prepaid policy of that currency draws on the same credits.
func creditsAccount(tenant, currency string) ledger.Account {
	return ledger.Account{Key: "credits|" + tenant + "|" + currency, Kind: ledger.Prepaid}
}

// holds lists the holds a policy asks for a request.
func (p *policy) holds(tenant string, amount money.Micros) []hold {
	return p.appendHolds(nil, tenant, amount)
}

// appendHolds is holds appending to out.
func (p *policy) appendHolds(out []hold, tenant string, amount money.Micros) []hold {
	if p.Budget != nil {
		out = append(out, hold{ledger.Hold{Account: budgetAccount(p, tenant), Amount: amount}, p})
	}
	if p.Prepaid {
		out = append(out, hold{ledger.Hold{Account: creditsAccount(tenant, p.Currency), Amount: amount}, p})
	}
	return out
}

// merge keeps one hold per account, the largest: two prepaid policies draw
// on one balance, and a request is paid once.
// It reuses hs.
func merge(hs []hold) []hold {
	out := hs[:0]
	for _, h := range hs {
		i := slices.IndexFunc(out, func(o hold) bool { return o.Account.Key == h.Account.Key })
		switch {
		case i < 0:
			out = append(out, h)
		case h.Amount > out[i].Amount:
			out[i] = h
		}
	}
	return out
}

// Admit prices the request under every policy that applies and admits it
// only if each can cover it.
func (e *Enforcer) Admit(ctx context.Context, x *proxy.Exchange) (proxy.Ticket, *proxy.Refusal) {
	st := e.state.Load()
	ps := st.applicable(x.Route, x.Tenant)
	if len(ps) == 0 {
		return proxy.Meter{}.Admit(ctx, x)
	}
	now := e.now()
	t := &ticket{e: e, x: x, policies: ps}
	// x402: a pay-per-request policy is paid by the request itself; a
	// payment under a prepaid policy tops up the tenant's credits first.
	var payment string
	if st.x402 {
		payment = x.Request.Header.Get(x402.HeaderPaymentSignature)
	}
	var paid []*policy
	for _, p := range ps {
		if p.Mode == "DryRun" || p.Refusal.X402 == nil || (p.PayPerRequest == 0 && (!p.Prepaid || payment == "")) {
			continue
		}
		if payment == "" {
			return nil, e.x402Refusal(x, p, 0, offer(p, x), "payment required", time.Time{})
		}
		amount, settled, ref := e.pay(ctx, p, x, payment)
		if ref != nil {
			return nil, ref
		}
		if p.PayPerRequest > 0 {
			paid = append(paid, p)
			continue
		}
		if err := e.topUp(ctx, p, x, amount, settled, now); err != nil {
			return e.ledgerDown(t, ps, err)
		}
		break // one payment pays once
	}
	var reserve, check, dry []hold
	for _, p := range ps {
		if slices.Contains(paid, p) {
			continue // paid in full by this request's payment
		}
		switch amount := p.estimate(x); {
		case p.Mode == "DryRun":
			dry = p.appendHolds(dry, x.Tenant, amount)
		case p.Admission == "Settle":
			check = p.appendHolds(check, x.Tenant, amount)
		default:
			reserve = p.appendHolds(reserve, x.Tenant, amount)
		}
	}
	reserve, check, dry = merge(reserve), merge(check), merge(dry)
	t.charge = check
	if len(dry) > 0 {
		t.charge = slices.Concat(check, dry)
	}
	if err := e.grants(ctx, st, x.Tenant, now, reserve, check, dry); err != nil {
		return e.ledgerDown(t, ps, err)
	}

	if len(reserve) > 0 {
		d, err := e.ledger.Reserve(ctx, x.LedgerID, appendLedgerHolds(t.holds[:0], reserve), now)
		if err != nil {
			return e.ledgerDown(t, ps, err)
		}
		if !d.Admitted {
			h := reserve[d.Refused]
			return nil, e.x402Refusal(x, h.policy, d.Remaining[d.Refused], h.Amount, "insufficient balance", d.ResetAt)
		}
		t.reserved, t.remaining = reserve, d.Remaining
	}
	for _, h := range check {
		s, err := e.ledger.Balance(ctx, h.Account, now)
		if err != nil {
			return e.ledgerDown(t, ps, err)
		}
		if s.Remaining <= 0 {
			t.Release(ctx)
			return nil, e.x402Refusal(x, h.policy, s.Remaining, h.Amount, "insufficient balance", resetAt(h, s, now))
		}
	}
	for _, h := range dry {
		if s, err := e.ledger.Balance(ctx, h.Account, now); err == nil && s.Remaining < h.Amount {
			t.note(HeaderDryRun, "would refuse: "+h.policy.Name)
		}
	}
	return t, nil
}

// x402Refusal is the declared 402, with PAYMENT-REQUIRED when the policy declares x402.
func (e *Enforcer) x402Refusal(x *proxy.Exchange, p *policy, balance, estimate money.Micros, reason string, reset time.Time) *proxy.Refusal {
	ref := e.refusal(x, p, balance, estimate, reset, e.now())
	paymentRequired(ref.Header, p, x, reason)
	return ref
}

// resetAt is when a budget frees spend again, for Retry-After.
func resetAt(h hold, s ledger.Snapshot, now time.Time) time.Time {
	if h.Account.Kind != ledger.Budget {
		return time.Time{}
	}
	_, end := h.Account.Window.Bounds(now)
	return end
}

// ledgerDown applies the failure modes: one fail-closed policy refuses
// with 503; otherwise the request goes through, charged if the ledger
// comes back by the time it settles.
func (e *Enforcer) ledgerDown(t *ticket, ps []*policy, err error) (proxy.Ticket, *proxy.Refusal) {
	e.log.Error("Ledger unavailable", "request_id", t.x.RequestID, "error", err)
	for _, p := range ps {
		if p.Mode != "DryRun" && p.FailureMode != "FailOpen" {
			return nil, ledgerUnavailable(p)
		}
	}
	t.reserved, t.charge = nil, nil
	t.failedOpen = true
	return t, nil
}

// grants puts the tenant's credits into the prepaid accounts it draws on.
func (e *Enforcer) grants(ctx context.Context, st *state, tenant string, now time.Time, holds ...[]hold) error {
	for _, hs := range holds {
		for _, h := range hs {
			if h.Account.Kind != ledger.Prepaid {
				continue
			}
			for _, c := range st.credits[tenant] {
				if err := e.grant(ctx, h.Account.Key, c, now); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// grant writes one credit into a prepaid account, once per process.
func (e *Enforcer) grant(ctx context.Context, account string, c dataplane.Credit, now time.Time) error {
	e.grantedMu.RLock()
	done := e.granted[account][c.ID]
	e.grantedMu.RUnlock()
	if done {
		return nil
	}
	g := ledger.Grant{ID: c.ID, Amount: c.Amount}
	if c.ExpiresAt != nil {
		g.ExpiresAt = *c.ExpiresAt
	}
	if err := e.ledger.Grant(ctx, account, g, now); err != nil {
		return err
	}
	e.grantedMu.Lock()
	defer e.grantedMu.Unlock()
	if e.granted[account] == nil {
		e.granted[account] = map[string]bool{}
	}
	e.granted[account][c.ID] = true
	return nil
}

// appendLedgerHolds appends what the ledger is asked to hold to out.
func appendLedgerHolds(out []ledger.Hold, hs []hold) []ledger.Hold {
	for _, h := range hs {
		out = append(out, h.Hold)
	}
	return out
}

// ticket is an admitted request.
type ticket struct {
	e          *Enforcer
	x          *proxy.Exchange
	policies   []*policy
	reserved   []hold
	remaining  []money.Micros
	charge     []hold // charged after the fact: Settle admission and DryRun
	failedOpen bool
	header     http.Header    // nil until a note
	holds      [2]ledger.Hold // room for what Reserve is asked, without an allocation
}

// note adds a header to the response; most requests get none.
func (t *ticket) note(key, value string) {
	if t.header == nil {
		t.header = http.Header{}
	}
	t.header.Add(key, value)
}

// Settle commits the real cost under each policy.
func (t *ticket) Settle(ctx context.Context, served proxy.Candidate, u provider.Usage) proxy.Receipt {
	now := t.e.now()
	lu := ledger.Usage{Requests: 1, InputTokens: u.InputTokens, CachedInputTokens: u.CachedInputTokens, OutputTokens: u.OutputTokens}
	var r proxy.Receipt
	// The cost shown is what the tenant pays: its prepaid price when it has one, else the highest policy price.
	for _, p := range t.policies {
		if c := p.cost(served, u); r.Currency == "" || p.Prepaid || c > r.Cost {
			r.Cost, r.Currency = c, p.Currency
			if p.Prepaid {
				break
			}
		}
	}
	if len(t.reserved) > 0 {
		actual := make([]money.Micros, len(t.reserved))
		for i, h := range t.reserved {
			actual[i] = h.policy.cost(served, u)
		}
		if err := t.e.ledger.Settle(ctx, t.x.LedgerID, actual, lu, now); err != nil {
			t.e.log.Error("Failed to settle", "request_id", t.x.RequestID, "error", err)
		}
		for i, h := range t.reserved {
			rem := t.remaining[i] + h.Amount - actual[i]
			if r.Remaining == nil || rem < *r.Remaining {
				r.Remaining = &rem
			}
		}
	}
	charges := t.charge
	if t.failedOpen {
		for _, p := range t.policies {
			charges = p.appendHolds(charges, t.x.Tenant, 0)
		}
		charges = merge(charges)
	}
	if len(charges) > 0 {
		hs := make([]ledger.Hold, len(charges))
		for i, h := range charges {
			hs[i] = ledger.Hold{Account: h.Account, Amount: h.policy.cost(served, u)}
		}
		if err := t.e.ledger.Charge(ctx, t.x.LedgerID, hs, lu, now); err != nil {
			t.e.log.Error("Failed to charge", "request_id", t.x.RequestID, "error", err)
		}
	}
	t.softLimits(ctx, now)
	r.Header = t.header
	return r
}

// Release drops the reservation of a request that was not served.
func (t *ticket) Release(ctx context.Context) {
	if len(t.reserved) == 0 {
		return
	}
	if err := t.e.ledger.Release(ctx, t.x.LedgerID); err != nil {
		t.e.log.Error("Failed to release", "request_id", t.x.RequestID, "error", err)
	}
}

// softLimits warns when a policy's spend crossed one of its soft limits.
func (t *ticket) softLimits(ctx context.Context, now time.Time) {
	for _, p := range t.policies {
		if len(p.SoftLimits) == 0 {
			continue
		}
		for _, h := range p.holds(t.x.Tenant, 0) {
			s, err := t.e.ledger.Balance(ctx, h.Account, now)
			if err != nil {
				continue
			}
			pct := crossed(p.SoftLimits, s)
			if pct > 0 {
				t.note(HeaderWarning, fmt.Sprintf("%d%% of %s under policy %s is spent", pct, kindName(h.Account.Kind), p.Name))
			}
		}
	}
}

func kindName(k ledger.Kind) string {
	if k == ledger.Budget {
		return "the budget"
	}
	return "the prepaid balance"
}
