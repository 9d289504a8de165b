package provider

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/proxy/sse"
)

// OpenAI chat completions clients on a Gemini upstream.

type geminiRequest struct {
	Contents          []geminiContent `json:"contents"`
	SystemInstruction *geminiContent  `json:"systemInstruction,omitempty"`
	GenerationConfig  *geminiConfig   `json:"generationConfig,omitempty"`
}

type geminiContent struct {
	Role  string       `json:"role,omitempty"`
	Parts []geminiPart `json:"parts"`
}

type geminiPart struct {
	Text       string      `json:"text,omitempty"`
	InlineData *geminiBlob `json:"inlineData,omitempty"`
}

type geminiBlob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

type geminiConfig struct {
	MaxOutputTokens  *int64   `json:"maxOutputTokens,omitempty"`
	Temperature      *float64 `json:"temperature,omitempty"`
	TopP             *float64 `json:"topP,omitempty"`
	StopSequences    []string `json:"stopSequences,omitempty"`
	Seed             *int64   `json:"seed,omitempty"`
	PresencePenalty  *float64 `json:"presencePenalty,omitempty"`
	FrequencyPenalty *float64 `json:"frequencyPenalty,omitempty"`
	ResponseMimeType string   `json:"responseMimeType,omitempty"`
}

func chatToGeminiRequest(u Upstream, c Call) ([]byte, Translator, error) {
	in, err := parseChat(c.Body, chatFeatures{target: "Gemini", penalties: true, jsonMode: true})
	if err != nil {
		return nil, nil, err
	}
	var r geminiRequest
	if len(in.system) > 0 {
		r.SystemInstruction = &geminiContent{Parts: []geminiPart{{Text: strings.Join(in.system, "\n\n")}}}
	}
	for _, t := range in.turns {
		role := "user"
		if t.assistant {
			role = "model"
		}
		var parts []geminiPart
		for _, p := range t.parts {
			if p.Type == "text" {
				parts = append(parts, geminiPart{Text: p.Text})
				continue
			}
			mt, data, _ := dataURL(p.ImageURL.URL) // parseChat let only data: URLs through
			parts = append(parts, geminiPart{InlineData: &geminiBlob{MimeType: mt, Data: data}})
		}
		switch n := len(r.Contents); {
		case len(parts) == 0:
		case n > 0 && r.Contents[n-1].Role == role: // Gemini wants turns to alternate
			r.Contents[n-1].Parts = append(r.Contents[n-1].Parts, parts...)
		default:
			r.Contents = append(r.Contents, geminiContent{Role: role, Parts: parts})
		}
	}
	g := geminiConfig{Temperature: in.temperature, TopP: in.topP, StopSequences: in.stop, Seed: in.seed,
		PresencePenalty: in.presence, FrequencyPenalty: in.frequency}
	if in.maxTokens > 0 {
		g.MaxOutputTokens = &in.maxTokens
	}
	if in.jsonMode {
		g.ResponseMimeType = "application/json"
	}
	if string(marshal(g)) != "{}" {
		r.GenerationConfig = &g
	}
	return marshal(r), &chatFromGemini{key: u.APIKey, model: c.Model, includeUsage: in.includeUsage}, nil
}

