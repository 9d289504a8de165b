package translate

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// defaultBaseURLs are the public endpoints of each provider type.
var defaultBaseURLs = map[v1.ProviderType]string{
	v1.ProviderOpenAI:    "https://api.openai.com/v1",
	v1.ProviderAnthropic: "https://api.anthropic.com/v1",
	v1.ProviderGemini:    "https://generativelanguage.googleapis.com/v1beta",
	v1.ProviderMistral:   "https://api.mistral.ai/v1",
	v1.ProviderOllama:    "http://localhost:11434/v1",
}

// DefaultProviderTimeout bounds an upstream call when the provider sets none.
const DefaultProviderTimeout = dataplane.Duration(60_000_000_000)

// ProviderConditions computes Accepted, ResolvedRefs and Ready of a
// ModelProvider. secret is the Secret its auth names, nil if absent.
func ProviderConditions(mp *v1.ModelProvider, secret *corev1.Secret) []metav1.Condition {
	g := mp.Generation
	accepted := providerAccepted(mp)
	refs := providerRefs(mp, secret)
	ready := pass(v1.ReasonReady, "The provider can be routed to.")
	switch {
	case !accepted.ok:
		ready = fail(v1.ReasonNotAccepted, accepted.message)
	case !refs.ok:
		ready = fail(v1.ReasonRefsNotResolved, refs.message)
	}
	return []metav1.Condition{accepted.condition(v1.ConditionAccepted, g), refs.condition(v1.ConditionResolvedRefs, g), ready.condition(v1.ConditionReady, g)}
}

func providerAccepted(mp *v1.ModelProvider) verdict {
	for _, m := range mp.Spec.Models {
		if _, err := modelPrice(m.Pricing); err != nil {
			return fail(v1.ReasonInvalid, fmt.Sprintf("model %s: %v", m.Name, err))
		}
	}
	return pass(v1.ReasonAccepted, "The provider is valid.")
}

func providerRefs(mp *v1.ModelProvider, secret *corev1.Secret) verdict {
	if mp.Spec.Auth == nil {
		return pass(v1.ReasonResolvedRefs, "The provider needs no credentials.")
	}
	ref := mp.Spec.Auth.SecretRef
	return secretKeyVerdict(secret, ref, "credentials")
}

// secretKeyVerdict says whether a Secret exists and holds a non-empty key.
func secretKeyVerdict(secret *corev1.Secret, ref v1.SecretKeyReference, what string) verdict {
	if secret == nil {
		return fail(v1.ReasonSecretNotFound, fmt.Sprintf("Secret %s with the %s does not exist.", ref.Name, what))
	}
	if len(secret.Data[ref.Key]) == 0 {
		return fail(v1.ReasonSecretKeyNotFound, fmt.Sprintf("Secret %s has no key %q with the %s.", ref.Name, ref.Key, what))
	}
	return pass(v1.ReasonResolvedRefs, "Every referenced Secret resolves.")
}

func modelPrice(p *v1.ModelPricing) (dataplane.Price, error) {
	if p == nil {
		return dataplane.Price{}, nil
	}
	var out dataplane.Price
	var err error
	if out.InputPerMillion, err = money.Parse(string(p.InputPerMillion)); err != nil {
		return out, err
	}
	if out.OutputPerMillion, err = money.Parse(string(p.OutputPerMillion)); err != nil {
		return out, err
	}
	out.CachedInputPerMillion = out.InputPerMillion
	if p.CachedInputPerMillion != "" {
		if out.CachedInputPerMillion, err = money.Parse(string(p.CachedInputPerMillion)); err != nil {
			return out, err
		}
	}
	return out, nil
}

// CredentialKey is the key of a provider's API key in the Gateway's credentials Secret.
func CredentialKey(namespace, name string) string { return "provider." + namespace + "." + name }

// provider translates a ModelProvider; it reports false if the provider is not usable.
func provider(mp *v1.ModelProvider, secret *corev1.Secret, creds map[string][]byte) dataplane.Provider {
	out := dataplane.Provider{
		Name:     key(mp.Namespace, mp.Name),
		Type:     string(mp.Spec.Type),
		BaseURL:  mp.Spec.BaseURL,
		Timeout:  DefaultProviderTimeout,
		Currency: string(mp.Spec.Currency),
	}
	if out.BaseURL == "" {
		out.BaseURL = defaultBaseURLs[mp.Spec.Type]
	}
	if out.Currency == "" {
		out.Currency = "USD"
	}
	if mp.Spec.Timeout != nil {
		out.Timeout = dataplane.Duration(mp.Spec.Timeout.Duration)
	}
	if mp.Spec.Azure != nil {
		out.AzureAPIVersion = mp.Spec.Azure.APIVersion
	}
	if mp.Spec.Auth != nil && providerRefs(mp, secret).ok {
		out.CredentialKey = CredentialKey(mp.Namespace, mp.Name)
		creds[out.CredentialKey] = secret.Data[mp.Spec.Auth.SecretRef.Key]
	}
	for _, m := range mp.Spec.Models {
		price, _ := modelPrice(m.Pricing) // providerAccepted rejected bad prices
		out.Models = append(out.Models, dataplane.Model{Name: string(m.Name), Price: price})
	}
	return out
}

func key(namespace, name string) string { return namespace + "/" + name }
