package provider

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

// OpenAI chat completions clients on an Anthropic upstream.

// DefaultAnthropicMaxTokens is sent as Anthropic's required max_tokens
// when an OpenAI client sets no limit.
const DefaultAnthropicMaxTokens = 4096

type anthropicRequest struct {
	Model         string             `json:"model"`
	MaxTokens     int64              `json:"max_tokens"`
	System        []anthropicBlock   `json:"system,omitempty"`
	Messages      []anthropicMessage `json:"messages"`
	Temperature   *float64           `json:"temperature,omitempty"`
	TopP          *float64           `json:"top_p,omitempty"`
	StopSequences []string           `json:"stop_sequences,omitempty"`
	Stream        bool               `json:"stream,omitempty"`
	Metadata      *anthropicMetadata `json:"metadata,omitempty"`
}

type anthropicMetadata struct {
	UserID string `json:"user_id"`
}

type anthropicMessage struct {
	Role    string           `json:"role"`
	Content []anthropicBlock `json:"content"`
}

type anthropicBlock struct {
	Type   string           `json:"type"`
	Text   string           `json:"text,omitempty"`
	Source *anthropicSource `json:"source,omitempty"`
}

type anthropicSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

func chatToAnthropicRequest(u Upstream, c Call) ([]byte, Translator, error) {
	in, err := parseChat(c.Body, chatFeatures{target: "Anthropic Messages", remoteImg: true})
	if err != nil {
		return nil, nil, err
	}
	r := anthropicRequest{
		Model: c.Model, MaxTokens: in.maxTokens, Temperature: in.temperature, TopP: in.topP,
		StopSequences: in.stop, Stream: c.Stream, Messages: make([]anthropicMessage, 0, len(in.turns)),
	}
	if r.MaxTokens == 0 {
		r.MaxTokens = DefaultAnthropicMaxTokens
	}
	if in.user != "" {
		r.Metadata = &anthropicMetadata{UserID: in.user}
	}
	for _, s := range in.system {
		if s != "" {
			r.System = append(r.System, anthropicBlock{Type: "text", Text: s})
		}
	}
	for _, t := range in.turns {
		m := anthropicMessage{Role: "user"}
		if t.assistant {
			m.Role = "assistant"
		}
		for _, p := range t.parts {
			if p.Type == "text" {
				m.Content = append(m.Content, anthropicBlock{Type: "text", Text: p.Text})
				continue
			}
			src := &anthropicSource{Type: "url", URL: p.ImageURL.URL}
			if mt, data, ok := dataURL(p.ImageURL.URL); ok {
				src = &anthropicSource{Type: "base64", MediaType: mt, Data: data}
			}
			m.Content = append(m.Content, anthropicBlock{Type: "image", Source: src})
		}
		if len(m.Content) > 0 { // Anthropic refuses empty messages
			r.Messages = append(r.Messages, m)
		}
	}
	return marshal(r), &chatFromAnthropic{key: u.APIKey, includeUsage: in.includeUsage}, nil
}

// anthropicStopReason maps Anthropic's stop_reason to OpenAI's finish_reason.
func anthropicStopReason(r string) string {
	switch r {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop" // end_turn, stop_sequence, pause_turn
}

// chatFromAnthropic answers an OpenAI chat client from Anthropic.
type chatFromAnthropic struct {
	key          string
	includeUsage bool
	chunks       chunkWriter
}

func (t *chatFromAnthropic) Response(status int, body []byte) ([]byte, Usage, error) {
	if status >= 300 {
		return upstreamError(status, body, t.key).envelope(OpenAIChat), Usage{}, nil
	}
	var r struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StopReason string          `json:"stop_reason"`
		Usage      *anthropicUsage `json:"usage"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, Usage{}, errBadUpstream("a response that is not an Anthropic message")
	}
	var sb strings.Builder
	for _, b := range r.Content {
		if b.Type == "text" {
			sb.WriteString(b.Text)
		}
	}
	var tot anthropicTotals
	tot.add(r.Usage)
	u := tot.usage()
	return marshal(newChatCompletion(r.ID, r.Model, sb.String(), anthropicStopReason(r.StopReason), u)), u, nil
}

func (t *chatFromAnthropic) Stream(dst *sse.Writer, src io.Reader) (Usage, error) {
	rd := sse.NewReader(src)
	defer rd.Close()
	var tot anthropicTotals
	for {
		ev, err := rd.Next()
		if err == nil && partial(ev) {
			err = io.EOF
		}
		if err != nil {
			return tot.usage(), failStream(dst, OpenAIChat, err)
		}
		switch string(ev.Name) {
		case "message_start":
			var e struct {
				Message struct {
					ID    string          `json:"id"`
					Model string          `json:"model"`
					Usage *anthropicUsage `json:"usage"`
				} `json:"message"`
			}
			if json.Unmarshal(ev.Data, &e) != nil {
				return tot.usage(), failStream(dst, OpenAIChat, errBadUpstream("an unreadable message_start event"))
			}
			tot.add(e.Message.Usage)
			t.chunks.start(e.Message.ID, e.Message.Model)
			err = t.chunks.content(dst, true, "")
		case "content_block_delta":
			if tok, ok := anthropicTextToken(ev.Data); ok {
				if len(tok) > 2 {
					t.ensureStarted()
					err = t.chunks.rawContent(dst, tok)
				}
				break
			}
			var e struct {
				Delta struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"delta"`
			}
			if json.Unmarshal(ev.Data, &e) == nil && e.Delta.Type == "text_delta" && e.Delta.Text != "" {
				t.ensureStarted()
				err = t.chunks.content(dst, false, e.Delta.Text)
			}
		case "message_delta":
			var e struct {
				Delta struct {
					StopReason string `json:"stop_reason"`
				} `json:"delta"`
				Usage *anthropicUsage `json:"usage"`
			}
			if json.Unmarshal(ev.Data, &e) == nil {
				tot.add(e.Usage)
				if e.Delta.StopReason != "" {
					t.ensureStarted()
					err = t.chunks.finish(dst, anthropicStopReason(e.Delta.StopReason))
				}
			}
		case "message_stop":
			t.ensureStarted()
			if t.includeUsage {
				if err := t.chunks.usage(dst, tot.usage()); err != nil {
					return tot.usage(), err
				}
			}
			return tot.usage(), t.chunks.done(dst)
		case "error":
			e := upstreamError(http.StatusBadGateway, ev.Data, t.key)
			if err := dst.WriteRaw(ClientStreamError(OpenAIChat, e)); err != nil {
				return tot.usage(), err
			}
			return tot.usage(), e
		}
		if err != nil {
			return tot.usage(), err
		}
	}
}

// anthropicTextToken returns the text of a text_delta event as its raw JSON
// string, quotes included, when the event has Anthropic's usual compact
// form. The token is copied into the OpenAI chunk as it is: no decoding,
// no escaping, no allocation. Any other form is decoded the slow way.
func anthropicTextToken(data []byte) ([]byte, bool) {
	const prefix = `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`
	const suffix = `}}`
	if len(data) < len(prefix)+len(suffix)+2 || string(data[:len(prefix)]) != prefix || string(data[len(data)-2:]) != suffix {
		return nil, false
	}
	tok := data[len(prefix) : len(data)-len(suffix)]
	if tok[0] != '"' || skipString(tok, 0) != len(tok) || !json.Valid(tok) {
		return nil, false
	}
	return tok, true
}

func (t *chatFromAnthropic) ensureStarted() {
	if !t.chunks.started() {
		t.chunks.start(newID("chatcmpl-"), "")
	}
}
