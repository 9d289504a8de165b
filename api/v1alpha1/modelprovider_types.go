package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProviderType is the wire protocol an upstream LLM API speaks.
// +kubebuilder:validation:Enum=OpenAI;Anthropic;Gemini;Mistral;AzureOpenAI;Ollama;OpenAICompatible
type ProviderType string

// Provider types.
const (
	ProviderOpenAI           ProviderType = "OpenAI"
	ProviderAnthropic        ProviderType = "Anthropic"
	ProviderGemini           ProviderType = "Gemini"
	ProviderMistral          ProviderType = "Mistral"
	ProviderAzureOpenAI      ProviderType = "AzureOpenAI"
	ProviderOllama           ProviderType = "Ollama"
	ProviderOpenAICompatible ProviderType = "OpenAICompatible"
)

// ModelProviderSpec declares an upstream LLM API and the list prices of its models.
// +kubebuilder:validation:XValidation:rule="!(self.type in ['AzureOpenAI', 'OpenAICompatible']) || has(self.baseURL)",message="baseURL is required for types AzureOpenAI and OpenAICompatible"
// +kubebuilder:validation:XValidation:rule="self.type in ['Ollama', 'OpenAICompatible'] || has(self.auth)",message="auth is required for hosted provider types (OpenAI, Anthropic, Gemini, Mistral, AzureOpenAI)"
// +kubebuilder:validation:XValidation:rule="self.type == 'AzureOpenAI' || !has(self.azure)",message="azure may only be set when type is AzureOpenAI"
type ModelProviderSpec struct {
	// type is the API the provider speaks. It decides the request format, the
	// authentication header and the default baseURL.
	// +required
	Type ProviderType `json:"type"`

	// baseURL is the provider's API root, for example https://api.openai.com/v1.
	// Defaults to the public endpoint of the type (Ollama: http://localhost:11434/v1).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="baseURL must be an absolute http or https URL"
	// +optional
	BaseURL string `json:"baseURL,omitempty"`

	// auth names the Secret key that holds the provider's API key. The header
	// it is sent in follows from the type (Authorization, x-api-key, api-key,
	// x-goog-api-key). The key is never logged and never written to status.
	// +optional
	Auth *ProviderAuth `json:"auth,omitempty"`

	// azure holds settings only Azure OpenAI needs.
	// +optional
	Azure *AzureOpenAISettings `json:"azure,omitempty"`

	// timeout bounds one upstream call, headers and body. Defaults to 60s.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// currency of the list prices in models. Defaults to USD.
	// +kubebuilder:default=USD
	// +optional
	Currency Currency `json:"currency,omitempty"`

	// models lists the models this provider serves with their list prices.
	// A model missing here can still be routed to, but is priced at zero
	// unless a PaymentPolicy prices it.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Models []ProviderModel `json:"models,omitempty"`
}

// ProviderAuth is how Tollgate authenticates to the provider.
type ProviderAuth struct {
	// secretRef names the Secret key that holds the API key.
	// +required
	SecretRef SecretKeyReference `json:"secretRef"`
}

// AzureOpenAISettings are the parts of Azure OpenAI's URL scheme that are not in baseURL.
type AzureOpenAISettings struct {
	// apiVersion is sent as the api-version query parameter, for example 2024-10-21.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +required
	APIVersion string `json:"apiVersion"`
}

// ProviderModel is one model of a provider.
type ProviderModel struct {
	// name is the model's name at the provider, for example gpt-4o-mini.
	// +required
	Name ModelName `json:"name"`

	// pricing is the provider's list price for this model.
	// +optional
	Pricing *ModelPricing `json:"pricing,omitempty"`
}

// ModelPricing is a price per million tokens.
type ModelPricing struct {
	// inputPerMillion is the price of one million prompt tokens.
	// +required
	InputPerMillion Money `json:"inputPerMillion"`

	// outputPerMillion is the price of one million completion tokens.
	// +required
	OutputPerMillion Money `json:"outputPerMillion"`

	// cachedInputPerMillion is the price of one million prompt tokens served
	// from the provider's prompt cache. Defaults to inputPerMillion.
	// +optional
	CachedInputPerMillion Money `json:"cachedInputPerMillion,omitempty"`
}

// ModelProviderStatus is the observed state of a ModelProvider.
type ModelProviderStatus struct {
	// conditions: Accepted, ResolvedRefs (the credential Secret and key exist) and Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ModelProvider is an upstream LLM API (OpenAI, Anthropic, Gemini, Mistral,
// Azure OpenAI, Ollama or any OpenAI-compatible server) with its credentials
// and list prices.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=tollgate,shortName=mp
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ModelProvider struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the provider.
	// +required
	Spec ModelProviderSpec `json:"spec"`

	// status is the provider's observed state.
	// +optional
	Status ModelProviderStatus `json:"status,omitzero"`
}

// ModelProviderList is a list of ModelProviders.
// +kubebuilder:object:root=true
type ModelProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ModelProvider `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ModelProvider{}, &ModelProviderList{})
}
