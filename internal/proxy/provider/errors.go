package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Error is an error to show the client, rendered in its API's envelope by
// ClientError.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Type is the error type, such as invalid_request_error. Empty derives
	// it from Status; the Anthropic envelope only keeps Anthropic's types.
	Type string
	// Code is OpenAI's error code, or a Gemini status such as
	// RESOURCE_EXHAUSTED. Optional.
	Code string
	// Param is the request parameter at fault. Optional.
	Param string
	// Message says what went wrong. It never holds a provider key.
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.openAIType(), e.Message)
}

func invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: fmt.Sprintf(format, args...)}
}

// errBadUpstream reports an upstream answer that cannot be read.
func errBadUpstream(what string) *Error {
	return &Error{Status: http.StatusBadGateway, Message: "the upstream provider sent " + what}
}

var errTruncated = &Error{Status: http.StatusBadGateway, Message: "the upstream stream ended before the response was complete"}

// asError returns err as an *Error; any other error is an upstream failure.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusBadGateway, Message: "upstream request failed: " + err.Error()}
}

// ClientError renders err as a response body in api's error envelope:
// OpenAI's {"error":{"message","type","param","code"}} or Anthropic's
// {"type":"error","error":{"type","message"}}. Errors that are not *Error
// are reported as 502 upstream failures.
func ClientError(api API, err error) (status int, body []byte) {
	e := asError(err)
	return e.Status, e.envelope(api)
}

// ClientStreamError renders err as the terminal event of a stream in api's
// format: an OpenAI data event holding the error envelope, or Anthropic's
// "error" event.
func ClientStreamError(api API, err error) []byte {
	env := asError(err).envelope(api)
	var b []byte
	if api == AnthropicMessages {
		b = append(b, "event: error\n"...)
	}
	b = append(append(b, "data: "...), env...)
	return append(b, "\n\n"...)
}

func (e *Error) envelope(api API) []byte {
	b := make([]byte, 0, 96+len(e.Message))
	if api == AnthropicMessages {
		b = append(b, `{"type":"error","error":{"type":`...)
		b = appendString(b, e.anthropicType())
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
		return append(b, "}}"...)
	}
	b = append(b, `{"error":{"message":`...)
	b = appendString(b, e.Message)
	b = append(b, `,"type":`...)
	b = appendString(b, e.openAIType())
	b = append(b, `,"param":`...)
	b = appendNullable(b, e.Param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, e.Code)
	return append(b, "}}"...)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

func (e *Error) openAIType() string {
	if e.Type != "" {
		return e.Type
	}
	switch s := e.Status; {
	case s == 401:
		return "authentication_error"
	case s == 403:
		return "permission_error"
	case s == 404:
		return "not_found_error"
	case s == 429:
		return "rate_limit_error"
	case s >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

var anthropicTypes = map[string]bool{
	"invalid_request_error": true, "authentication_error": true, "billing_error": true,
	"permission_error": true, "not_found_error": true, "request_too_large": true,
	"rate_limit_error": true, "api_error": true, "timeout_error": true, "overloaded_error": true,
}

func (e *Error) anthropicType() string {
	if anthropicTypes[e.Type] {
		return e.Type
	}
	switch s := e.Status; {
	case s == 401:
		return "authentication_error"
	case s == 402:
		return "billing_error"
	case s == 403:
		return "permission_error"
	case s == 404:
		return "not_found_error"
	case s == 413:
		return "request_too_large"
	case s == 429:
		return "rate_limit_error"
	case s == 503 || s == 529:
		return "overloaded_error"
	case s == 504:
		return "timeout_error"
	case s >= 500:
		return "api_error"
	}
	return "invalid_request_error"
}

// upstreamError reads an error body in any provider's shape: OpenAI's,
// Anthropic's, Gemini's (also wrapped in an array), Ollama's
// {"error":"..."}, vLLM's and Mistral's {"object":"error","message":...},
// FastAPI's {"detail":...}, or plain text. The key is removed from the
// message, and a 401's message is replaced: it is about the gateway's
// credential, not the client's.
func upstreamError(status int, body []byte, key string) *Error {
	e := &Error{Status: status}
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		var arr []json.RawMessage
		if json.Unmarshal(b, &arr) == nil && len(arr) > 0 {
			b = arr[0]
		}
	}
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
		Type    json.RawMessage `json:"type"`
		Code    json.RawMessage `json:"code"`
		Param   json.RawMessage `json:"param"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(b, &v) == nil {
		switch {
		case len(v.Error) > 0 && v.Error[0] == '{':
			var in struct {
				Message json.RawMessage `json:"message"`
				Type    json.RawMessage `json:"type"`
				Code    json.RawMessage `json:"code"`
				Param   json.RawMessage `json:"param"`
				Status  string          `json:"status"` // Gemini
			}
			if json.Unmarshal(v.Error, &in) == nil {
				e.Message, e.Type, e.Code, e.Param = text(in.Message), text(in.Type), text(in.Code), text(in.Param)
				if in.Status != "" {
					e.Code = in.Status // Gemini's code repeats the HTTP status
				}
			}
		case len(v.Error) > 0 && v.Error[0] == '"':
			e.Message = text(v.Error)
		case len(v.Message) > 0:
			e.Message, e.Type, e.Code, e.Param = text(v.Message), text(v.Type), text(v.Code), text(v.Param)
		case len(v.Detail) > 0:
			e.Message = text(v.Detail)
		}
		if e.Type == "error" { // vLLM and Mistral's object marker, not a type
			e.Type = ""
		}
	} else if utf8.Valid(b) && len(b) > 0 {
		e.Message = string(b[:min(len(b), 200)])
	}
	if status == http.StatusUnauthorized {
		e.Message = "the upstream provider rejected the gateway's credentials"
		e.Type, e.Code, e.Param = "authentication_error", "", ""
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("the upstream provider answered HTTP %d", status)
	}
	if len(key) >= 4 {
		e.Message = strings.ReplaceAll(e.Message, key, "[redacted]")
	}
	if len(e.Message) > 2000 {
		e.Message = e.Message[:2000]
	}
	return e
}

// text returns a JSON value as text: a string's contents, "" for null, and
// any other value's JSON.
func text(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}