type geminiResponse struct {
	Candidates []struct {
		Content struct {
			Parts []struct {
				Text    string `json:"text"`
				Thought bool   `json:"thought"`
			} `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
	PromptFeedback *struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata *geminiUsage `json:"usageMetadata"`
	ModelVersion  string       `json:"modelVersion"`
	ResponseID    string       `json:"responseId"`
}

// text returns the answer's text, thoughts left out.
func (r *geminiResponse) text() string {
	if len(r.Candidates) == 0 {
		return ""
	}
	parts := r.Candidates[0].Content.Parts
	if len(parts) == 1 && !parts[0].Thought {
		return parts[0].Text
	}
	var sb strings.Builder
	for _, p := range parts {
		if !p.Thought {
			sb.WriteString(p.Text)
		}
	}
	return sb.String()
}

// finishReason maps Gemini's finishReason (or a blocked prompt) to OpenAI's.
func (r *geminiResponse) finishReason() string {
	if len(r.Candidates) == 0 {
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			return "content_filter"
		}
		return ""
	}
	switch r.Candidates[0].FinishReason {
	case "":
		return ""
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return "content_filter"
	}
	return "stop"
}

// chatFromGemini answers an OpenAI chat client from Gemini.
type chatFromGemini struct {
	key          string
	model        string
	includeUsage bool
	chunks       chunkWriter
}

func (t *chatFromGemini) ids(r *geminiResponse) (id, model string) {
	id, model = r.ResponseID, r.ModelVersion
	if id == "" {
		id = newID("chatcmpl-")
	}
	if model == "" {
		model = t.model
	}
	return id, model
}

func (t *chatFromGemini) Response(status int, body []byte) ([]byte, Usage, error) {
	if status >= 300 {
		return upstreamError(status, body, t.key).envelope(OpenAIChat), Usage{}, nil
	}
	var r geminiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, Usage{}, errBadUpstream("a response that is not a Gemini GenerateContentResponse")
	}
	var u Usage
	if r.UsageMetadata != nil {
		u = r.UsageMetadata.usage()
	}
	id, model := t.ids(&r)
	finish := r.finishReason()
	if finish == "" {
		finish = "stop"
	}
	return marshal(newChatCompletion(id, model, r.text(), finish, u)), u, nil
}

func (t *chatFromGemini) Stream(dst *sse.Writer, src io.Reader) (Usage, error) {
	rd := sse.NewReader(src)
	defer rd.Close()
	var u geminiStreamUsage
	finished := false
	for {
		ev, err := rd.Next()
		if err == nil && partial(ev) {
			err = io.EOF
		}
		if err == io.EOF && finished { // Gemini ends the stream without a marker
			if t.includeUsage {
				if err := t.chunks.usage(dst, u.get()); err != nil {
					return u.get(), err
				}
			}
			return u.get(), t.chunks.done(dst)
		}
		if err != nil {
			return u.get(), failStream(dst, OpenAIChat, err)
		}
		if len(ev.Data) == 0 {
			continue
		}
		if isError(ev.Data) {
			e := upstreamError(http.StatusBadGateway, ev.Data, t.key)
			if err := dst.WriteRaw(ClientStreamError(OpenAIChat, e)); err != nil {
				return u.get(), err
			}
			return u.get(), e
		}
		if t.chunks.started() && !finished {
			if tok, usage, ok := geminiTextToken(ev.Data); ok {
				u.seen(usage)
				if err := t.chunks.rawContent(dst, tok); err != nil {
					return u.get(), err
				}
				continue
			}
		}
		var r geminiResponse
		if json.Unmarshal(ev.Data, &r) != nil {
			return u.get(), failStream(dst, OpenAIChat, errBadUpstream("an unreadable stream event"))
		}
		if r.UsageMetadata != nil {
			u.set(r.UsageMetadata.usage())
		}
		first := !t.chunks.started()
		if first {
			t.chunks.start(t.ids(&r))
		}
		if text := r.text(); first || text != "" {
			if err := t.chunks.content(dst, first, text); err != nil {
				return u.get(), err
			}
		}
		if reason := r.finishReason(); reason != "" && !finished {
			finished = true
			if err := t.chunks.finish(dst, reason); err != nil {
				return u.get(), err
			}
		}
	}
}

// geminiStreamUsage is a stream's usage. Gemini repeats its running
// total in every event: the last one is kept raw and decoded only when it
// is asked for.
type geminiStreamUsage struct {
	u   Usage
	raw []byte // the last usageMetadata not yet decoded, or empty
}

func (s *geminiStreamUsage) seen(raw []byte) {
	if raw != nil {
		s.raw = append(s.raw[:0], raw...)
	}
}

func (s *geminiStreamUsage) set(u Usage) { s.u, s.raw = u, s.raw[:0] }

func (s *geminiStreamUsage) get() Usage {
	if len(s.raw) > 0 {
		var g geminiUsage
		if json.Unmarshal(s.raw, &g) == nil {
			s.u = g.usage()
		}
		s.raw = s.raw[:0]
	}
	return s.u
}

// geminiTextToken returns the text of an event that carries only text,
// as its raw JSON string token, quotes included, and its usageMetadata
// (nil when absent): one candidate with one part, no finish reason, no
// thought, no prompt feedback. The text is copied into the OpenAI chunk as
// it is, without decoding the event; any other event is decoded.
func geminiTextToken(data []byte) (tok, usage []byte, ok bool) {
	if !json.Valid(data) {
		return nil, nil, false
	}
	candidates, ok1 := pick(data, "candidates", func(m member) bool {
		if keyIs(m.key, "usageMetadata") {
			usage = m.val
		}
		return !keyIs(m.key, "promptFeedback")
	})
	candidate, one1 := onlyElement(candidates)
	content, ok2 := pick(candidate, "content", func(m member) bool { return !keyIs(m.key, "finishReason") })
	parts, ok3 := pick(content, "parts", func(member) bool { return true })
	part, one2 := onlyElement(parts)
	text, ok4 := pick(part, "text", func(m member) bool { return keyIs(m.key, "thought") && string(m.val) == "false" })
	ok = ok1 && one1 && ok2 && ok3 && one2 && ok4 && len(text) > 2 && text[0] == '"'
	return text, usage, ok
}
