package provider

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

// Anthropic Messages clients on an OpenAI-wire upstream.

type messagesRequest struct {
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	System        json.RawMessage `json:"system"`
	MaxTokens     *int64          `json:"max_tokens"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	StopSequences []string        `json:"stop_sequences"`
	Metadata      *struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`

	TopK       json.RawMessage `json:"top_k"`
	Tools      json.RawMessage `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
	Thinking   json.RawMessage `json:"thinking"`
	MCPServers json.RawMessage `json:"mcp_servers"`
	Container  json.RawMessage `json:"container"`
}

type anthropicInBlock struct {
	Type   string `json:"type"`
	Text   string `json:"text"`
	Source *struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	} `json:"source"`
}

type chatOutRequest struct {
	Model               string            `json:"model"`
	Messages            []chatOutReqMsg   `json:"messages"`
	MaxTokens           *int64            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int64            `json:"max_completion_tokens,omitempty"`
	Temperature         *float64          `json:"temperature,omitempty"`
	TopP                *float64          `json:"top_p,omitempty"`
	Stop                []string          `json:"stop,omitempty"`
	Stream              bool              `json:"stream,omitempty"`
	StreamOptions       *chatStreamOption `json:"stream_options,omitempty"`
	User                string            `json:"user,omitempty"`
}

type chatStreamOption struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatOutReqMsg struct {
	Role    string `json:"role"`
	Content any    `json:"content"` // a string, or []chatOutPart
}

type chatOutPart struct {
	Type     string         `json:"type"`
	Text     string         `json:"text,omitempty"`
	ImageURL *chatOutImgURL `json:"image_url,omitempty"`
}

type chatOutImgURL struct {
	URL string `json:"url"`
}

func messagesToOpenAIRequest(u Upstream, c Call) ([]byte, Translator, error) {
	var r messagesRequest
	if err := json.Unmarshal(c.Body, &r); err != nil {
		return nil, nil, invalid("the request body is not a valid Messages request: %s", jsonErrText(err))
	}
	unsupported := func(param string) error {
		return invalid("%s: this parameter is not supported for this model: its provider speaks the OpenAI chat completions API", param)
	}
	for _, p := range []struct {
		name string
		raw  json.RawMessage
	}{{"tools", r.Tools}, {"top_k", r.TopK}, {"mcp_servers", r.MCPServers}, {"container", r.Container}} {
		if isSet(p.raw) {
			return nil, nil, unsupported(p.name)
		}
	}
	if choice := anthropicType(r.ToolChoice); choice != "" && choice != "auto" && choice != "none" {
		return nil, nil, unsupported("tool_choice")
	}
	if thinking := anthropicType(r.Thinking); thinking != "" && thinking != "disabled" {
		return nil, nil, unsupported("thinking")
	}
	if r.MaxTokens == nil || *r.MaxTokens < 1 {
		return nil, nil, invalid("max_tokens: a positive number is required")
	}
	out := chatOutRequest{Model: c.Model, Temperature: r.Temperature, TopP: r.TopP, Stop: r.StopSequences, Stream: c.Stream}
	if u.Type == TypeOpenAI { // OpenAI's reasoning models refuse max_tokens
		out.MaxCompletionTokens = r.MaxTokens
	} else {
		out.MaxTokens = r.MaxTokens
	}
	if c.Stream && u.Type != TypeMistral { // Mistral refuses stream_options and always sends usage
		out.StreamOptions = &chatStreamOption{IncludeUsage: true}
	}
	if r.Metadata != nil {
		out.User = r.Metadata.UserID
	}
	system, err := anthropicBlocks(r.System, "system")
	if err != nil {
		return nil, nil, err
	}
	if len(system) > 0 {
		var sb strings.Builder
		for i, b := range system {
			if b.Type != "text" {
				return nil, nil, invalid("system: only text blocks are supported")
			}
			if i > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(b.Text)
		}
		out.Messages = append(out.Messages, chatOutReqMsg{Role: "system", Content: sb.String()})
	}
	for i, m := range r.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return nil, nil, invalid("messages[%d]: unknown role %q", i, m.Role)
		}
		blocks, err := anthropicBlocks(m.Content, "messages")
		if err != nil {
			return nil, nil, err
		}
		msg, err := chatMessageFromBlocks(m.Role, blocks, i)
		if err != nil {
			return nil, nil, err
		}
		out.Messages = append(out.Messages, msg)
	}
	return marshal(out), &messagesFromOpenAI{key: u.APIKey}, nil
}

// anthropicType returns the "type" of a raw object parameter, "" when unset.
func anthropicType(raw json.RawMessage) string {
	var v struct {
		Type string `json:"type"`
	}
	if !isSet(raw) || json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v.Type
}

// anthropicBlocks reads a content: a string or an array of blocks.
func anthropicBlocks(raw json.RawMessage, where string) ([]anthropicInBlock, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalid("%s: %s", where, jsonErrText(err))
		}
		return []anthropicInBlock{{Type: "text", Text: s}}, nil
	}
	var blocks []anthropicInBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, invalid("%s: content must be a string or an array of content blocks", where)
	}
	return blocks, nil
}

func chatMessageFromBlocks(role string, blocks []anthropicInBlock, i int) (chatOutReqMsg, error) {
	var parts []chatOutPart
	for _, b := range blocks {
		switch b.Type {
		case "text":
			parts = append(parts, chatOutPart{Type: "text", Text: b.Text})
		case "image":
			if role != "user" || b.Source == nil {
				return chatOutReqMsg{}, invalid("messages[%d]: images are only supported in user messages", i)
			}
			url := b.Source.URL
			if b.Source.Type == "base64" {
				url = "data:" + b.Source.MediaType + ";base64," + b.Source.Data
			}
			if url == "" {
				return chatOutReqMsg{}, invalid("messages[%d]: image source of type %q is not supported", i, b.Source.Type)
			}
			parts = append(parts, chatOutPart{Type: "image_url", ImageURL: &chatOutImgURL{URL: url}})
		default:
			return chatOutReqMsg{}, invalid("messages[%d]: content blocks of type %q are not supported for this model: its provider speaks the OpenAI chat completions API", i, b.Type)
		}
	}
	// A text-only message becomes a plain string, which every
	// OpenAI-compatible server accepts, and assistants only take strings.
	text := true
	for _, p := range parts {
		text = text && p.Type == "text"
	}
	if text && (len(parts) <= 1 || role == "assistant") {
		var sb strings.Builder
		for _, p := range parts {
			sb.WriteString(p.Text)
		}
		return chatOutReqMsg{Role: role, Content: sb.String()}, nil
	}
	return chatOutReqMsg{Role: role, Content: parts}, nil
}

// finishToStopReason maps OpenAI's finish_reason to Anthropic's stop_reason.
func finishToStopReason(f string) string {
	switch f {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	return "end_turn"
}

// anthropicMessageOut is a whole Anthropic message, as translation writes it.
type anthropicMessageOut struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Role         string           `json:"role"`
	Model        string           `json:"model"`
	Content      []anthropicBlock `json:"content"`
	StopReason   string           `json:"stop_reason"`
	StopSequence *string          `json:"stop_sequence"`
	Usage        json.RawMessage  `json:"usage"`
}

// appendAnthropicUsage writes u in Anthropic's terms, where input_tokens
// leaves out cache reads.
func appendAnthropicUsage(b []byte, u Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.InputTokens-u.CachedInputTokens)
	b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
	b = appendInt(b, u.CachedInputTokens)
	b = append(b, `,"output_tokens":`...)
	b = appendInt(b, u.OutputTokens)
	return append(b, '}')
}

// messagesFromOpenAI answers an Anthropic client from an OpenAI-wire upstream.
type messagesFromOpenAI struct {
	key string
	buf []byte
}

func (t *messagesFromOpenAI) Response(status int, body []byte) ([]byte, Usage, error) {
	if status >= 300 {
		return upstreamError(status, body, t.key).envelope(AnthropicMessages), Usage{}, nil
	}
	var r struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
				Refusal *string `json:"refusal"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *openAIUsage `json:"usage"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Choices) == 0 {
		return nil, Usage{}, errBadUpstream("a response that is not a chat completion")
	}
	var u Usage
	if r.Usage != nil {
		u = r.Usage.usage()
	}
	ch := r.Choices[0]
	m := anthropicMessageOut{ID: r.ID, Type: "message", Role: "assistant", Model: r.Model,
		Content: []anthropicBlock{}, StopReason: finishToStopReason(ch.FinishReason), Usage: appendAnthropicUsage(nil, u)}
	if ch.Message.Content != nil && *ch.Message.Content != "" {
		m.Content = append(m.Content, anthropicBlock{Type: "text", Text: *ch.Message.Content})
	}
	if ch.Message.Refusal != nil && *ch.Message.Refusal != "" {
		m.Content = append(m.Content, anthropicBlock{Type: "text", Text: *ch.Message.Refusal})
		m.StopReason = "refusal"
	}
	return marshal(m), u, nil
}

// openAIChunk is the part of a chat.completion.chunk that translation reads.
type openAIChunk struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Content *string `json:"content"`
			Refusal *string `json:"refusal"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *openAIUsage `json:"usage"`
}

