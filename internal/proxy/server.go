package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

// Headers the proxy adds to responses.
const (
	HeaderRequestID = "X-Request-Id"
	HeaderCost      = "X-Tollgate-Cost"
	HeaderCurrency  = "X-Tollgate-Currency"
	HeaderRemaining = "X-Tollgate-Remaining"
)

// maxUpstreamBody bounds a non-streamed upstream answer the proxy buffers.
const maxUpstreamBody = 64 << 20

// Options configure a Server.
type Options struct {
	// Admitter decides admission and settles cost; nil meters at list price.
	Admitter Admitter
	Logger   *slog.Logger
	Metrics  *Metrics
	// Transport reaches the providers; nil uses one tuned for many
	// concurrent calls to few hosts.
	Transport http.RoundTripper
}

// Server is the proxy's traffic handler. Its config is swapped atomically by Load.
type Server struct {
	table   atomic.Pointer[table]
	admit   Admitter
	client  *http.Client
	log     *slog.Logger
	metrics *Metrics
	bufs    sync.Pool
}

// New returns a Server that answers 503 until a config is loaded.
func New(o Options) *Server {
	s := &Server{admit: o.Admitter, log: o.Logger, metrics: o.Metrics}
	if s.admit == nil {
		s.admit = Meter{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	tr := o.Transport
	if tr == nil {
		tr = NewTransport()
	}
	// Timeouts come from each route and provider, per request.
	s.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	return s
}

// NewTransport is tuned for a proxy: many idle connections per provider
// host (Go's default of 2 opens thousands of connections under load).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2048,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Load validates a config, compiles it and swaps it in. A config that
// fails leaves the current one serving.
func (s *Server) Load(cfg *dataplane.Config, creds map[string][]byte) error {
	if err := cfg.Validate(); err != nil {
		s.metrics.reload(false)
		return err
	}
	t, err := compile(cfg, creds)
	if err == nil {
		if c, ok := s.admit.(Configurer); ok {
			err = c.Configure(cfg, creds)
		}
	}
	if err != nil {
		s.metrics.reload(false)
		return err
	}
	old := s.table.Swap(t)
	prev := ""
	if old != nil {
		prev = old.cfg.Hash
	}
	s.metrics.reload(true)
	s.metrics.dropConfig(prev, cfg.Hash)
	return nil
}

// Config is the config being served, nil before the first Load.
func (s *Server) Config() *dataplane.Config {
	if t := s.table.Load(); t != nil {
		return t.cfg
	}
	return nil
}

// exchange is the state of one request as it moves through the proxy.
type exchange struct {
	Exchange
	start    time.Time
	api      provider.API // the API the client speaks
	tenant   *tenant
	rule     *rule
	status   int
	served   *Candidate
	usage    provider.Usage
	receipt  Receipt
	upstream time.Duration
	err      string
	prompt   string
}

// ServeHTTP runs a request through authentication, routing, admission,
// forwarding and settlement.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{start: time.Now(), api: provider.OpenAIChat}
	x.RequestID = requestID(r)
	x.LedgerID = newLedgerID(x.start)
	x.Request = r
	w.Header().Set(HeaderRequestID, x.RequestID)
	defer s.finish(x)

	t := s.table.Load()
	if t == nil {
		s.fail(w, x, &provider.Error{Status: http.StatusServiceUnavailable, Message: "the gateway has no configuration yet"})
		return
	}
	api, isAPI := provider.APIForPath(r.URL.Path)
	if isAPI {
		x.api = api
	}
	// Authenticate before anything else; the answer never says whether a tenant exists.
	if x.tenant = t.authenticate(r); x.tenant == nil {
		s.fail(w, x, &provider.Error{Status: http.StatusUnauthorized, Type: "authentication_error", Code: "invalid_api_key",
			Message: "Invalid API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."})
		return
	}
	x.Tenant = x.tenant.Name
	if r.URL.Path == "/v1/models" || r.URL.Path == "/models" {
		s.models(w, x, t)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, x, &provider.Error{Status: http.StatusMethodNotAllowed, Message: r.Method + " is not allowed; use POST"})
		return
	}
	body, err := s.readBody(w, r, t.cfg.Limits.MaxRequestBodyBytes)
	if err != nil {
		s.fail(w, x, err)
		return
	}
	defer s.putBuf(body)
	payload := body.Bytes()
	if t.cfg.Logging.LogPrompts {
		x.prompt = string(payload) // opted in by the ProxyConfig; off by default
	}
	if !isAPI {
		ru := t.prompt(r)
		if ru == nil {
			s.fail(w, x, &provider.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
				Message: fmt.Sprintf("Unknown request URL: %s %s.", r.Method, r.URL.Path)})
			return
		}
		if payload, err = renderPrompt(ru, payload); err != nil {
			s.fail(w, x, err)
			return
		}
		x.api = provider.OpenAIChat
	}
	req, err := provider.ParseRequest(x.api, payload)
	if err != nil {
		s.fail(w, x, err)
		return
	}
	x.Model, x.Stream, x.MaxTokens, x.PromptTokens, x.API = req.Model, req.Stream, req.MaxTokens, req.PromptTokens, x.api
	if x.rule = s.route(t, r, x, isAPI); x.rule == nil {
		s.fail(w, x, &provider.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: "model",
			Message: fmt.Sprintf("The model %q does not exist or is not served on this gateway.", x.Model)})
		return
	}
	x.Route, x.Rule = x.rule.route.Name, x.rule.Name
	if err := authorize(x.tenant, x.rule, x.Model); err != nil {
		s.fail(w, x, err)
		return
	}
	x.Candidates = candidates(x.rule, x.Model)
	x.Header = http.Header{}
	ticket, refusal := s.admit.Admit(r.Context(), &x.Exchange)
	for k, v := range x.Header {
		w.Header()[k] = v
	}
	if refusal != nil {
		s.refuse(w, x, refusal)
		return
	}
	s.forward(w, x, payload, ticket)
}

