package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// PaymentPolicySpec declares what a tenant must pay and what the 402 says when it has not.
// +kubebuilder:validation:XValidation:rule="has(self.targetRefs) || has(self.targetSelector)",message="a PaymentPolicy needs targetRefs or a targetSelector"
// +kubebuilder:validation:XValidation:rule="(has(self.prepaid) && self.prepaid) || has(self.budget) || has(self.payPerRequest)",message="a PaymentPolicy must require something: prepaid, budget or payPerRequest"
// +kubebuilder:validation:XValidation:rule="!has(self.paymentRequired) || !has(self.paymentRequired.x402) || has(self.payPerRequest) || (has(self.prepaid) && self.prepaid)",message="paymentRequired.x402 needs something payable: payPerRequest, or prepaid so that a payment tops up the balance"
// +kubebuilder:validation:XValidation:rule="!has(self.payPerRequest) || (has(self.paymentRequired) && has(self.paymentRequired.x402))",message="payPerRequest needs paymentRequired.x402: it says how each request is paid"
// +kubebuilder:validation:XValidation:rule="!has(self.softLimits) || has(self.budget) || (has(self.prepaid) && self.prepaid)",message="softLimits need a budget or a prepaid balance to be a percentage of"
type PaymentPolicySpec struct {
	// targetRefs attach the policy to Tenants, AIRoutes (tollgate.dev) or
	// Gateways (gateway.networking.k8s.io) in the policy's namespace.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(r, (r.group == 'tollgate.dev' && (r.kind == 'Tenant' || r.kind == 'AIRoute')) || (r.group == 'gateway.networking.k8s.io' && r.kind == 'Gateway'))",message="targetRefs may only name Tenant or AIRoute (group tollgate.dev) or Gateway (group gateway.networking.k8s.io)"
	// +kubebuilder:validation:XValidation:rule="self.all(r1, self.exists_one(r2, r1.group == r2.group && r1.kind == r2.kind && r1.name == r2.name))",message="targetRefs must be unique"
	// +optional
	TargetRefs []gwapiv1.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs,omitempty"`

	// targetSelector applies the policy to every Tenant in the namespace whose
	// labels match, so that one policy can act as a plan for many tenants.
	// +optional
	TargetSelector *metav1.LabelSelector `json:"targetSelector,omitempty"`

	// mode is Enforce, or DryRun: record and mark what would have been
	// refused (x-tollgate-dry-run header) and refuse nothing.
	// +kubebuilder:default=Enforce
	// +optional
	Mode PolicyMode `json:"mode,omitempty"`

	// currency of every amount in this policy. Defaults to USD.
	// +kubebuilder:default=USD
	// +optional
	Currency Currency `json:"currency,omitempty"`

	// pricing overrides the providers' list prices for requests under this policy.
	// +optional
	Pricing *PolicyPricing `json:"pricing,omitempty"`

	// prepaid draws each request from the tenant's credits and refuses with
	// 402 when the balance cannot cover it.
	// +optional
	Prepaid bool `json:"prepaid,omitempty"`

	// budget caps spend per window.
	// +optional
	Budget *Budget `json:"budget,omitempty"`

	// payPerRequest requires every request to carry an x402 payment of this price.
	// +optional
	PayPerRequest *PayPerRequest `json:"payPerRequest,omitempty"`

	// admission is Reserve: hold the request's maximum cost (prompt estimate
	// plus max_tokens at the output price) before forwarding and settle the
	// real cost after, so concurrent requests can never overspend; or Settle:
	// admit while there is money left and charge afterwards only.
	// +kubebuilder:default=Reserve
	// +optional
	Admission AdmissionMode `json:"admission,omitempty"`

	// failureMode says what happens when the ledger cannot be reached:
	// FailClosed refuses (503), FailOpen lets requests through unmetered.
	// +kubebuilder:default=FailClosed
	// +optional
	FailureMode FailureMode `json:"failureMode,omitempty"`

	// softLimits are percentages of the budget or balance; crossing one
	// raises a Kubernetes Event and an x-tollgate-warning header.
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	// +optional
	SoftLimits []int32 `json:"softLimits,omitempty"`

	// paymentRequired declares the 402 this policy answers with.
	// +optional
	PaymentRequired *PaymentRequired `json:"paymentRequired,omitempty"`
}

// PolicyMode is Enforce or DryRun.
// +kubebuilder:validation:Enum=Enforce;DryRun
type PolicyMode string

