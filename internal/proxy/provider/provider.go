// Package provider turns a client's LLM API request into a request for an
// upstream provider, and the provider's answer back into the client's API.
//
// Clients speak OpenAI chat completions, completions, embeddings, or
// Anthropic Messages. Upstreams speak one of three wire formats: OpenAI's
// (OpenAI, Azure OpenAI, Mistral, Ollama, any OpenAI-compatible server),
// Anthropic's, or Gemini's. When both sides speak the same API the body and
// the stream pass through unchanged except for the model name (and, for
// OpenAI streams, a request for usage); otherwise requests, responses,
// errors and stream events are translated. Either way the Translator reports
// the token usage that the proxy meters.
package provider

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

// API is the API a client speaks.
type API int

// Client APIs.
const (
	OpenAIChat        API = iota + 1 // POST /v1/chat/completions
	OpenAICompletions                // POST /v1/completions
	OpenAIEmbeddings                 // POST /v1/embeddings
	AnthropicMessages                // POST /v1/messages
)

// String returns the API's name.
func (a API) String() string {
	switch a {
	case OpenAIChat:
		return "OpenAI chat completions"
	case OpenAICompletions:
		return "OpenAI completions"
	case OpenAIEmbeddings:
		return "OpenAI embeddings"
	case AnthropicMessages:
		return "Anthropic Messages"
	}
	return fmt.Sprintf("API(%d)", int(a))
}

// APIForPath returns the API served at a client request path, such as
// /v1/chat/completions, and false for a path that is none of them.
func APIForPath(path string) (API, bool) {
	switch path {
	case "/v1/chat/completions", "/chat/completions":
		return OpenAIChat, true
	case "/v1/completions", "/completions":
		return OpenAICompletions, true
	case "/v1/embeddings", "/embeddings":
		return OpenAIEmbeddings, true
	case "/v1/messages", "/messages":
		return AnthropicMessages, true
	}
	return 0, false
}

// Upstream is a provider endpoint, as a ModelProvider declares it.
type Upstream struct {
	// Type is a ModelProvider type: OpenAI, Anthropic, Gemini, Mistral,
	// AzureOpenAI, Ollama or OpenAICompatible.
	Type string
	// BaseURL is the API root; empty means the type's default.
	BaseURL string
	// APIKey authenticates to the provider; empty sends no credential.
	// It never appears in logs or errors.
	APIKey string
	// AzureAPIVersion is the api-version of Azure OpenAI's deployment URLs.
	// Empty means the version-less v1 API, with baseURL ending in /openai/v1.
	AzureAPIVersion string
}

// Call is one client request to send upstream.
type Call struct {
	API API
	// Body is the client's JSON request body.
	Body []byte
	// Model is the upstream model, after any rewrite by the route.
	Model string
	// Stream says whether the client asked for a stream (see ParseRequest).
	Stream bool
}

// Usage is the token count of one call. InputTokens counts every prompt
// token, CachedInputTokens included (the subset read from the provider's
// prompt cache); OutputTokens includes any reasoning tokens.
type Usage struct {
	InputTokens       int64
	CachedInputTokens int64
	OutputTokens      int64
}

// Translator turns the upstream's answer to one Call into the client's API.
type Translator interface {
	// Response translates a whole response body, success or error. Error
	// bodies become the client API's error envelope with the same status;
	// err is set only when a success body cannot be read, and then the
	// caller answers ClientError(err).
	Response(status int, body []byte) (clientBody []byte, usage Usage, err error)
	// Stream copies a 2xx event-stream body to dst in the client's API,
	// flushing each event. It returns the usage seen; when the upstream
	// stream fails or ends early it writes the client API's terminal error
	// event and returns an error, and when dst fails it returns dst's error.
	Stream(dst *sse.Writer, src io.Reader) (Usage, error)
}

// NewRequest builds the upstream HTTP request for c and the Translator for
// its answer. Its errors are *Error values to show the client (see
// ClientError): 400 for a request the upstream cannot serve.
func NewRequest(ctx context.Context, u Upstream, c Call) (*http.Request, Translator, error) {
	w, ok := wireOf(u.Type)
	if !ok {
		return nil, nil, &Error{Status: http.StatusInternalServerError, Type: "server_error",
			Message: fmt.Sprintf("unknown provider type %q", u.Type)}
	}
	if c.Model == "" {
		return nil, nil, invalid("model is required")
	}
	var (
		body []byte
		t    Translator
		o    op
		err  error
	)
	switch {
	case w == wireOpenAI && c.API >= OpenAIChat && c.API <= OpenAIEmbeddings:
		o = op(c.API)
		body, t, err = openAIPassRequest(u, c)
	case w == wireAnthropic && c.API == AnthropicMessages:
		o = opMessages
		body, t, err = anthropicPassRequest(u, c)
	case w == wireAnthropic && c.API == OpenAIChat:
		o = opMessages
		body, t, err = chatToAnthropicRequest(u, c)
	case w == wireGemini && c.API == OpenAIChat:
		o = opGenerate
		body, t, err = chatToGeminiRequest(u, c)
	case w == wireOpenAI && c.API == AnthropicMessages:
		o = opChat
		body, t, err = messagesToOpenAIRequest(u, c)
	default:
		return nil, nil, &Error{Status: http.StatusBadRequest, Type: "invalid_request_error",
			Message: fmt.Sprintf("the %s API is not available for model %q: its provider type %s does not support it", c.API, c.Model, u.Type)}
	}
	if err != nil {
		return nil, nil, err
	}
	req, err := newHTTPRequest(ctx, u, o, c.Model, c.Stream, body)
	if err != nil {
		return nil, nil, err
	}
	return req, t, nil
}
