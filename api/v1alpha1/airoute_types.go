package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// AIRouteSpec declares which requests go to which providers, on which Gateways.
type AIRouteSpec struct {
	// parentRefs are the Gateways this route attaches to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +required
	ParentRefs []gwapiv1.ParentReference `json:"parentRefs"`

	// hostnames restricts the route to requests for these hosts. Empty means every host.
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Hostnames []gwapiv1.Hostname `json:"hostnames,omitempty"`

	// rules are tried in order; the first rule whose matches all hold serves the request.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +required
	Rules []AIRouteRule `json:"rules"`

	// access decides which tenants may use this route. Defaults to Open:
	// every tenant that reaches the Gateway.
	// +optional
	Access *RouteAccess `json:"access,omitempty"`
}

// AIRouteRule sends matching requests to one or more backends.
// +kubebuilder:validation:XValidation:rule="!has(self.prompt) || (has(self.matches) && self.matches.exists(m, has(m.path)))",message="a rule with a prompt needs a match with a path: the prompt is served as its own endpoint"
// +kubebuilder:validation:XValidation:rule="self.backendRefs.all(b, self.backendRefs.exists_one(o, o.name == b.name && has(o.model) == has(b.model) && (!has(o.model) || o.model == b.model)))",message="backendRefs must not repeat the same provider and model"
type AIRouteRule struct {
	// name identifies the rule in status, metrics and logs.
	// +required
	Name SectionName `json:"name"`

	// matches select requests; a request matches the rule when any one match
	// holds. No matches means every request.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Matches []AIRouteMatch `json:"matches,omitempty"`

	// backendRefs are the providers that serve the rule. Within the lowest
	// priority tier, requests are spread by weight; higher tiers are fallbacks
	// used when every backend of the tier before failed.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +required
	BackendRefs []AIBackendRef `json:"backendRefs"`

	// retries is how often a failed upstream call is retried (connect errors,
	// 429 and 5xx) before falling back to the next tier.
	// +optional
	Retries *RetryPolicy `json:"retries,omitempty"`

	// timeout bounds the whole request including retries. Defaults to the
	// provider's timeout.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// prompt turns the rule into its own REST endpoint: a POST of JSON
	// variables to the rule's path renders these messages and calls the model.
	// +optional
	Prompt *PromptTemplate `json:"prompt,omitempty"`
}

// AIRouteMatch is a set of conditions that must all hold.
// +kubebuilder:validation:XValidation:rule="has(self.model) || has(self.path) || has(self.headers)",message="a match needs at least one of model, path or headers"
type AIRouteMatch struct {
	// model matches the request's "model": an exact name, or a prefix ending in "*".
	// +optional
	Model *ModelPattern `json:"model,omitempty"`

	// path matches the request path.
	// +optional
	Path *PathMatch `json:"path,omitempty"`

	// headers must all be present with exactly these values.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Headers []HTTPHeader `json:"headers,omitempty"`
}

// PathMatchType is how a path is compared.
// +kubebuilder:validation:Enum=Exact;PathPrefix
type PathMatchType string

// Path match types.
const (
	PathMatchExact      PathMatchType = "Exact"
	PathMatchPathPrefix PathMatchType = "PathPrefix"
)

// PathMatch matches a request path.
type PathMatch struct {
	// type is Exact or PathPrefix. Defaults to PathPrefix.
	// +kubebuilder:default=PathPrefix
	// +optional
	Type PathMatchType `json:"type,omitempty"`

	// value is the path, starting with "/".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="path must start with '/'"
	// +required
	Value string `json:"value"`
}

// AIBackendRef is one provider that can serve a rule.
type AIBackendRef struct {
	// name is the ModelProvider in the route's namespace.
	// +required
	Name ObjectName `json:"name"`

	// model rewrites the request's model before it is sent to this provider.
	// Defaults to the model the client asked for.
	// +optional
	Model *ModelName `json:"model,omitempty"`

	// weight is this backend's share of its priority tier. Defaults to 1; 0 takes it out of rotation.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +kubebuilder:default=1
	// +optional
	Weight *int32 `json:"weight,omitempty"`

	// priority is the fallback tier: 0 is tried first, then 1, and so on.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=9
	// +kubebuilder:default=0
	// +optional
	Priority *int32 `json:"priority,omitempty"`
}

// RetryPolicy bounds retries of failed upstream calls.
type RetryPolicy struct {
	// attempts is the number of retries after the first try.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=5
	// +required
	Attempts int32 `json:"attempts"`

	// backoff is the first wait between tries; it doubles each time. Defaults to 100ms.
	// +optional
	Backoff *metav1.Duration `json:"backoff,omitempty"`
}

// PromptTemplate renders chat messages from JSON variables.
type PromptTemplate struct {
	// system is the system message. It may use {{variables}} too.
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	System string `json:"system,omitempty"`

	// template is the user message, with {{name}} placeholders for the variables.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	// +required
	Template string `json:"template"`

	// variables are the names the POSTed JSON object may carry. A variable
	// without a default is required; a request that lacks it gets a 400.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Variables []PromptVariable `json:"variables,omitempty"`
}

// PromptVariable is one placeholder of a prompt template.
type PromptVariable struct {
	// name is the placeholder's name: {{name}} in the template.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +required
	Name string `json:"name"`

	// default is used when the request does not carry the variable.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Default *string `json:"default,omitempty"`
}

// AccessMode decides whether tenants need approval to use a route.
// +kubebuilder:validation:Enum=Open;ApprovalRequired
type AccessMode string

// Access modes.
const (
	AccessOpen             AccessMode = "Open"
	AccessApprovalRequired AccessMode = "ApprovalRequired"
)

// RouteAccess is the route's approval list.
// +kubebuilder:validation:XValidation:rule="self.mode == 'ApprovalRequired' || !has(self.tenants)",message="tenants may only be listed when mode is ApprovalRequired"
type RouteAccess struct {
	// mode is Open (every tenant) or ApprovalRequired (only the tenants
	// listed here, each of which must also subscribe to the route).
	// +kubebuilder:default=Open
	// +optional
	Mode AccessMode `json:"mode,omitempty"`

	// tenants are the approved Tenants in the route's namespace. Adding a
	// tenant here, through a reviewed change in git, is the approval.
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	// +optional
	Tenants []ObjectName `json:"tenants,omitempty"`
}

// AIRouteStatus is the observed state of an AIRoute, in Gateway API's RouteStatus shape.
type AIRouteStatus struct {
	// parents report, per parent Gateway, whether the route is Accepted and
	// its references resolve (ResolvedRefs).
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Parents []gwapiv1.RouteParentStatus `json:"parents,omitempty"`
}

// AIRoute routes LLM requests by model, path and headers to ModelProviders, on one or more Gateways.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=tollgate,shortName=air
// +kubebuilder:printcolumn:name="Access",type=string,JSONPath=`.spec.access.mode`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.parents[0].conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="ResolvedRefs",type=string,JSONPath=`.status.parents[0].conditions[?(@.type=="ResolvedRefs")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AIRoute struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the route.
	// +required
	Spec AIRouteSpec `json:"spec"`

	// status reports, per parent Gateway, whether the route is accepted and its references resolve.
	// +optional
	Status AIRouteStatus `json:"status,omitzero"`
}

// AIRouteList is a list of AIRoutes.
// +kubebuilder:object:root=true
type AIRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AIRoute `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AIRoute{}, &AIRouteList{})
}
