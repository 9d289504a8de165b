package provider

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

// openAIPassRequest forwards an OpenAI body to an OpenAI-wire upstream,
// editing only model, stream and stream_options.
func openAIPassRequest(u Upstream, c Call) ([]byte, Translator, error) {
	body, set, err := passEdits(c)
	if err != nil {
		return nil, nil, err
	}
	t := &openAIPass{api: c.API, key: u.APIKey}
	if c.Stream && c.API != OpenAIEmbeddings {
		so, n := lookup(body, "stream_options")
		clientWants := n == 1 && includesUsage(so)
		switch {
		case u.Type == TypeMistral:
			// Mistral rejects stream_options and always sends usage.
			if n > 0 {
				set["stream_options"] = nil
			}
		case !clientWants:
			set["stream_options"] = withIncludeUsage(so)
			t.dropUsageChunk = true
		}
	}
	if len(set) > 0 {
		body = setMembers(body, set)
	}
	return body, t, nil
}

// anthropicPassRequest forwards an Anthropic body, editing only model and stream.
func anthropicPassRequest(u Upstream, c Call) ([]byte, Translator, error) {
	body, set, err := passEdits(c)
	if err != nil {
		return nil, nil, err
	}
	if len(set) > 0 {
		body = setMembers(body, set)
	}
	return body, &anthropicPass{key: u.APIKey}, nil
}

// passEdits checks a body that passes through and returns the edits it
// needs: the upstream model, and a stream flag that says what the proxy
// believes, so that duplicate or odd keys cannot make the upstream and the
// proxy read the request differently.
func passEdits(c Call) ([]byte, map[string][]byte, error) {
	body := c.Body
	if !isObject(body) || !json.Valid(body) {
		return nil, nil, errNotObject
	}
	set := make(map[string][]byte, 3)
	if v, n := lookup(body, "model"); n != 1 || !isString(v, c.Model) {
		set["model"] = appendString(nil, c.Model)
	}
	v, n := lookup(body, "stream")
	switch {
	case c.API == OpenAIEmbeddings:
		if n > 0 { // embeddings have no stream parameter
			set["stream"] = nil
		}
	case n > 1 || (n == 1 && string(v) != boolText(c.Stream)) || (n == 0 && c.Stream):
		set["stream"] = []byte(boolText(c.Stream))
	}
	return body, set, nil
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// isString reports whether raw is the JSON string s.
func isString(raw []byte, s string) bool {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1:len(raw)-1]) == s
	}
	var v string
	return json.Unmarshal(raw, &v) == nil && v == s
}

func includesUsage(so []byte) bool {
	var v struct {
		IncludeUsage bool `json:"include_usage"`
	}
	return json.Unmarshal(so, &v) == nil && v.IncludeUsage
}

// withIncludeUsage returns the client's stream_options with include_usage set.
func withIncludeUsage(so []byte) []byte {
	var m map[string]json.RawMessage
	if len(so) == 0 || json.Unmarshal(so, &m) != nil || m == nil {
		return []byte(`{"include_usage":true}`)
	}
	m["include_usage"] = json.RawMessage("true")
	b, _ := json.Marshal(m)
	return b
}

// openAIPass answers an OpenAI client from an OpenAI-wire upstream.
type openAIPass struct {
	api API
	key string
	// dropUsageChunk removes the usage-only chunk that the proxy asked
	// for on the client's behalf.
	dropUsageChunk bool
}

func (t *openAIPass) Response(status int, body []byte) ([]byte, Usage, error) {
	if status >= 300 {
		return upstreamError(status, body, t.key).envelope(t.api), Usage{}, nil
	}
	var u *openAIUsage
	if err := usageOf(body, &u); err != nil {
		return nil, Usage{}, err
	}
	if u == nil {
		return body, Usage{}, nil
	}
	return body, u.usage(), nil
}

