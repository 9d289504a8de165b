package provider

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
)

// Provider types, as in the ModelProvider API.
const (
	TypeOpenAI           = "OpenAI"
	TypeAnthropic        = "Anthropic"
	TypeGemini           = "Gemini"
	TypeMistral          = "Mistral"
	TypeAzureOpenAI      = "AzureOpenAI"
	TypeOllama           = "Ollama"
	TypeOpenAICompatible = "OpenAICompatible"
)

// wire is the wire format an upstream speaks.
type wire int

const (
	wireOpenAI wire = iota + 1
	wireAnthropic
	wireGemini
)

func wireOf(typ string) (wire, bool) {
	switch typ {
	case TypeOpenAI, TypeMistral, TypeAzureOpenAI, TypeOllama, TypeOpenAICompatible:
		return wireOpenAI, true
	case TypeAnthropic:
		return wireAnthropic, true
	case TypeGemini:
		return wireGemini, true
	}
	return 0, false
}

// DefaultBaseURL returns the public API root of a provider type, and ""
// for the types that have none (AzureOpenAI, OpenAICompatible).
func DefaultBaseURL(typ string) string {
	switch typ {
	case TypeOpenAI:
		return "https://api.openai.com/v1"
	case TypeAnthropic:
		return "https://api.anthropic.com/v1"
	case TypeGemini:
		return "https://generativelanguage.googleapis.com/v1beta"
	case TypeMistral:
		return "https://api.mistral.ai/v1"
	case TypeOllama:
		return "http://localhost:11434/v1"
	}
	return ""
}

// AnthropicVersion is the anthropic-version header sent to Anthropic.
const AnthropicVersion = "2023-06-01"

// op is an upstream operation. The first three equal their client API so
// that pass-through needs no mapping.
type op int

const (
	opChat        = op(OpenAIChat)
	opCompletions = op(OpenAICompletions)
	opEmbeddings  = op(OpenAIEmbeddings)
	opMessages    = op(AnthropicMessages)
	opGenerate    = op(AnthropicMessages + 1) // Gemini generateContent
)

var opPaths = map[op]string{
	opChat:        "/chat/completions",
	opCompletions: "/completions",
	opEmbeddings:  "/embeddings",
	opMessages:    "/messages",
}

// upstreamURL returns the URL of an operation. The key never goes in it.
func upstreamURL(u Upstream, o op, model string, stream bool) string {
	base := u.BaseURL
	if base == "" {
		base = DefaultBaseURL(u.Type)
	}
	base = strings.TrimRight(base, "/")
	switch {
	case o == opGenerate:
		m := url.PathEscape(strings.TrimPrefix(model, "models/"))
		if stream {
			return base + "/models/" + m + ":streamGenerateContent?alt=sse"
		}
		return base + "/models/" + m + ":generateContent"
	case u.Type == TypeAzureOpenAI && u.AzureAPIVersion != "":
		return base + "/openai/deployments/" + url.PathEscape(model) + opPaths[o] +
			"?api-version=" + url.QueryEscape(u.AzureAPIVersion)
	}
	return base + opPaths[o]
}

func newHTTPRequest(ctx context.Context, u Upstream, o op, model string, stream bool, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, upstreamURL(u, o, model, stream), bytes.NewReader(body))
	if err != nil {
		// The URL holds no secret, but say only what is wrong.
		return nil, &Error{Status: http.StatusInternalServerError, Type: "server_error",
			Message: "invalid upstream baseURL for provider type " + u.Type}
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	if stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	if u.Type == TypeAnthropic {
		h.Set("anthropic-version", AnthropicVersion)
	}
	if u.APIKey == "" {
		return req, nil
	}
	switch u.Type {
	case TypeAnthropic:
		h.Set("x-api-key", u.APIKey)
	case TypeGemini:
		h.Set("x-goog-api-key", u.APIKey)
	case TypeAzureOpenAI:
		h.Set("api-key", u.APIKey)
	default:
		h.Set("Authorization", "Bearer "+u.APIKey)
	}
	return req, nil
}
