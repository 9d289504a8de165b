package v1alpha1

import "reflect"

// Money is a non-negative decimal amount of a currency, written as a string
// so that no float ever carries it: "12.50", "0.000125". At most six decimals;
// inside Tollgate it becomes an int64 count of micro-units.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=24
// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]{1,6})?$')",message="must be a decimal amount such as 12.50, with at most 6 decimals"
type Money string

// Currency is an ISO 4217 code such as USD or EUR, or a token symbol such as USDC.
// +kubebuilder:validation:Pattern=`^[A-Z]{3,5}$`
type Currency string

// ObjectName is the name of an object in the same namespace.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
type ObjectName string

// ModelName names a model as clients send it in the request's "model" field.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:Pattern=`^[^\s*]+$`
type ModelName string

// ModelPattern matches request models: an exact name, or a prefix ending in
// "*" ("gpt-4o*", or "*" for every model).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:Pattern=`^\S+$`
// +kubebuilder:validation:XValidation:rule="self.matches('^[^*]*[*]?$')",message="must be a model name, or a prefix ending in a single '*'"
type ModelPattern string

// SectionName names an item in a list so that other objects and status can refer to it.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type SectionName string

// SecretKeyReference points at one key of a Secret in the same namespace.
type SecretKeyReference struct {
	// name is the name of the Secret.
	// +required
	Name ObjectName `json:"name"`

	// key is the key inside the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +required
	Key string `json:"key"`
}

// HTTPHeader is a header name and value.
type HTTPHeader struct {
	// name is the header name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	// +required
	Name string `json:"name"`

	// value is the header value.
	// +kubebuilder:validation:MaxLength=4096
	// +required
	Value string `json:"value"`
}

// Kind names, derived from the types so that they never drift from them.
var (
	ModelProviderKind = reflect.TypeFor[ModelProvider]().Name()
	AIRouteKind       = reflect.TypeFor[AIRoute]().Name()
	TenantKind        = reflect.TypeFor[Tenant]().Name()
	PaymentPolicyKind = reflect.TypeFor[PaymentPolicy]().Name()
	ProxyConfigKind   = reflect.TypeFor[ProxyConfig]().Name()
)

// ControllerName is the GatewayClass controllerName that marks Gateways run by Tollgate.
const ControllerName = "tollgate.dev/gateway-controller"