// route picks the rule for a request: prompt endpoints own their path.
func (s *Server) route(t *table, r *http.Request, x *exchange, isAPI bool) *rule {
	if !isAPI {
		return t.prompt(r)
	}
	return t.match(r, x.Model)
}

// authenticate finds the tenant of the request's API key by its SHA-256.
func (t *table) authenticate(r *http.Request) *tenant {
	key := r.Header.Get("x-api-key")
	if auth := r.Header.Get("Authorization"); key == "" && len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		key = strings.TrimSpace(auth[7:])
	}
	if key == "" {
		return nil
	}
	return t.tenants[sha256.Sum256([]byte(key))]
}

// authorize checks what the tenant may do on the rule: 403 otherwise.
func authorize(tn *tenant, ru *rule, model string) error {
	forbidden := func(code, msg string) error {
		return &provider.Error{Status: http.StatusForbidden, Type: "permission_error", Code: code, Message: msg}
	}
	switch {
	case tn.Suspended:
		return forbidden("tenant_suspended", "This tenant is suspended.")
	case !tn.allows(model):
		return forbidden("model_not_allowed", fmt.Sprintf("This tenant may not use the model %q.", model))
	case ru.route.ApprovalRequired && !ru.route.approved[tn.Name]:
		return forbidden("route_not_approved", fmt.Sprintf("This tenant is not approved for route %s: subscribe to it and ask its owner to approve you.", ru.route.Name))
	}
	return nil
}

// candidates lists the upstreams a rule may use for a model, tier by tier.
func candidates(ru *rule, model string) []Candidate {
	var out []Candidate
	for _, tier := range ru.tiers {
		for _, b := range tier {
			out = append(out, b.candidate(model))
		}
	}
	return out
}

func (b *backend) candidate(model string) Candidate {
	if b.model != "" {
		model = b.model
	}
	return Candidate{Provider: b.up.Name, Model: model, Currency: b.up.Currency, Price: b.up.price(model)}
}

// readBody reads the whole request body, so that it can be replayed on
// retries and is never forwarded half-read while a response streams.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, error) {
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		s.putBuf(buf)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &provider.Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
				Message: fmt.Sprintf("The request body is larger than the gateway's limit of %d bytes.", limit)}
		}
		return nil, &provider.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: "The request body could not be read."}
	}
	return buf, nil
}