// Policy modes.
const (
	PolicyEnforce PolicyMode = "Enforce"
	PolicyDryRun  PolicyMode = "DryRun"
)

// AdmissionMode is Reserve or Settle.
// +kubebuilder:validation:Enum=Reserve;Settle
type AdmissionMode string

// Admission modes.
const (
	AdmissionReserve AdmissionMode = "Reserve"
	AdmissionSettle  AdmissionMode = "Settle"
)

// FailureMode is FailClosed or FailOpen.
// +kubebuilder:validation:Enum=FailClosed;FailOpen
type FailureMode string

// Failure modes.
const (
	FailClosed FailureMode = "FailClosed"
	FailOpen   FailureMode = "FailOpen"
)

// PolicyPricing overrides list prices.
type PolicyPricing struct {
	// markupPercent is added on top of every price, for example "20" or "12.5".
	// +optional
	MarkupPercent Money `json:"markupPercent,omitempty"`

	// models are per-model prices that replace the provider's list price.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Models []PolicyModelPrice `json:"models,omitempty"`
}

// PolicyModelPrice is the price of one model under a policy.
// +kubebuilder:validation:XValidation:rule="has(self.inputPerMillion) || has(self.outputPerMillion) || has(self.perRequest)",message="a model price needs inputPerMillion, outputPerMillion or perRequest"
type PolicyModelPrice struct {
	// name is the model, exact or a prefix ending in "*".
	// +required
	Name ModelPattern `json:"name"`

	// inputPerMillion is the price of one million prompt tokens.
	// +optional
	InputPerMillion Money `json:"inputPerMillion,omitempty"`

	// outputPerMillion is the price of one million completion tokens.
	// +optional
	OutputPerMillion Money `json:"outputPerMillion,omitempty"`

	// cachedInputPerMillion is the price of one million cached prompt tokens.
	// +optional
	CachedInputPerMillion Money `json:"cachedInputPerMillion,omitempty"`

	// perRequest is a flat price added to every request.
	// +optional
	PerRequest Money `json:"perRequest,omitempty"`
}

// Budget caps spend in a window.
type Budget struct {
	// limit is the most a tenant may spend in one window.
	// +required
	Limit Money `json:"limit"`

	// window is a calendar period in a time zone, or a rolling duration.
	// +required
	Window BudgetWindow `json:"window"`
}

// CalendarPeriod is a calendar window.
// +kubebuilder:validation:Enum=Day;Week;Month;Quarter
type CalendarPeriod string

// Calendar periods.
const (
	CalendarDay     CalendarPeriod = "Day"
	CalendarWeek    CalendarPeriod = "Week"
	CalendarMonth   CalendarPeriod = "Month"
	CalendarQuarter CalendarPeriod = "Quarter"
)

// BudgetWindow is exactly one of a calendar period or a rolling duration.
// +kubebuilder:validation:XValidation:rule="has(self.calendar) != has(self.rolling)",message="window needs exactly one of calendar or rolling"
// +kubebuilder:validation:XValidation:rule="!has(self.timezone) || has(self.calendar)",message="timezone applies only to calendar windows"
type BudgetWindow struct {
	// calendar resets the budget at the start of each Day, Week (Monday),
	// Month or Quarter in timezone.
	// +optional
	Calendar CalendarPeriod `json:"calendar,omitempty"`

	// timezone is an IANA time zone such as Europe/Paris. Defaults to UTC.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z][-+_/A-Za-z0-9]*$`
	// +optional
	Timezone string `json:"timezone,omitempty"`

	// rolling counts spend over the trailing duration, for example 24h.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('2208h')",message="rolling must be between 1m and 92 days"
	// +optional
	Rolling *metav1.Duration `json:"rolling,omitempty"`
}

// PayPerRequest is a flat price per request, paid with x402.
type PayPerRequest struct {
	// price of one request.
	// +required
	Price Money `json:"price"`
}

// PaymentRequired is the 402 a policy answers with.
type PaymentRequired struct {
	// message is the human text of the error. Defaults to a message that names the shortfall.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`

	// code is the machine-readable error code clients branch on. Defaults to payment_required.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9_.-]*$`
	// +optional
	Code string `json:"code,omitempty"`

	// topUpURL is where the tenant can add credit.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="topUpURL must be an absolute http or https URL"
	// +optional
	TopUpURL string `json:"topUpURL,omitempty"`

	// headers are added to the 402 response.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Headers []HTTPHeader `json:"headers,omitempty"`

	// x402 makes the 402 payable with the x402 protocol (v2).
	// +optional
	X402 *X402 `json:"x402,omitempty"`
}

