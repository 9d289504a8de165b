package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// chatRequest is the part of an OpenAI chat request that translation reads.
// Fields that have no equivalent upstream are kept raw so that a request
// using them is refused rather than silently changed.
type chatRequest struct {
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Stop                json.RawMessage `json:"stop"`
	N                   *int64          `json:"n"`
	User                string          `json:"user"`
	Seed                *int64          `json:"seed"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Modalities []string `json:"modalities"`

	Tools            json.RawMessage `json:"tools"`
	Functions        json.RawMessage `json:"functions"`
	ToolChoice       json.RawMessage `json:"tool_choice"`
	FunctionCall     json.RawMessage `json:"function_call"`
	LogitBias        json.RawMessage `json:"logit_bias"`
	Logprobs         json.RawMessage `json:"logprobs"`
	TopLogprobs      json.RawMessage `json:"top_logprobs"`
	Audio            json.RawMessage `json:"audio"`
	Prediction       json.RawMessage `json:"prediction"`
	WebSearchOptions json.RawMessage `json:"web_search_options"`
}

type chatMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"`
	ToolCalls    json.RawMessage `json:"tool_calls"`
	FunctionCall json.RawMessage `json:"function_call"`
}

type chatPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

// chatInput is an OpenAI chat request reduced to what Anthropic and Gemini
// can express.
type chatInput struct {
	system       []string
	turns        []chatTurn
	maxTokens    int64 // 0 when unset
	temperature  *float64
	topP         *float64
	stop         []string
	user         string
	seed         *int64
	presence     *float64
	frequency    *float64
	jsonMode     bool
	includeUsage bool
}

// chatTurn is a user or assistant message; parts are text or image parts.
type chatTurn struct {
	assistant bool
	parts     []chatPart
}

// chatFeatures says which optional OpenAI features a target can express.
type chatFeatures struct {
	target    string // the upstream API's name, for error messages
	penalties bool
	jsonMode  bool
	remoteImg bool // images by http(s) URL
}

func parseChat(body []byte, f chatFeatures) (*chatInput, error) {
	var r chatRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, invalid("the request body is not a valid chat completions request: %s", jsonErrText(err))
	}
	unsupported := func(param string) error {
		return &Error{Status: 400, Type: "invalid_request_error", Param: param,
			Message: "the " + param + " parameter is not supported for this model: its provider speaks the " + f.target + " API"}
	}
	for _, p := range []struct {
		name string
		raw  json.RawMessage
	}{
		{"tools", r.Tools}, {"functions", r.Functions}, {"tool_choice", r.ToolChoice},
		{"function_call", r.FunctionCall}, {"logit_bias", r.LogitBias}, {"logprobs", r.Logprobs},
		{"top_logprobs", r.TopLogprobs}, {"audio", r.Audio}, {"prediction", r.Prediction},
		{"web_search_options", r.WebSearchOptions},
	} {
		if isSet(p.raw) {
			return nil, unsupported(p.name)
		}
	}
	if r.N != nil && *r.N > 1 {
		return nil, unsupported("n")
	}
	if !f.penalties && ((r.PresencePenalty != nil && *r.PresencePenalty != 0) || (r.FrequencyPenalty != nil && *r.FrequencyPenalty != 0)) {
		return nil, unsupported("presence_penalty")
	}
	if rf := r.ResponseFormat; rf != nil && rf.Type != "" && rf.Type != "text" && !(rf.Type == "json_object" && f.jsonMode) {
		return nil, unsupported("response_format")
	}
	for _, m := range r.Modalities {
		if m != "text" {
			return nil, unsupported("modalities")
		}
	}
	in := &chatInput{
		temperature: r.Temperature, topP: r.TopP, user: r.User, seed: r.Seed,
		presence: r.PresencePenalty, frequency: r.FrequencyPenalty,
		jsonMode:     r.ResponseFormat != nil && r.ResponseFormat.Type == "json_object",
		includeUsage: r.StreamOptions != nil && r.StreamOptions.IncludeUsage,
	}
	if r.MaxTokens != nil {
		in.maxTokens = *r.MaxTokens
	}
	if r.MaxCompletionTokens != nil {
		in.maxTokens = *r.MaxCompletionTokens
	}
	if in.maxTokens < 0 {
		return nil, invalid("max_tokens must not be negative")
	}
	stop, err := stopList(r.Stop)
	if err != nil {
		return nil, err
	}
	in.stop = stop
	if len(r.Messages) == 0 {
		return nil, &Error{Status: 400, Type: "invalid_request_error", Param: "messages", Message: "messages must not be empty"}
	}
	for i, m := range r.Messages {
		if isSet(m.ToolCalls) || isSet(m.FunctionCall) {
			return nil, unsupported("tool_calls")
		}
		parts, err := chatParts(m.Content, i)
		if err != nil {
			return nil, err
		}
		switch m.Role {
		case "system", "developer":
			var sb strings.Builder
			for _, p := range parts {
				if p.Type != "text" {
					return nil, invalid("messages[%d]: a %s message may only hold text", i, m.Role)
				}
				sb.WriteString(p.Text)
			}
			in.system = append(in.system, sb.String())
		case "user", "assistant":
			for _, p := range parts {
				if p.Type == "image_url" && !f.remoteImg && !strings.HasPrefix(p.ImageURL.URL, "data:") {
					return nil, invalid("messages[%d]: images must be data: URLs for this model: its provider speaks the %s API", i, f.target)
				}
			}
			in.turns = append(in.turns, chatTurn{assistant: m.Role == "assistant", parts: parts})
		case "tool", "function":
			return nil, &Error{Status: 400, Type: "invalid_request_error", Param: "messages",
				Message: fmt.Sprintf("messages[%d]: %s messages are not supported for this model: its provider speaks the %s API", i, m.Role, f.target)}
		default:
			return nil, invalid("messages[%d]: unknown role %q", i, m.Role)
		}
	}
	return in, nil
}

// chatParts reads a message content: a string, null, or an array of parts.
// Refusals count as text; parts other than text and images are refused.
func chatParts(raw json.RawMessage, i int) ([]chatPart, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalid("messages[%d].content: %s", i, jsonErrText(err))
		}
		if s == "" {
			return nil, nil
		}
		return []chatPart{{Type: "text", Text: s}}, nil
	}
	var parts []chatPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, invalid("messages[%d].content must be a string or an array of parts", i)
	}
	out := parts[:0]
	for _, p := range parts {
		switch p.Type {
		case "text":
		case "refusal":
			p.Type, p.Text = "text", p.Refusal
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, invalid("messages[%d]: image_url part without a url", i)
			}
		default:
			return nil, invalid("messages[%d]: content parts of type %q are not supported for this model", i, p.Type)
		}
		if p.Type == "text" && p.Text == "" {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// stopList reads OpenAI's stop: a string or an array of strings.
func stopList(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, &Error{Status: 400, Type: "invalid_request_error", Param: "stop", Message: "stop must be a string or an array of strings"}
	}
	return many, nil
}

// isSet reports whether a raw parameter asks for anything: null, false,
// zero, empty arrays and objects, and "none" or "auto" choices do not.
func isSet(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "false", "0", "[]", "{}", `"none"`, `"auto"`:
		return false
	}
	return true
}

// dataURL splits a data: URL into its media type and base64 data.
func dataURL(u string) (mediaType, data string, ok bool) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", "", false
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", false
	}
	mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
	if !isBase64 || mediaType == "" {
		return "", "", false
	}
	return mediaType, data, true
}
