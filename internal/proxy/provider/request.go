package provider

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Request is what the proxy reads from a client body before it picks an
// upstream and prices the call.
type Request struct {
	// Model is the model the client asked for.
	Model string
	// Stream reports whether the client asked for a stream.
	Stream bool
	// MaxTokens is the client's output cap (max_tokens, or OpenAI's
	// max_completion_tokens when larger); zero when it set none.
	MaxTokens int64
	// PromptTokens is a rough estimate of the prompt's size in tokens, for
	// reserving funds before the provider reports the real count.
	PromptTokens int64
}

// Estimate constants: about four bytes of text a token, a few tokens of
// framing per message, and a flat count per image (providers charge a few
// hundred to a couple of thousand tokens depending on size).
const (
	bytesPerToken     = 4
	tokensPerMessage  = 4
	tokensPerImage    = 1000
	tokensPerDocument = 2000
)

type parsedRequest struct {
	Model               *string         `json:"model"`
	Stream              bool            `json:"stream"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Messages            []rawMessage    `json:"messages"`
	System              json.RawMessage `json:"system"`
	Prompt              json.RawMessage `json:"prompt"`
	Input               json.RawMessage `json:"input"`
}

type rawMessage struct {
	Content json.RawMessage `json:"content"`
}

// ParseRequest reads the model, the stream flag, the output cap and a
// prompt size estimate from a client body of the given API. Its errors are
// 400 *Error values.
func ParseRequest(api API, body []byte) (Request, error) {
	if !isObject(body) {
		return Request{}, errNotObject
	}
	p, ok := parsedRequest{}, json.Valid(body)
	if ok {
		p, ok = parseFast(body)
	}
	if !ok {
		if err := json.Unmarshal(body, &p); err != nil {
			return Request{}, invalid("the request body is not a valid %s request: %s", api, jsonErrText(err))
		}
	}
	if p.Model == nil || *p.Model == "" {
		return Request{}, &Error{Status: 400, Type: "invalid_request_error", Param: "model", Message: "model is required"}
	}
	if (p.MaxTokens != nil && *p.MaxTokens < 0) || (p.MaxCompletionTokens != nil && *p.MaxCompletionTokens < 0) {
		return Request{}, &Error{Status: 400, Type: "invalid_request_error", Param: "max_tokens", Message: "max_tokens must not be negative"}
	}
	r := Request{Model: *p.Model, Stream: p.Stream && api != OpenAIEmbeddings}
	if p.MaxTokens != nil {
		r.MaxTokens = *p.MaxTokens
	}
	if p.MaxCompletionTokens != nil && *p.MaxCompletionTokens > r.MaxTokens {
		r.MaxTokens = *p.MaxCompletionTokens
	}
	var e estimate
	for _, m := range p.Messages {
		e.tokens += tokensPerMessage
		e.content(m.Content)
	}
	e.content(p.System)
	e.input(p.Prompt)
	e.input(p.Input)
	r.PromptTokens = e.total()
	return r, nil
}

var errNotObject = invalid("the request body must be a JSON object")

// parseFast reads a valid JSON object as json.Unmarshal reads it into a
// parsedRequest, without reflection or copies: every request is parsed
// before anything else happens. ok is false whenever the two could differ
// (an escaped or differently cased key, a string with escapes or non-ASCII
// bytes, a number that is not an int64, a value of another type), and the
// caller lets encoding/json decide, errors included.
func parseFast(body []byte) (p parsedRequest, ok bool) {
	ok = true
	members(body, func(m member) bool {
		name, plain := plainString(m.key)
		switch {
		case !plain:
			ok = false
		case name == "model":
			if string(m.val) == "null" {
				p.Model = nil
			} else if s, plain := plainString(m.val); plain {
				p.Model = &s
			} else {
				ok = false
			}
		case name == "stream":
			switch string(m.val) {
			case "true":
				p.Stream = true
			case "false":
				p.Stream = false
			case "null": // leaves a bool as it was
			default:
				ok = false
			}
		case name == "max_tokens":
			p.MaxTokens, ok = intOrNull(m.val)
		case name == "max_completion_tokens":
			p.MaxCompletionTokens, ok = intOrNull(m.val)
		case name == "messages":
			p.Messages, ok = messages(m.val)
		case name == "system":
			p.System = m.val
		case name == "prompt":
			p.Prompt = m.val
		case name == "input":
			p.Input = m.val
		default:
			// encoding/json matches field names regardless of case.
			for _, f := range []string{"model", "stream", "max_tokens", "max_completion_tokens", "messages", "system", "prompt", "input"} {
				if strings.EqualFold(name, f) {
					ok = false
				}
			}
		}
		return ok
	})
	return p, ok
}

// plainString returns a raw JSON string's text when it is printable ASCII
// without escapes, which it then reads as is.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return "", false
		}
	}
	return string(raw[1 : len(raw)-1]), true
}

// intOrNull reads an int64 member as encoding/json does into *int64.
func intOrNull(raw []byte) (*int64, bool) {
	if string(raw) == "null" {
		return nil, true
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	return &v, err == nil
}

// messages reads the content of each message.
func messages(raw []byte) ([]rawMessage, bool) {
	switch {
	case string(raw) == "null":
		return nil, true
	case raw[0] != '[':
		return nil, false
	}
	out, ok := []rawMessage{}, true
	for i := skipSpace(raw, 1); ok && i < len(raw) && raw[i] != ']'; {
		end := skipValue(raw, i)
		var msg rawMessage
		switch v := raw[i:end]; {
		case string(v) == "null":
		case v[0] != '{':
			ok = false
		default:
			members(v, func(m member) bool {
				name, plain := plainString(m.key)
				switch {
				case name == "content":
					msg.Content = m.val
				case !plain || strings.EqualFold(name, "content"):
					ok = false
				}
				return ok
			})
		}
		out = append(out, msg)
		i = skipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return out, ok
}

// isObject reports whether a JSON text starts as an object.
func isObject(body []byte) bool {
	i := skipSpace(body, 0)
	return i < len(body) && body[i] == '{'
}

func jsonErrText(err error) string {
	// Drop Go type names, which mean nothing to an API client.
	s := err.Error()
	s = strings.TrimPrefix(s, "json: ")
	if i := strings.Index(s, " into Go "); i >= 0 {
		s = s[:i]
	}
	return s
}

// estimate accumulates a prompt size.
type estimate struct {
	bytes, tokens int64
}

func (e *estimate) total() int64 {
	return e.tokens + (e.bytes+bytesPerToken-1)/bytesPerToken
}

// content counts a message content: a string, or an array of parts in the
// OpenAI or Anthropic shape.
func (e *estimate) content(raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return
	}
	switch raw[0] {
	case '"':
		// The string as written: escapes count a few bytes more than they
		// decode to, which errs towards holding more, and saves decoding.
		e.bytes += int64(len(raw) - 2)
	case '[':
		var parts []struct {
			Type    string          `json:"type"`
			Text    string          `json:"text"`
			Content json.RawMessage `json:"content"` // Anthropic tool_result
			Input   json.RawMessage `json:"input"`   // Anthropic tool_use
		}
		if json.Unmarshal(raw, &parts) != nil {
			e.bytes += int64(len(raw))
			return
		}
		for _, p := range parts {
			switch p.Type {
			case "image", "image_url":
				e.tokens += tokensPerImage
			case "document", "file", "input_audio":
				e.tokens += tokensPerDocument
			default:
				e.bytes += int64(len(p.Text)) + int64(len(p.Input))
				e.content(p.Content)
			}
		}
	default:
		e.bytes += int64(len(raw))
	}
}

// input counts a completions prompt or embeddings input: a string, an
// array of strings, or token arrays, which count one token per element.
func (e *estimate) input(raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		e.content(raw)
		return
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		e.bytes += int64(len(raw))
		return
	}
	for _, it := range items {
		switch {
		case len(it) > 0 && it[0] == '"':
			e.content(it)
		case len(it) > 0 && it[0] == '[':
			e.tokens += int64(bytes.Count(it, []byte(",")) + 1)
		default:
			e.tokens++ // one token id
		}
	}
}
