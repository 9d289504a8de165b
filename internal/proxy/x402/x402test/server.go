package x402test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/internal/proxy/x402"
)

// MaxCalls is how many calls a Server remembers; older ones are forgotten.
const MaxCalls = 1024

// maxSettled is how many settled nonces a Server remembers to refuse replays.
const maxSettled = 4096

// maxDelay caps Behavior.Delay so that a forgotten delay cannot hang a test.
const maxDelay = 30 * time.Second

// Behavior is how a Server answers one endpoint.
type Behavior struct {
	// Reject, if set, makes every verdict negative with this reason, such
	// as insufficient_funds.
	Reject string
	// RejectStatus is the HTTP status of a negative verdict; 0 is 200.
	// Real facilitators use 200 or 400.
	RejectStatus int
	// Fail, if set, is the HTTP status of an answer without a verdict, such
	// as 500; it wins over Reject.
	Fail int
	// Delay holds the answer back, up to 30s, or until the caller gives up
	// or the Server closes.
	Delay time.Duration
}

// Call is one request a Server received.
type Call struct {
	Op     string // "verify" or "settle"; the path for others
	Status int    // the HTTP status answered
	// Bearer is the bearer token the call carried, if any.
	Bearer string
	// Request is the decoded body; zero if it did not decode.
	Request x402.FacilitatorRequest
	// Reason is the reason of a negative verdict or of an error.
	Reason string
}

// Server is a fake x402 v2 facilitator on 127.0.0.1. By default it accepts
// every well-formed payment made by this package: it checks the request's
// shape, that the payment's accepted requirement is the requirement
// verified against, the fake signature, the amount, the recipient and the
// validity window, and it settles each authorization once, under TxHash.
type Server struct {
	// URL is the facilitator's base URL, such as http://127.0.0.1:41234.
	URL string

	srv    *httptest.Server
	done   chan struct{}
	once   sync.Once
	active atomic.Int32 // requests being answered

	mu          sync.Mutex
	verify      Behavior
	settle      Behavior
	token       string
	calls       []Call // ring of the last MaxCalls calls
	next        int    // next slot of calls once it is full
	total       int
	settled     map[string]bool
	settleOrder []string
	now         func() time.Time
}

// NewServer starts a Server that accepts all valid payments. Close it when
// done.
func NewServer() *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("x402test: listen on 127.0.0.1: " + err.Error())
	}
	s := &Server{done: make(chan struct{}), settled: map[string]bool{}, now: time.Now}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}}
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// Close stops the Server, cutting any delayed answers short.
func (s *Server) Close() {
	s.once.Do(func() { close(s.done) })
	s.srv.Close()
}

// Client is an HTTP client for the Server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Facilitator is a client of the Server, with its token if one is required.
func (s *Server) Facilitator() x402.Facilitator {
	s.mu.Lock()
	defer s.mu.Unlock()
	return x402.Facilitator{URL: s.URL, Token: s.token, Client: s.srv.Client()}
}

// AcceptAll makes both endpoints accept every valid payment.
func (s *Server) AcceptAll() { s.set(Behavior{}, Behavior{}) }

// RejectAll makes both endpoints give a negative verdict with reason.
func (s *Server) RejectAll(reason string) {
	s.set(Behavior{Reject: reason}, Behavior{Reject: reason})
}

// FailAll makes both endpoints answer status, such as 500, with no verdict.
func (s *Server) FailAll(status int) { s.set(Behavior{Fail: status}, Behavior{Fail: status}) }

// SetVerify sets how /verify answers.
func (s *Server) SetVerify(b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verify = b
}

// SetSettle sets how /settle answers.
func (s *Server) SetSettle(b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle = b
}

func (s *Server) set(verify, settle Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verify, s.settle = verify, settle
}

// RequireToken makes the Server answer 401 to calls without this bearer
// token; "" requires none.
func (s *Server) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Calls returns the calls received, oldest first: all of them, or the last
// MaxCalls.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, 0, len(s.calls))
	out = append(out, s.calls[s.next:]...)
	return append(out, s.calls[:s.next]...)
}

// CallCount is the number of calls received, including forgotten ones.
func (s *Server) CallCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func (s *Server) activeRequests() int { return int(s.active.Load()) }

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if len(s.calls) < MaxCalls {
		s.calls = append(s.calls, c)
		return
	}
	s.calls[s.next] = c
	s.next = (s.next + 1) % MaxCalls
}

