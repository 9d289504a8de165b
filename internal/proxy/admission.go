package proxy

import (
	"context"
	"net/http"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
)

// Exchange is one authenticated, routed request, as admission sees it.
type Exchange struct {
	// RequestID names the request in logs and headers; a client may choose it.
	RequestID string
	// LedgerID is the request's idempotency key in the ledger. The proxy
	// makes it, never the client: a client-chosen key could replay an
	// earlier admission and be served for free.
	LedgerID string
	Request  *http.Request
	API      provider.API
	Tenant   string
	Route    string
	Rule     string
	// Model is the model the client asked for.
	Model string
	// Candidates are the upstream models the rule may send the request to,
	// with their list prices, so that admission can hold the dearest.
	Candidates []Candidate
	// PromptTokens and MaxTokens bound the request's size: the estimated
	// prompt and the client's output cap (zero when it set none).
	PromptTokens int64
	MaxTokens    int64
	Stream       bool
	// Header is set on the response before it starts, by admission (for
	// example a payment receipt), so that streams carry it too.
	Header http.Header
}

// Candidate is an upstream that may serve a request.
type Candidate struct {
	Provider string
	Model    string
	Currency string
	Price    dataplane.Price
}

// Admitter decides, before a request goes upstream, whether it may, and
// settles what it cost afterwards. Payment policies implement it.
type Admitter interface {
	// Admit returns a Ticket for an admitted request, or a Refusal.
	Admit(ctx context.Context, x *Exchange) (Ticket, *Refusal)
}

// Configurer is an Admitter that takes each new config, and the credentials
// it names, before the config serves; an error refuses the config.
type Configurer interface {
	Configure(cfg *dataplane.Config, creds map[string][]byte) error
}

// Ticket is an admitted request waiting to be settled.
type Ticket interface {
	// Settle commits the usage of the upstream that served the request.
	Settle(ctx context.Context, served Candidate, u provider.Usage) Receipt
	// Release drops the admission of a request that was never served.
	Release(ctx context.Context)
}

// Receipt is what a settled request shows its client.
type Receipt struct {
	Cost     money.Micros
	Currency string
	// Remaining is the balance left, when a policy tracks one.
	Remaining *money.Micros
	// Header is added to the response (trailers, for streams).
	Header http.Header
}

// Refusal is an answer given instead of forwarding: a 402, or a 503 when a
// fail-closed ledger cannot be reached.
type Refusal struct {
	Status int
	Header http.Header
	// Body renders the refusal in the client's API.
	Body func(api provider.API) []byte
	// Stream renders the terminal event of a stream that must stop.
	Stream func(api provider.API) []byte
}

// Meter admits everything and settles at list price: metering without payment.
type Meter struct{}

// Admit admits every request.
func (Meter) Admit(context.Context, *Exchange) (Ticket, *Refusal) { return meterTicket{}, nil }

type meterTicket struct{}

func (meterTicket) Settle(_ context.Context, c Candidate, u provider.Usage) Receipt {
	return Receipt{Cost: Cost(c.Price, u), Currency: c.Currency}
}

func (meterTicket) Release(context.Context) {}
