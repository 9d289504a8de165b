package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/proxy/provider"
)

// renderPrompt turns the JSON variables POSTed to a prompt endpoint into an
// OpenAI chat request. Optional request fields model, max_tokens,
// temperature and stream are kept; the template supplies the messages.
func renderPrompt(ru *rule, body []byte) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return &provider.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: fmt.Sprintf(format, args...)}
	}
	var in map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil || in == nil {
		return nil, bad("The body must be a JSON object of the prompt's variables.")
	}
	values := map[string]string{}
	var missing []string
	for _, v := range ru.Prompt.Variables {
		raw, ok := in[v.Name]
		switch {
		case ok:
			var s string
			if json.Unmarshal(raw, &s) != nil {
				s = string(raw) // numbers and booleans as written
			}
			values[v.Name] = s
		case v.Default != nil:
			values[v.Name] = *v.Default
		default:
			missing = append(missing, v.Name)
		}
	}
	if len(missing) > 0 {
		return nil, &provider.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: missing[0],
			Message: fmt.Sprintf("Missing prompt variables: %s.", strings.Join(missing, ", "))}
	}
	// One pass, so that a value holding "{{other}}" is never expanded again.
	pairs := make([]string, 0, 2*len(values))
	for name, v := range values {
		pairs = append(pairs, "{{"+name+"}}", v)
	}
	fill := strings.NewReplacer(pairs...).Replace
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	req := map[string]any{}
	if ru.Prompt.System != "" {
		req["messages"] = []message{{"system", fill(ru.Prompt.System)}, {"user", fill(ru.Prompt.Template)}}
	} else {
		req["messages"] = []message{{"user", fill(ru.Prompt.Template)}}
	}
	// The model is the first backend's rewrite; the endpoint needs none from the client.
	req["model"] = promptModel(ru)
	for _, k := range []string{"max_tokens", "temperature", "stream"} {
		if v, ok := in[k]; ok {
			req[k] = v
		}
	}
	return json.Marshal(req)
}

func promptModel(ru *rule) string {
	for _, tier := range ru.tiers {
		for _, b := range tier {
			if b.model != "" {
				return b.model
			}
		}
	}
	return "default"
}
