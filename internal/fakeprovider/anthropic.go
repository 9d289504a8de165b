package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// The Anthropic Messages wire format.

var anthropicFields = set(`model messages max_tokens system metadata stop_sequences stream temperature
	top_k top_p tools tool_choice thinking service_tier container mcp_servers context_management`)

func anthropicError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("request-id", "req_fake")
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}, "request_id": "req_fake"})
}

func anthropicFault(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		anthropicError(w, status, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
	case 529:
		anthropicError(w, status, "overloaded_error", "Overloaded")
	default:
		anthropicError(w, status, "api_error", "Internal server error")
	}
}

// anthropicText counts the words of a system prompt or message content: a
// string or an array of blocks.
func anthropicText(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 {
		return 0, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return CountTokens(s), s != ""
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &blocks) != nil || len(blocks) == 0 {
		return 0, false
	}
	var n int64
	for _, b := range blocks {
		if b.Type == "text" && b.Text == "" {
			return 0, false // Anthropic refuses empty text blocks
		}
		n += CountTokens(b.Text)
	}
	return n, true
}

func (s *Server) anthropic(w http.ResponseWriter, r *http.Request) {
	if !s.opts.NoAuth {
		switch key := r.Header.Get("x-api-key"); {
		case key == "":
			anthropicError(w, 401, "authentication_error", "x-api-key header is required")
			return
		case key != s.opts.AnthropicKey:
			anthropicError(w, 401, "authentication_error", "invalid x-api-key")
			return
		}
	}
	if r.Header.Get("anthropic-version") == "" {
		anthropicError(w, 400, "invalid_request_error", "anthropic-version: header is required")
		return
	}
	if f := s.currentFault(); f.Status != 0 {
		anthropicFault(w, f.Status)
		return
	}
	body, _ := readBody(r)
	fields, unknown, err := decodeStrict(body, anthropicFields)
	switch {
	case err != nil:
		anthropicError(w, 400, "invalid_request_error", "There was an issue with the request body: invalid JSON")
		return
	case unknown != "":
		anthropicError(w, 400, "invalid_request_error", unknown+": Extra inputs are not permitted")
		return
	}
	var req struct {
		Model       string   `json:"model"`
		MaxTokens   *int64   `json:"max_tokens"`
		Stream      bool     `json:"stream"`
		Temperature *float64 `json:"temperature"`
		Messages    []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		anthropicError(w, 400, "invalid_request_error", "There was an issue with the request body: "+err.Error())
		return
	}
	prompt, ok := anthropicText(fields["system"])
	switch {
	case req.Model == "":
		anthropicError(w, 400, "invalid_request_error", "model: Field required")
		return
	case req.MaxTokens == nil:
		anthropicError(w, 400, "invalid_request_error", "max_tokens: Field required")
		return
	case len(req.Messages) == 0:
		anthropicError(w, 400, "invalid_request_error", "messages: at least one message is required")
		return
	case req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 1):
		anthropicError(w, 400, "invalid_request_error", "temperature: Input should be less than or equal to 1")
		return
	case !ok:
		anthropicError(w, 400, "invalid_request_error", "system: text content blocks must be non-empty")
		return
	}
	for i, m := range req.Messages {
		n, ok := anthropicText(m.Content)
		if !ok || (m.Role != "user" && m.Role != "assistant") {
			anthropicError(w, 400, "invalid_request_error", fmt.Sprintf("messages.%d: all messages must have non-empty content and a role of user or assistant", i))
			return
		}
		prompt += n
	}
	n, cut := s.reply(*req.MaxTokens)
	stop := "end_turn"
	if cut {
		stop = "max_tokens"
	}
	cached := s.cached(prompt)
	id := fmt.Sprintf("msg_fake%d", s.nextID())
	usage := map[string]any{"input_tokens": prompt - cached, "cache_creation_input_tokens": 0,
		"cache_read_input_tokens": cached, "output_tokens": n, "service_tier": "standard"}
	if !req.Stream {
		w.Header().Set("request-id", "req_fake")
		writeJSON(w, 200, map[string]any{"id": id, "type": "message", "role": "assistant", "model": req.Model,
			"content":     []any{map[string]any{"type": "text", "text": Reply(n)}},
			"stop_reason": stop, "stop_sequence": nil, "usage": usage})
		return
	}
	usage["output_tokens"] = 1 // message_start reports the tokens so far
	st := newStream(w, s.currentFault(), "\n")
	events := []struct {
		name string
		data any
	}{
		{"message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": id, "type": "message",
			"role": "assistant", "model": req.Model, "content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": usage}}},
		{"content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}}},
		{"ping", map[string]any{"type": "ping"}},
	}
	for i := range n {
		events = append(events, struct {
			name string
			data any
		}{"content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": piece(i)}}})
	}
	events = append(events, []struct {
		name string
		data any
	}{
		{"content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}},
		{"message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": n}}},
		{"message_stop", map[string]any{"type": "message_stop"}},
	}...)
	for _, e := range events {
		if !st.event(e.name, e.data) {
			return
		}
	}
}
