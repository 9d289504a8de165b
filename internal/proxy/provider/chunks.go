package provider

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

// now is the clock of translated responses' "created"; tests replace it.
var now = func() int64 { return time.Now().Unix() }

// newID returns an id for a translated response when the upstream gave none.
var newID = func(prefix string) string {
	return prefix + strconv.FormatUint(rand.Uint64(), 36)
}

// chunkWriter writes OpenAI chat.completion.chunk events for a translated
// stream. Every chunk starts with the same id, created and model, so their
// encoding is kept and only the choice is appended per event.
type chunkWriter struct {
	prefix []byte // data: {"id":...,"choices":[
	buf    []byte
}

func (c *chunkWriter) started() bool { return c.prefix != nil }

func (c *chunkWriter) start(id, model string) {
	b := append([]byte(nil), `data: {"id":`...)
	b = appendString(b, id)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = appendInt(b, now())
	b = append(b, `,"model":`...)
	b = appendString(b, model)
	c.prefix = append(b, `,"choices":[`...)
}

// content writes a delta; role adds the assistant role of a first chunk.
func (c *chunkWriter) content(dst *sse.Writer, role bool, text string) error {
	b := append(c.buf[:0], c.prefix...)
	b = append(b, `{"index":0,"delta":{`...)
	if role {
		b = append(b, `"role":"assistant",`...)
	}
	b = append(b, `"content":`...)
	b = appendString(b, text)
	b = append(b, `},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
	c.buf = b
	return dst.WriteRaw(b)
}

// rawContent writes a delta whose content is tok, a JSON string token.
func (c *chunkWriter) rawContent(dst *sse.Writer, tok []byte) error {
	b := append(c.buf[:0], c.prefix...)
	b = append(b, `{"index":0,"delta":{"content":`...)
	b = append(b, tok...)
	b = append(b, `},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
	c.buf = b
	return dst.WriteRaw(b)
}

func (c *chunkWriter) finish(dst *sse.Writer, reason string) error {
	b := append(c.buf[:0], c.prefix...)
	b = append(b, `{"index":0,"delta":{},"logprobs":null,"finish_reason":`...)
	b = appendString(b, reason)
	b = append(b, "}]}\n\n"...)
	c.buf = b
	return dst.WriteRaw(b)
}

// usage writes the usage-only chunk of stream_options.include_usage.
func (c *chunkWriter) usage(dst *sse.Writer, u Usage) error {
	b := append(c.buf[:0], c.prefix...)
	b = append(b, `],"usage":`...)
	b = appendChatUsage(b, u)
	b = append(b, "}\n\n"...)
	c.buf = b
	return dst.WriteRaw(b)
}

func (c *chunkWriter) done(dst *sse.Writer) error {
	return dst.WriteRaw([]byte("data: [DONE]\n\n"))
}

func appendChatUsage(b []byte, u Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, u.InputTokens)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, u.OutputTokens)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, u.InputTokens+u.OutputTokens)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.CachedInputTokens)
	return append(b, `}}`...)
}

// chatCompletion is a whole OpenAI chat completion, as translation writes it.
type chatCompletion struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []chatChoice    `json:"choices"`
	Usage   json.RawMessage `json:"usage"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      chatOutMessage  `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type chatOutMessage struct {
	Role    string          `json:"role"`
	Content string          `json:"content"`
	Refusal json.RawMessage `json:"refusal"`
}

func newChatCompletion(id, model, content, finish string, u Usage) chatCompletion {
	return chatCompletion{
		ID: id, Object: "chat.completion", Created: now(), Model: model,
		Choices: []chatChoice{{
			Message:  chatOutMessage{Role: "assistant", Content: content, Refusal: json.RawMessage("null")},
			Logprobs: json.RawMessage("null"), FinishReason: finish,
		}},
		Usage: appendChatUsage(nil, u),
	}
}

// marshal encodes v without escaping HTML characters, as providers do.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only fixed types are encoded here
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
