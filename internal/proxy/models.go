package proxy

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// models answers /v1/models with the models this tenant may call: exact
// names its routes match or rewrite to, and the listed models of providers
// behind prefix matches.
func (s *Server) models(w http.ResponseWriter, x *exchange, t *table) {
	owner := map[string]string{}
	add := func(model, by string) {
		if model != "" && !strings.HasSuffix(model, "*") && x.tenant.allows(model) {
			if _, ok := owner[model]; !ok {
				owner[model] = by
			}
		}
	}
	for _, rt := range t.routes {
		if rt.ApprovalRequired && !rt.approved[x.tenant.Name] {
			continue
		}
		for _, ru := range rt.rules {
			if ru.Prompt != nil {
				continue
			}
			for _, m := range ru.Matches {
				if m.Model != "" && !strings.HasSuffix(m.Model, "*") {
					add(m.Model, firstProvider(ru))
				}
			}
			for _, tier := range ru.tiers {
				for _, b := range tier {
					for _, pm := range b.up.Models {
						if ruleServes(ru, pm.Name) {
							add(pm.Name, b.up.Name)
						}
					}
				}
			}
		}
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	out := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, id := range slices.Sorted(maps.Keys(owner)) {
		out.Data = append(out.Data, model{ID: id, Object: "model", OwnedBy: owner[id]})
	}
	x.status = http.StatusOK
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// ruleServes says whether a rule's model matches admit a model name.
func ruleServes(ru *rule, model string) bool {
	if len(ru.Matches) == 0 {
		return true
	}
	for _, m := range ru.Matches {
		if m.Model != "" && matchModel(m.Model, model) && m.PathExact == "" && m.PathPrefix == "" && len(m.Headers) == 0 {
			return true
		}
	}
	return false
}

func firstProvider(ru *rule) string {
	for _, tier := range ru.tiers {
		for _, b := range tier {
			return b.up.Name
		}
	}
	return ""
}