func (t *openAIPass) Stream(dst *sse.Writer, src io.Reader) (Usage, error) {
	rd := sse.NewReader(src)
	defer rd.Close()
	var u Usage
	gotUsage := false
	for {
		ev, err := rd.Next()
		if err != nil {
			// Some servers end without [DONE]; what matters is that the
			// usage, which comes last, arrived.
			if err == io.EOF && gotUsage {
				return u, nil
			}
			return u, failStream(dst, t.api, err)
		}
		data := ev.Data
		switch {
		case partial(ev):
			return u, failStream(dst, t.api, io.EOF)
		case len(data) == 0:
		case isDone(data):
			return u, dst.WriteRaw(ev.Raw)
		case hasMember(data, "usage", '{'):
			var c struct {
				Choices []json.RawMessage `json:"choices"`
				Usage   *openAIUsage      `json:"usage"`
			}
			if json.Unmarshal(data, &c) == nil && c.Usage != nil {
				u, gotUsage = c.Usage.usage(), true
				if t.dropUsageChunk && len(c.Choices) == 0 {
					continue
				}
			}
		case isError(data):
			if err := dst.WriteRaw(ev.Raw); err != nil {
				return u, err
			}
			return u, upstreamError(http.StatusBadGateway, data, t.key)
		}
		if err := dst.WriteRaw(ev.Raw); err != nil {
			return u, err
		}
	}
}

// anthropicPass answers an Anthropic client from Anthropic.
type anthropicPass struct {
	key string
}

func (t *anthropicPass) Response(status int, body []byte) ([]byte, Usage, error) {
	if status >= 300 {
		return upstreamError(status, body, t.key).envelope(AnthropicMessages), Usage{}, nil
	}
	var u *anthropicUsage
	if err := usageOf(body, &u); err != nil {
		return nil, Usage{}, err
	}
	var tot anthropicTotals
	tot.add(u)
	return body, tot.usage(), nil
}

func (t *anthropicPass) Stream(dst *sse.Writer, src io.Reader) (Usage, error) {
	rd := sse.NewReader(src)
	defer rd.Close()
	var tot anthropicTotals
	for {
		ev, err := rd.Next()
		if err == nil && partial(ev) {
			err = io.EOF
		}
		if err != nil {
			return tot.usage(), failStream(dst, AnthropicMessages, err)
		}
		switch string(ev.Name) {
		case "message_start":
			var e struct {
				Message struct {
					Usage *anthropicUsage `json:"usage"`
				} `json:"message"`
			}
			if json.Unmarshal(ev.Data, &e) == nil {
				tot.add(e.Message.Usage)
			}
		case "message_delta":
			var e struct {
				Usage *anthropicUsage `json:"usage"`
			}
			if json.Unmarshal(ev.Data, &e) == nil {
				tot.add(e.Usage)
			}
		case "message_stop":
			return tot.usage(), dst.WriteRaw(ev.Raw)
		case "error":
			if err := dst.WriteRaw(ev.Raw); err != nil {
				return tot.usage(), err
			}
			return tot.usage(), upstreamError(http.StatusBadGateway, ev.Data, t.key)
		}
		if err := dst.WriteRaw(ev.Raw); err != nil {
			return tot.usage(), err
		}
	}
}

// partial reports an event cut off by the end of the stream: it lacks its
// blank line and its data is not whole JSON. It is not forwarded.
func partial(ev sse.Event) bool {
	if bytes.HasSuffix(ev.Raw, []byte("\n\n")) || bytes.HasSuffix(ev.Raw, []byte("\r\n\r\n")) {
		return false
	}
	return len(ev.Data) > 0 && !isDone(ev.Data) && !json.Valid(ev.Data)
}

// failStream ends a client stream whose upstream broke or ended early
// (readErr is io.EOF) with the client API's error event.
func failStream(dst *sse.Writer, api API, readErr error) error {
	e, ok := readErr.(*Error)
	switch {
	case ok:
	case readErr == io.EOF:
		e = errTruncated
	default:
		e = &Error{Status: http.StatusBadGateway, Message: "the upstream stream failed: " + readErr.Error()}
	}
	if err := dst.WriteRaw(ClientStreamError(api, e)); err != nil {
		return err
	}
	return e
}