// ServeHTTP answers POST /verify and POST /settle, at the root of the
// server or below any prefix.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Add(-1)
	op := r.URL.Path
	switch {
	case strings.HasSuffix(op, "/verify"):
		op = "verify"
	case strings.HasSuffix(op, "/settle"):
		op = "settle"
	}
	call := Call{Op: op}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		call.Bearer = tok
	}
	status, body := s.answer(r, &call)
	call.Status = status
	s.record(call)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) answer(r *http.Request, call *Call) (int, any) {
	fail := func(status int, msg string) (int, any) {
		call.Reason = msg
		return status, errorBody{Error: msg}
	}
	if call.Op != "verify" && call.Op != "settle" {
		return fail(http.StatusNotFound, "no such endpoint")
	}
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, "use POST")
	}
	s.mu.Lock()
	b, token := s.verify, s.token
	if call.Op == "settle" {
		b = s.settle
	}
	s.mu.Unlock()

	if token != "" && call.Bearer != token {
		return fail(http.StatusUnauthorized, "missing or wrong bearer token")
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return fail(http.StatusBadRequest, "cannot read the body")
	}
	if err := json.Unmarshal(data, &call.Request); err != nil {
		return fail(http.StatusBadRequest, "body is not a facilitator request: "+err.Error())
	}
	if b.Delay > 0 {
		t := time.NewTimer(min(b.Delay, maxDelay))
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return fail(http.StatusServiceUnavailable, "caller went away")
		case <-s.done:
			return fail(http.StatusServiceUnavailable, "server closed")
		}
	}
	if b.Fail != 0 {
		return fail(b.Fail, "configured to fail")
	}

	req := call.Request
	payer := payerOf(req.PaymentPayload)
	reason := b.Reject
	if reason == "" {
		reason = s.check(req)
	}
	var nonce string
	if reason == "" && call.Op == "settle" {
		nonce = nonceOf(req.PaymentPayload)
		if !s.claim(nonce) {
			reason = "invalid_transaction_state" // already settled: a replay
		}
	}
	status := http.StatusOK
	if reason != "" {
		call.Reason = reason
		if b.RejectStatus != 0 {
			status = b.RejectStatus
		}
	}
	if call.Op == "verify" {
		return status, x402.VerifyResponse{IsValid: reason == "", InvalidReason: reason, Payer: payer}
	}
	if reason != "" {
		return status, x402.SettleResponse{ErrorReason: reason, Payer: payer, Network: req.PaymentRequirements.Network}
	}
	return status, x402.SettleResponse{
		Success:     true,
		Payer:       payer,
		Transaction: TxHash(req.PaymentRequirements.Network, nonce),
		Network:     req.PaymentRequirements.Network,
		Amount:      req.PaymentRequirements.Amount,
	}
}

// claim records nonce as settled, or reports false if it already was.
func (s *Server) claim(nonce string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	nonce = strings.ToLower(nonce)
	if s.settled[nonce] {
		return false
	}
	if len(s.settleOrder) >= maxSettled {
		delete(s.settled, s.settleOrder[0])
		s.settleOrder = s.settleOrder[1:]
	}
	s.settled[nonce] = true
	s.settleOrder = append(s.settleOrder, nonce)
	return true
}

// check returns why the request's payment is invalid, as an x402 error
// code, or "" if it is valid.
func (s *Server) check(req x402.FacilitatorRequest) string {
	p, want := req.PaymentPayload, req.PaymentRequirements
	if req.X402Version != x402.Version || p.X402Version != x402.Version {
		return "invalid_x402_version"
	}
	got := p.Accepted
	if want.Scheme == "" || want.Network == "" || want.Amount == "" || want.Asset == "" || want.PayTo == "" {
		return "invalid_payment_requirements"
	}
	if got.Scheme != want.Scheme || got.Network != want.Network || got.Amount != want.Amount ||
		!strings.EqualFold(got.Asset, want.Asset) || !strings.EqualFold(got.PayTo, want.PayTo) {
		return "invalid_payment_requirements"
	}
	if want.Scheme != "exact" {
		return "unsupported_scheme"
	}
	if !strings.HasPrefix(want.Network, "eip155:") {
		return "invalid_network"
	}
	var e ExactEVMPayload
	if err := json.Unmarshal(p.Payload, &e); err != nil {
		return "invalid_payload"
	}
	a := e.Authorization
	if a.From == "" || a.To == "" || a.Value == "" || a.ValidAfter == "" || a.ValidBefore == "" || a.Nonce == "" {
		return "invalid_payload"
	}
	if e.Signature != Signature(want.Network, want.Asset, a) {
		return "invalid_exact_evm_payload_signature"
	}
	if !strings.EqualFold(a.To, want.PayTo) {
		return "invalid_exact_evm_payload_recipient_mismatch"
	}
	if a.Value != want.Amount {
		return "invalid_exact_evm_payload_authorization_value_mismatch"
	}
	now := s.now().Unix()
	if after, err := strconv.ParseInt(a.ValidAfter, 10, 64); err != nil || after > now {
		return "invalid_exact_evm_payload_authorization_valid_after"
	}
	if before, err := strconv.ParseInt(a.ValidBefore, 10, 64); err != nil || before < now {
		return "invalid_exact_evm_payload_authorization_valid_before"
	}
	return ""
}

func payerOf(p x402.PaymentPayload) string {
	var e ExactEVMPayload
	if json.Unmarshal(p.Payload, &e) != nil {
		return ""
	}
	return e.Authorization.From
}

func nonceOf(p x402.PaymentPayload) string {
	var e ExactEVMPayload
	if json.Unmarshal(p.Payload, &e) != nil {
		return ""
	}
	return e.Authorization.Nonce
}
