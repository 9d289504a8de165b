package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TenantSpec declares a team or customer: its keys, what it may use and its prepaid credits.
type TenantSpec struct {
	// displayName is a human name for dashboards and 402 messages.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	DisplayName string `json:"displayName,omitempty"`

	// apiKeys are the tenant's keys. A key whose Secret does not exist is
	// generated into it. The proxy only sees SHA-256 hashes, and status only
	// a short fingerprint.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	APIKeys []TenantAPIKey `json:"apiKeys,omitempty"`

	// allowedModels limits the models the tenant may call: exact names or
	// prefixes ending in "*". Empty means every model its routes serve.
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +optional
	AllowedModels []ModelPattern `json:"allowedModels,omitempty"`

	// suspended refuses every request of the tenant with 403 while true.
	// +optional
	Suspended bool `json:"suspended,omitempty"`

	// subscriptions are the AIRoutes with access mode ApprovalRequired that
	// the tenant asks to use. Each becomes usable once the route lists the tenant.
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +optional
	Subscriptions []ObjectName `json:"subscriptions,omitempty"`

	// credits are prepaid grants. The balance is the sum of live grants minus
	// spend. A grant is counted once by its id, so re-applying is harmless.
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Credits []CreditGrant `json:"credits,omitempty"`
}

// TenantAPIKey is one API key of a tenant.
type TenantAPIKey struct {
	// name identifies the key in status and logs.
	// +required
	Name SectionName `json:"name"`

	// secretRef is where the key lives. If the Secret does not exist, a random
	// key is generated into it and the Secret is owned by the Tenant.
	// +required
	SecretRef SecretKeyReference `json:"secretRef"`
}

// CreditGrant is a prepaid amount added to the tenant's balance.
type CreditGrant struct {
	// id makes the grant idempotent: the same id is counted once.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][-._A-Za-z0-9]*$`
	// +required
	ID string `json:"id"`

	// amount is the credit, in the currency of the policies that draw from it.
	// +required
	Amount Money `json:"amount"`

	// expiresAt is when what is left of the grant stops counting.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// SubscriptionState says whether a route approved a tenant's subscription.
// +kubebuilder:validation:Enum=Approved;Pending
type SubscriptionState string

// Subscription states.
const (
	SubscriptionApproved SubscriptionState = "Approved"
	SubscriptionPending  SubscriptionState = "Pending"
)

// TenantStatus is the observed state of a Tenant.
type TenantStatus struct {
	// conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// keys are fingerprints of the tenant's keys, never the keys.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Keys []KeyStatus `json:"keys,omitempty"`

	// subscriptions says, for each requested route, whether it is approved.
	// +listType=map
	// +listMapKey=route
	// +kubebuilder:validation:MaxItems=128
	// +optional
	Subscriptions []SubscriptionStatus `json:"subscriptions,omitempty"`

	// usage is the tenant's metered spend, updated from the ledger.
	// +optional
	Usage *TenantUsage `json:"usage,omitempty"`

	// observedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// KeyStatus shows which key is which without showing the key.
type KeyStatus struct {
	// name is the key's name from spec.apiKeys.
	// +required
	Name SectionName `json:"name"`

	// fingerprint is the first 12 hex digits of the key's SHA-256.
	// +kubebuilder:validation:MaxLength=64
	// +required
	Fingerprint string `json:"fingerprint"`
}

// SubscriptionStatus is the state of one requested route.
type SubscriptionStatus struct {
	// route is the AIRoute's name.
	// +required
	Route ObjectName `json:"route"`

	// state is Approved once the route lists the tenant, Pending until then.
	// +required
	State SubscriptionState `json:"state"`
}

// TenantUsage is the tenant's spend as the ledger counts it.
type TenantUsage struct {
	// currency of spent and remaining.
	// +optional
	Currency Currency `json:"currency,omitempty"`

	// spent in the current window (or since the first grant, for prepaid balances).
	// +optional
	Spent Money `json:"spent,omitempty"`

	// remaining is what the tenant can still spend: its prepaid balance, or
	// what is left of its tightest budget.
	// +optional
	Remaining Money `json:"remaining,omitempty"`

	// requests counted.
	// +optional
	Requests int64 `json:"requests,omitempty"`

	// inputTokens counted.
	// +optional
	InputTokens int64 `json:"inputTokens,omitempty"`

	// outputTokens counted.
	// +optional
	OutputTokens int64 `json:"outputTokens,omitempty"`

	// windowStart is the start of the current budget window.
	// +optional
	WindowStart *metav1.Time `json:"windowStart,omitempty"`

	// updatedAt is when these figures were read from the ledger.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`
}

// Tenant is a team or customer of the gateway: its API keys, its wallet and its visible spend.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=tollgate,shortName=tn
// +kubebuilder:printcolumn:name="Display",type=string,JSONPath=`.spec.displayName`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Spent",type=string,JSONPath=`.status.usage.spent`
// +kubebuilder:printcolumn:name="Remaining",type=string,JSONPath=`.status.usage.remaining`
// +kubebuilder:printcolumn:name="Currency",type=string,JSONPath=`.status.usage.currency`
// +kubebuilder:printcolumn:name="Requests",type=integer,JSONPath=`.status.usage.requests`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspended`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Tenant struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the tenant.
	// +required
	Spec TenantSpec `json:"spec"`

	// status shows readiness, key fingerprints, subscriptions and usage.
	// +optional
	Status TenantStatus `json:"status,omitzero"`
}

// TenantList is a list of Tenants.
// +kubebuilder:object:root=true
type TenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Tenant `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Tenant{}, &TenantList{})
}
