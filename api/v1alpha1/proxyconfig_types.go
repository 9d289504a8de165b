package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProxyConfigSpec declares how a Gateway's data plane runs.
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas <= 1 || (has(self.ledger) && self.ledger.type == 'Redis')",message="replicas > 1 needs ledger.type Redis: an Embedded ledger per replica would let tenants overspend"
type ProxyConfigSpec struct {
	// replicas of the proxy Deployment. Defaults to 1. More than one needs a Redis ledger.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// resources of the proxy container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// image of the proxy. Defaults to the manager's own image.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// logging of the proxy.
	// +optional
	Logging *ProxyLogging `json:"logging,omitempty"`

	// deployment is Managed (Tollgate renders the proxy Deployment) or
	// External (no Deployment; proxies run elsewhere and read their config
	// from the API).
	// +kubebuilder:default=Managed
	// +optional
	Deployment DeploymentMode `json:"deployment,omitempty"`

	// ledger is where spend is kept.
	// +optional
	Ledger *LedgerConfig `json:"ledger,omitempty"`

	// maxRequestBodyBytes refuses larger request bodies with 413. Defaults to 4 MiB.
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=67108864
	// +optional
	MaxRequestBodyBytes *int64 `json:"maxRequestBodyBytes,omitempty"`
}

// DeploymentMode is Managed or External.
// +kubebuilder:validation:Enum=Managed;External
type DeploymentMode string

// Deployment modes.
const (
	DeploymentManaged  DeploymentMode = "Managed"
	DeploymentExternal DeploymentMode = "External"
)

// LogLevel is a proxy log level.
// +kubebuilder:validation:Enum=debug;info;warn;error
type LogLevel string

// ProxyLogging configures the proxy's logs.
type ProxyLogging struct {
	// level of the proxy's logs. Defaults to info.
	// +kubebuilder:default=info
	// +optional
	Level LogLevel `json:"level,omitempty"`

	// logPrompts adds prompts and completions to the access log. Off by
	// default: prompts are the tenants' data.
	// +optional
	LogPrompts bool `json:"logPrompts,omitempty"`
}

// LedgerType is Embedded or Redis.
// +kubebuilder:validation:Enum=Embedded;Redis
type LedgerType string

// Ledger types.
const (
	LedgerEmbedded LedgerType = "Embedded"
	LedgerRedis    LedgerType = "Redis"
)

// LedgerConfig says where spend is kept.
// +kubebuilder:validation:XValidation:rule="self.type != 'Redis' || has(self.redis)",message="ledger.type Redis needs ledger.redis"
// +kubebuilder:validation:XValidation:rule="self.type == 'Redis' || !has(self.redis)",message="ledger.redis may only be set when ledger.type is Redis"
type LedgerConfig struct {
	// type is Embedded (a file next to a single proxy: a request's spend is
	// journaled before its answer is sent, which survives the proxy being
	// killed, and committed with fsync within 25ms, which survives the
	// node failing) or Redis (shared by any number of replicas).
	// +kubebuilder:default=Embedded
	// +optional
	Type LedgerType `json:"type,omitempty"`

	// redis is the Redis server of a Redis ledger.
	// +optional
	Redis *RedisLedger `json:"redis,omitempty"`

	// storageSize requests a PersistentVolumeClaim of this size for an
	// Embedded ledger; without it the ledger lives on an emptyDir and spend
	// survives proxy restarts but not Pod deletion.
	// +optional
	StorageSize *resource.Quantity `json:"storageSize,omitempty"`
}

// RedisLedger is a Redis server used as the shared ledger.
type RedisLedger struct {
	// address is host:port of the Redis server.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^\s:]+:[0-9]{1,5}$`
	// +required
	Address string `json:"address"`

	// secretRef holds the Redis password (AUTH), if any.
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`

	// tls connects to Redis over TLS.
	// +optional
	TLS bool `json:"tls,omitempty"`
}

// ProxyConfigStatus is the observed state of a ProxyConfig.
type ProxyConfigStatus struct {
	// conditions: Accepted.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ProxyConfig is how a Gateway's proxies run: replicas, resources, image,
// logging, managed or external deployment and the ledger. A GatewayClass's
// or Gateway's parametersRef points at it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=tollgate,shortName=pxc
// +kubebuilder:printcolumn:name="Deployment",type=string,JSONPath=`.spec.deployment`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ledger",type=string,JSONPath=`.spec.ledger.type`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ProxyConfig struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the data plane.
	// +required
	Spec ProxyConfigSpec `json:"spec"`

	// status says whether the configuration is accepted.
	// +optional
	Status ProxyConfigStatus `json:"status,omitzero"`
}

// ProxyConfigList is a list of ProxyConfigs.
// +kubebuilder:object:root=true
type ProxyConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProxyConfig `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ProxyConfig{}, &ProxyConfigList{})
}