// fail answers with an error in the client's envelope.
func (s *Server) fail(w http.ResponseWriter, x *exchange, err error) {
	status, body := provider.ClientError(x.api, err)
	x.status, x.err = status, err.Error()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// refuse answers with an admission refusal, such as the declared 402.
func (s *Server) refuse(w http.ResponseWriter, x *exchange, ref *Refusal) {
	x.status, x.err = ref.Status, "refused"
	h := w.Header()
	for k, v := range ref.Header {
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(ref.Status)
	_, _ = w.Write(ref.Body(x.api))
	s.metrics.refused(x.Tenant, ref.Status)
}

// requestID keeps a well-formed id the client sent, or makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(HeaderRequestID); id != "" && len(id) <= 128 && printable(id) {
		return id
	}
	return newID()
}

// newID is a random request id.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// newLedgerID is a random id that sorts by time, so that ledgers that index
// ids (the Embedded one does, in a B+tree) append rather than insert.
func newLedgerID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	_, _ = rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// forward sends the request upstream, with retries and fallback tiers, and
// answers the client with the translated response, settling its cost.
func (s *Server) forward(w http.ResponseWriter, x *exchange, payload []byte, ticket Ticket) {
	ctx := x.Request.Context()
	if d := x.rule.timeout(); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	a, err := s.send(ctx, x, payload)
	if err != nil {
		ticket.Release(context.WithoutCancel(ctx))
		if errors.Is(err, context.DeadlineExceeded) {
			err = &provider.Error{Status: http.StatusGatewayTimeout, Type: "timeout_error", Message: "The upstream provider did not answer in time."}
		}
		s.fail(w, x, err)
		return
	}
	defer a.resp.Body.Close()
	c := a.b.candidate(x.Model)
	x.served = &c
	if a.resp.StatusCode == http.StatusUnauthorized {
		// The provider refused the gateway's credential, not the client's key.
		ticket.Release(context.WithoutCancel(ctx))
		s.fail(w, x, &provider.Error{Status: http.StatusBadGateway, Code: "upstream_auth_failed",
			Message: fmt.Sprintf("The upstream provider %s rejected the gateway's credentials; tell the gateway's operator.", c.Provider)})
		return
	}
	if x.Stream && a.resp.StatusCode/100 == 2 {
		s.stream(w, x, a, ticket)
		return
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	defer s.putBuf(buf) // after the answer is written: data and out may share it
	data, err := readAll(buf, a.resp)
	x.upstream = time.Since(a.sent)
	if err != nil {
		ticket.Release(context.WithoutCancel(ctx))
		s.fail(w, x, &provider.Error{Status: http.StatusBadGateway, Message: "The upstream answer could not be read."})
		return
	}
	out, usage, err := a.tr.Response(a.resp.StatusCode, data)
	if err != nil {
		ticket.Release(context.WithoutCancel(ctx))
		s.fail(w, x, err)
		return
	}
	h := w.Header()
	if a.resp.StatusCode/100 == 2 {
		x.usage = usage
		x.receipt = ticket.Settle(context.WithoutCancel(ctx), c, usage)
		receiptHeaders(h, x.receipt)
	} else {
		ticket.Release(context.WithoutCancel(ctx))
		copyRetryHeaders(h, a.resp.Header)
	}
	h.Set("Content-Type", "application/json")
	x.status = a.resp.StatusCode
	w.WriteHeader(a.resp.StatusCode)
	_, _ = w.Write(out)
}

// stream relays an upstream event stream, flushing each event, and puts the
// cost in trailers: it is known only once the stream ends.
func (s *Server) stream(w http.ResponseWriter, x *exchange, a *attempt, ticket Ticket) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Trailer", strings.Join([]string{HeaderCost, HeaderCurrency, HeaderRemaining}, ", "))
	x.status = http.StatusOK
	w.WriteHeader(http.StatusOK)
	// Events are flushed in the batches they arrived in: before every wait
	// for upstream data, not after every event.
	dst := sse.NewDeferredWriter(w)
	usage, err := a.tr.Stream(dst, flushBeforeRead{a.resp.Body, dst})
	x.upstream = time.Since(a.sent)
	if err != nil {
		x.err = err.Error()
	} else {
		awaitEnd(a.resp.Body, dst)
	}
	// What was streamed was served: settle it, even when the stream broke,
	// and before the client sees the end. The handler's return then sends
	// the last events, the end of the stream and the trailers in one write.
	x.usage = usage
	x.receipt = ticket.Settle(context.WithoutCancel(x.Request.Context()), *x.served, usage)
	receiptHeaders(h, x.receipt)
}