func (t *messagesFromOpenAI) Stream(dst *sse.Writer, src io.Reader) (Usage, error) {
	rd := sse.NewReader(src)
	defer rd.Close()
	var (
		u                       Usage
		started, open, gotUsage bool
		finish                  string
		finished                bool
	)
	for {
		ev, err := rd.Next()
		if err == nil && partial(ev) {
			err = io.EOF
		}
		if err == io.EOF && finished && gotUsage {
			err = nil
			ev.Data = []byte("[DONE]") // a server that leaves out [DONE]
		}
		if err != nil {
			return u, failStream(dst, AnthropicMessages, err)
		}
		data := ev.Data
		switch {
		case len(data) == 0:
			continue
		case isDone(data):
			if !started {
				if err := t.start(dst, "", ""); err != nil {
					return u, err
				}
			}
			return u, t.end(dst, open, finishToStopReason(finish), u)
		case isError(data):
			e := upstreamError(http.StatusBadGateway, data, t.key)
			if err := dst.WriteRaw(ClientStreamError(AnthropicMessages, e)); err != nil {
				return u, err
			}
			return u, e
		}
		if started {
			if tok, ok := openAIContentToken(data); ok {
				if err := t.text(dst, &open, tok); err != nil {
					return u, err
				}
				continue
			}
		}
		var c openAIChunk
		if json.Unmarshal(data, &c) != nil {
			return u, failStream(dst, AnthropicMessages, errBadUpstream("an unreadable stream event"))
		}
		if !started {
			started = true
			if err := t.start(dst, c.ID, c.Model); err != nil {
				return u, err
			}
		}
		if c.Usage != nil {
			u, gotUsage = c.Usage.usage(), true
		}
		if len(c.Choices) == 0 {
			continue
		}
		ch := c.Choices[0]
		for _, s := range []*string{ch.Delta.Content, ch.Delta.Refusal} {
			if s == nil || *s == "" {
				continue
			}
			if err := t.text(dst, &open, appendString(nil, *s)); err != nil {
				return u, err
			}
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			finish, finished = *ch.FinishReason, true
		}
	}
}

