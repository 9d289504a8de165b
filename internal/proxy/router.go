package proxy

import (
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
)

// match finds the first rule, of the first route whose hostnames admit the
// request, whose matches hold for the request and model.
func (t *table) match(r *http.Request, model string) *rule {
	host := hostOnly(r.Host)
	for _, rt := range t.routes {
		if !hostMatches(rt.Hostnames, host) {
			continue
		}
		for _, ru := range rt.rules {
			if ru.Prompt == nil && ru.matches(r, model) {
				return ru
			}
		}
	}
	return nil
}

// prompt finds the prompt-encapsulated rule that serves a path.
func (t *table) prompt(r *http.Request) *rule {
	host := hostOnly(r.Host)
	for _, rt := range t.routes {
		if !hostMatches(rt.Hostnames, host) {
			continue
		}
		for _, ru := range rt.rules {
			if ru.Prompt != nil && ru.matches(r, "") {
				return ru
			}
		}
	}
	return nil
}

func (ru *rule) matches(r *http.Request, model string) bool {
	if len(ru.Matches) == 0 {
		return true
	}
	for _, m := range ru.Matches {
		if m.Model != "" && (model == "" || !matchModel(m.Model, model)) {
			continue
		}
		if m.PathExact != "" && r.URL.Path != m.PathExact {
			continue
		}
		if m.PathPrefix != "" && !pathHasPrefix(r.URL.Path, m.PathPrefix) {
			continue
		}
		ok := true
		for _, h := range m.Headers {
			if r.Header.Get(h.Name) != h.Value {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// pathHasPrefix matches whole path segments: /v1 matches /v1/chat, not /v10.
func pathHasPrefix(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/") || prefix == ""
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return strings.ToLower(host)
	}
	return strings.ToLower(h)
}

// hostMatches supports exact hostnames and a leading "*." wildcard label.
func hostMatches(hostnames []string, host string) bool {
	if len(hostnames) == 0 {
		return true
	}
	for _, h := range hostnames {
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
			return true
		}
	}
	return false
}

// order returns a tier's backends in a weighted random order: the first is
// picked by weight, and the rest follow as retries.
func order(tier []*backend) []*backend {
	out := make([]*backend, 0, len(tier))
	rest := append([]*backend(nil), tier...)
	for len(rest) > 0 {
		total := int64(0)
		for _, b := range rest {
			total += int64(b.weight)
		}
		n := rand.Int64N(total)
		for i, b := range rest {
			if n -= int64(b.weight); n < 0 {
				out = append(out, b)
				rest = append(rest[:i], rest[i+1:]...)
				break
			}
		}
	}
	return out
}