// awaitEnd reads what an upstream still sends after the end of a stream
// (the chunked encoding's last chunk usually comes just after [DONE]), so
// that its connection is reused rather than closed; the request's context
// ends with the handler, so this cannot wait for later. It reads in the
// handler's goroutine, as a plain reverse proxy would: an upstream that
// lingers gets 50ms and is cut off, and after the first millisecond a
// timer sends the client its last events rather than keep it waiting.
func awaitEnd(body io.ReadCloser, dst *sse.Writer) {
	flushed := make(chan struct{})
	early := time.AfterFunc(time.Millisecond, func() {
		_ = dst.Flush() // the handler is blocked in the read below
		close(flushed)
	})
	cut := time.AfterFunc(50*time.Millisecond, func() { _ = body.Close() })
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	cut.Stop()
	if !early.Stop() {
		<-flushed // the handler may write again only once the flush is done
	}
}

// flushBeforeRead sends the client what it was written before blocking on
// the upstream for more.
type flushBeforeRead struct {
	r   io.Reader
	dst *sse.Writer
}

func (f flushBeforeRead) Read(p []byte) (int, error) {
	if err := f.dst.Flush(); err != nil {
		return 0, err
	}
	return f.r.Read(p)
}

func receiptHeaders(h http.Header, r Receipt) {
	h.Set(HeaderCost, r.Cost.String())
	if r.Currency != "" {
		h.Set(HeaderCurrency, r.Currency)
	}
	if r.Remaining != nil {
		h.Set(HeaderRemaining, r.Remaining.String())
	}
	for k, v := range r.Header {
		h[k] = v
	}
}

// copyRetryHeaders passes the provider's back-off advice on to the client.
func copyRetryHeaders(dst, src http.Header) {
	for _, k := range []string{"Retry-After", "Retry-After-Ms", "X-Should-Retry"} {
		if v := src.Get(k); v != "" {
			dst.Set(k, v)
		}
	}
}

// putBuf returns a buffer to the pool, unless a large body grew it: the
// pool would keep that memory for good.
func (s *Server) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		s.bufs.Put(b)
	}
}

// readAll reads an upstream answer into buf, sized up front when the
// upstream said how long it is.
func readAll(buf *bytes.Buffer, resp *http.Response) ([]byte, error) {
	buf.Reset()
	if n := resp.ContentLength; n > 0 && n <= maxUpstreamBody {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, maxUpstreamBody+1))
	if err == nil && buf.Len() > maxUpstreamBody {
		err = errors.New("upstream answer too large")
	}
	return buf.Bytes(), err
}

// finish logs the request and counts it.
func (s *Server) finish(x *exchange) {
	latency := time.Since(x.start)
	s.metrics.observe(x, latency)
	if !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", x.RequestID), slog.String("tenant", x.Tenant), slog.String("route", x.Route),
		slog.String("rule", x.Rule), slog.String("model", x.Model), slog.Int("status", x.status),
		slog.Bool("stream", x.Stream), slog.Duration("latency", latency),
	}
	if x.served != nil {
		attrs = append(attrs, slog.String("provider", x.served.Provider), slog.String("upstream_model", x.served.Model),
			slog.Duration("upstream_latency", x.upstream),
			slog.Int64("input_tokens", x.usage.InputTokens), slog.Int64("cached_input_tokens", x.usage.CachedInputTokens),
			slog.Int64("output_tokens", x.usage.OutputTokens), slog.String("cost", x.receipt.Cost.String()), slog.String("currency", x.receipt.Currency))
	}
	if x.err != "" {
		attrs = append(attrs, slog.String("error", x.err))
	}
	if x.prompt != "" {
		attrs = append(attrs, slog.String("prompt", x.prompt))
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

func (ru *rule) timeout() time.Duration {
	if ru.Timeout > 0 {
		return ru.Timeout.Std()
	}
	for _, tier := range ru.tiers {
		for _, b := range tier {
			return b.up.Timeout.Std()
		}
	}
	return 0
}