// text writes a text delta, tok a JSON string, opening the content block
// first if it is not open.
func (t *messagesFromOpenAI) text(dst *sse.Writer, open *bool, tok []byte) error {
	if !*open {
		*open = true
		if err := dst.WriteRaw([]byte("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")); err != nil {
			return err
		}
	}
	b := append(t.buf[:0], "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"...)
	b = append(b, tok...)
	b = append(b, "}}\n\n"...)
	t.buf = b
	return dst.WriteRaw(b)
}

// openAIContentToken returns the content of a chunk that carries only
// text, as its raw JSON string token, quotes included: one choice, no
// finish reason, no refusal, no usage. It is copied into the Anthropic
// event as it is, without decoding the chunk; any other chunk is decoded.
func openAIContentToken(data []byte) ([]byte, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	choices, ok1 := pick(data, "choices", func(m member) bool { return !keyIs(m.key, "usage") || isNull(m.val) })
	choice, one := onlyElement(choices)
	delta, ok2 := pick(choice, "delta", func(m member) bool { return !keyIs(m.key, "finish_reason") || isNull(m.val) })
	content, ok3 := pick(delta, "content", func(m member) bool { return !keyIs(m.key, "refusal") || isNull(m.val) })
	return content, ok1 && one && ok2 && ok3 && len(content) > 2 && content[0] == '"'
}

func (t *messagesFromOpenAI) start(dst *sse.Writer, id, model string) error {
	if id == "" {
		id = newID("msg_")
	}
	b := append(t.buf[:0], "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
	b = appendString(b, id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendString(b, model)
	// The upstream reports input tokens only at the end; message_delta
	// carries them then.
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`+"\n\n"...)
	t.buf = b
	return dst.WriteRaw(b)
}

func (t *messagesFromOpenAI) end(dst *sse.Writer, open bool, stopReason string, u Usage) error {
	b := t.buf[:0]
	if open {
		b = append(b, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"...)
	}
	b = append(b, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"...)
	b = appendString(b, stopReason)
	b = append(b, `,"stop_sequence":null},"usage":`...)
	b = appendAnthropicUsage(b, u)
	b = append(b, "}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
	t.buf = b
	return dst.WriteRaw(b)
}
