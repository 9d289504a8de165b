// Package fakeprovider is a fake LLM provider for tests, benchmarks and the
// demo. One http.Handler speaks the wire formats of OpenAI (and Azure
// OpenAI's deployment URLs), Anthropic and Gemini, streaming included, with
// deterministic replies: the reply is a fixed list of words, each word is
// one output token, and the prompt's token count is its number of
// whitespace-separated words. It checks each provider's credential header
// and answers each provider's real error shapes, and it can be told to fail
// with a status, to be slow, or to break a stream midway.
package fakeprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Default credentials the fake accepts.
const (
	OpenAIKey    = "sk-fake-openai-0123456789"
	AzureKey     = "fake-azure-0123456789"
	AnthropicKey = "sk-ant-fake-0123456789"
	GeminiKey    = "fake-gemini-0123456789"
)

// Created is the "created" time of every OpenAI response, fixed so that
// responses are deterministic.
const Created = 1700000000

// Options configure a fake. The zero value is ready to use.
type Options struct {
	// Keys the fake accepts; empty means the package defaults.
	OpenAIKey, AzureKey, AnthropicKey, GeminiKey string
	// NoAuth accepts requests without checking credentials, as Ollama does.
	NoAuth bool
	// ReplyWords is the length of every reply in words (output tokens);
	// zero means 8. A smaller max_tokens cuts the reply, which then ends
	// for length.
	ReplyWords int
	// CachedTokens of each prompt are reported as read from the prompt
	// cache (at most the whole prompt).
	CachedTokens int64
	// EmbeddingDims is the length of embedding vectors; zero means 8.
	EmbeddingDims int
	// Models lists the models of GET /v1/models; empty means a few.
	Models []string
	// MaxRecorded bounds the requests kept for Requests; zero means 100.
	MaxRecorded int
	// StreamEndDelay holds an OpenAI stream open this long after [DONE],
	// as a server whose last chunk travels apart from the data does.
	StreamEndDelay time.Duration
	// StreamEndHold, when set, holds an OpenAI stream open after [DONE]
	// until it yields a value (or the request ends): a test can release the
	// end once its client has seen [DONE].
	StreamEndHold chan struct{}
}

// Fault makes the fake misbehave. The zero value behaves.
type Fault struct {
	// Status answers every request with this status and the provider's
	// error body for it, for example 429 or 500.
	Status int
	// Latency delays every response.
	Latency time.Duration
	// FailAfter breaks streams after this many events.
	FailAfter int
	// Abort breaks streams by cutting the connection, which the client
	// reads as an error; otherwise the stream just ends early.
	Abort bool
}

// Request is a request the fake received.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// Server is a fake provider. Use it as an http.Handler, or Start one on
// a loopback port.
type Server struct {
	opts Options
	mux  *http.ServeMux
	hs   *http.Server
	ln   net.Listener

	mu    sync.Mutex
	fault Fault
	reqs  []Request
	seq   int
	conns int
}

// New returns a fake provider handler.
func New(o Options) *Server {
	if o.OpenAIKey == "" {
		o.OpenAIKey = OpenAIKey
	}
	if o.AzureKey == "" {
		o.AzureKey = AzureKey
	}
	if o.AnthropicKey == "" {
		o.AnthropicKey = AnthropicKey
	}
	if o.GeminiKey == "" {
		o.GeminiKey = GeminiKey
	}
	if o.ReplyWords <= 0 {
		o.ReplyWords = 8
	}
	if o.EmbeddingDims <= 0 {
		o.EmbeddingDims = 8
	}
	if len(o.Models) == 0 {
		o.Models = []string{"gpt-4o-mini", "text-embedding-3-small", "claude-sonnet-4-5", "gemini-2.5-flash"}
	}
	if o.MaxRecorded <= 0 {
		o.MaxRecorded = 100
	}
	s := &Server{opts: o, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /v1/chat/completions", s.openAI(s.chat))
	s.mux.HandleFunc("POST /v1/completions", s.openAI(s.completions))
	s.mux.HandleFunc("POST /v1/embeddings", s.openAI(s.embeddings))
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("POST /openai/deployments/{deployment}/{op...}", s.azure)
	s.mux.HandleFunc("POST /v1/messages", s.anthropic)
	s.mux.HandleFunc("POST /v1beta/models/{call}", s.gemini)
	return s
}

// Start serves a new fake on a free port of 127.0.0.1.
func Start(o Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := New(o)
	s.ln = ln
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}}
	go func() { _ = s.hs.Serve(ln) }()
	return s, nil
}

// URL is the root of a started fake, such as http://127.0.0.1:41234. The
// base URLs of the providers are URL+"/v1" (OpenAI, Anthropic), URL
// (Azure OpenAI) and URL+"/v1beta" (Gemini).
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops a started fake and its open connections.
func (s *Server) Close() error {
	if s.hs == nil {
		return nil
	}
	return s.hs.Close()
}

// Connections counts the connections a started fake accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// SetFault changes how the fake misbehaves from the next request on.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Requests returns the requests received, oldest first, at most
// Options.MaxRecorded of the latest.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// ServeHTTP records the request, applies the fault's latency, and serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	if n := len(s.reqs) - s.opts.MaxRecorded; n > 0 {
		s.reqs = append(s.reqs[:0:0], s.reqs[n:]...)
	}
	f := s.fault
	s.mu.Unlock()
	if f.Latency > 0 && !sleep(r.Context(), f.Latency) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) currentFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

func (s *Server) nextID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// words is the vocabulary of replies.
var words = strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")

// Word returns the i-th word of every reply.
func Word(i int) string { return words[i%len(words)] }

// Reply returns the text of an n-word reply: the words joined by spaces.
func Reply(n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(Word(i))
	}
	return sb.String()
}

// CountTokens is the fake's tokenizer: one token per whitespace-separated word.
func CountTokens(s string) int64 { return int64(len(strings.Fields(s))) }

// reply returns how many words to answer and whether max cut the reply.
func (s *Server) reply(max int64) (n int, cut bool) {
	n = s.opts.ReplyWords
	if max > 0 && max < int64(n) {
		return int(max), true
	}
	return n, false
}

func (s *Server) cached(prompt int64) int64 { return min(s.opts.CachedTokens, prompt) }

// writeJSON writes v with a status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeStrict decodes body into a map of its top-level members and
// returns the first one not in known.
func decodeStrict(body []byte, known map[string]bool) (map[string]json.RawMessage, string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "", err
	}
	if m == nil {
		return nil, "", errors.New("body is not a JSON object")
	}
	for k := range m {
		if !known[k] {
			return m, k, nil
		}
	}
	return m, "", nil
}

func set(names string) map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Fields(names) {
		m[n] = true
	}
	return m
}

// stream writes server-sent events and injects the fault's stream failure.
type stream struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	n         int
	failAfter int
	abort     bool
	eol       string
}

func newStream(w http.ResponseWriter, f Fault, eol string) *stream {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, rc: http.NewResponseController(w), failAfter: f.FailAfter, abort: f.Abort, eol: eol}
}

// event writes one event and reports whether the stream goes on.
func (s *stream) event(name string, v any) bool {
	if s.failAfter > 0 && s.n >= s.failAfter {
		if s.abort {
			panic(http.ErrAbortHandler) // cuts the connection mid-body
		}
		return false
	}
	s.n++
	var b []byte
	if name != "" {
		b = append(b, "event: "+name+s.eol...)
	}
	data, ok := v.([]byte)
	if !ok {
		data, _ = json.Marshal(v)
	}
	b = append(append(append(b, "data: "...), data...), s.eol+s.eol...)
	if _, err := s.w.Write(b); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}