// X402 declares how a request can be paid with x402.
type X402 struct {
	// accepts are the payment options offered in the PAYMENT-REQUIRED header.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +required
	Accepts []X402PaymentOption `json:"accepts"`

	// facilitator verifies and settles payments.
	// +required
	Facilitator X402Facilitator `json:"facilitator"`
}

// X402PaymentOption is one entry of x402's accepts list; the amount follows from the price.
type X402PaymentOption struct {
	// scheme is the x402 scheme, for example exact.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:default=exact
	// +optional
	Scheme string `json:"scheme,omitempty"`

	// network is a CAIP-2 chain id, for example eip155:8453 (Base) or eip155:84532 (Base Sepolia).
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$')",message="network must be a CAIP-2 chain id such as eip155:8453"
	// +required
	Network string `json:"network"`

	// asset is the token contract address or identifier.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +required
	Asset string `json:"asset"`

	// decimals of the asset: the price is sent as an amount of atomic units,
	// price x 10^decimals. Defaults to 6 (USDC).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=18
	// +kubebuilder:default=6
	// +optional
	Decimals *int32 `json:"decimals,omitempty"`

	// payTo is the address that receives the payment.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +required
	PayTo string `json:"payTo"`

	// maxTimeoutSeconds is how long the payment may take to settle.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	// +kubebuilder:default=60
	// +optional
	MaxTimeoutSeconds int32 `json:"maxTimeoutSeconds,omitempty"`

	// extra is passed through as the scheme's extra object, for example the
	// token's EIP-712 name and version.
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Extra *apiextensionsv1.JSON `json:"extra,omitempty"`
}

// X402Facilitator is the service that verifies and settles x402 payments.
type X402Facilitator struct {
	// url is the facilitator's root; Tollgate calls url/verify and url/settle.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="facilitator url must be an absolute http or https URL"
	// +required
	URL string `json:"url"`

	// secretRef holds a bearer token for the facilitator, if it needs one.
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`
}

// PaymentPolicyStatus is the observed state of a PaymentPolicy.
type PaymentPolicyStatus struct {
	// ancestors report, per Gateway, whether the policy is accepted there (GEP-713).
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Ancestors []gwapiv1.PolicyAncestorStatus `json:"ancestors,omitempty"`

	// conditions: Accepted, ResolvedRefs and Enforced.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// tenantCount is how many tenants the policy applies to.
	// +optional
	TenantCount int32 `json:"tenantCount,omitempty"`

	// topTenants summarises spend of the tenants that spent most under this
	// policy; never one entry per request or per key.
	// +listType=map
	// +listMapKey=tenant
	// +kubebuilder:validation:MaxItems=10
	// +optional
	TopTenants []TenantSpend `json:"topTenants,omitempty"`

	// observedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// TenantSpend is one tenant's spend under a policy.
type TenantSpend struct {
	// tenant is the Tenant's name.
	// +required
	Tenant ObjectName `json:"tenant"`

	// spent in the current window.
	// +required
	Spent Money `json:"spent"`

	// remaining before the policy refuses.
	// +optional
	Remaining Money `json:"remaining,omitempty"`

	// requests counted in the window.
	// +optional
	Requests int64 `json:"requests,omitempty"`
}

// PaymentPolicy is a Gateway API direct policy (GEP-713) that prices
// requests, meters them per tenant, and answers HTTP 402 exactly as declared.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=tollgate,shortName=pp
// +kubebuilder:metadata:labels="gateway.networking.k8s.io/policy=Direct"
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Enforced",type=string,JSONPath=`.status.conditions[?(@.type=="Enforced")].status`
// +kubebuilder:printcolumn:name="Tenants",type=integer,JSONPath=`.status.tenantCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PaymentPolicy struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the policy.
	// +required
	Spec PaymentPolicySpec `json:"spec"`

	// status reports acceptance per Gateway, enforcement and the top spenders.
	// +optional
	Status PaymentPolicyStatus `json:"status,omitzero"`
}

// PaymentPolicyList is a list of PaymentPolicies.
// +kubebuilder:object:root=true
type PaymentPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PaymentPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PaymentPolicy{}, &PaymentPolicyList{})
}
