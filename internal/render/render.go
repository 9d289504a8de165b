// Package render is pure: it turns a Gateway's translated config into the
// Kubernetes objects that run its proxies, as server-side apply
// configurations. Everything it renders carries the Gateway's labels and an
// owner reference, so that it is garbage-collected with the Gateway and can
// be pruned when no longer wanted.
package render

import (
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

// Label keys on every rendered object.
const (
	LabelGateway   = "gateway.networking.k8s.io/gateway-name"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelName      = "app.kubernetes.io/name"
	ManagedBy      = "tollgate"

	// LabelUsage marks usage ConfigMaps, which the manager reads into status.
	LabelUsage = "tollgate.dev/usage"
	// AdminPort serves health, readiness and metrics, apart from traffic.
	AdminPort = 9901
	// LedgerDir holds the Embedded ledger file.
	LedgerDir = "/var/lib/tollgate"
)

// Input is what rendering needs.
type Input struct {
	GatewayName      string
	GatewayNamespace string
	GatewayUID       types.UID
	// Image is the proxy image when the ProxyConfig names none.
	Image       string
	ProxyConfig *v1.ProxyConfig // nil: defaults
	Config      *dataplane.Config
	ConfigJSON  []byte
	Credentials map[string][]byte
}

// Objects are the rendered objects of one Gateway.
type Objects struct {
	ServiceAccount *corev1ac.ServiceAccountApplyConfiguration
	// Usage is the ConfigMap the proxies write their usage report into; the
	// manager creates it and owns no data in it.
	Usage       *corev1ac.ConfigMapApplyConfiguration
	Role        *rbacv1ac.RoleApplyConfiguration
	RoleBinding *rbacv1ac.RoleBindingApplyConfiguration
	ConfigMap   *corev1ac.ConfigMapApplyConfiguration
	Secret      *corev1ac.SecretApplyConfiguration
	// Deployment, Service and PVC are nil when not wanted (External deployment, no storage).
	Deployment *appsv1ac.DeploymentApplyConfiguration
	Service    *corev1ac.ServiceApplyConfiguration
	PVC        *corev1ac.PersistentVolumeClaimApplyConfiguration
}

// Labels select the objects rendered for a Gateway.
func Labels(gateway string) map[string]string {
	return map[string]string{LabelGateway: gateway, LabelManagedBy: ManagedBy, LabelName: "tollgate-proxy"}
}

// Render renders the objects of one Gateway.
func Render(in Input) Objects {
	name := dataplane.Name(in.GatewayName, "")
	ns := in.GatewayNamespace
	pc := in.ProxyConfig
	if pc == nil {
		pc = &v1.ProxyConfig{}
	}
	owner := metav1ac.OwnerReference().WithAPIVersion("gateway.networking.k8s.io/v1").WithKind("Gateway").
		WithName(in.GatewayName).WithUID(in.GatewayUID).WithController(true).WithBlockOwnerDeletion(true)
	meta := func(n string) (string, string, map[string]string, *metav1ac.OwnerReferenceApplyConfiguration) {
		return n, ns, Labels(in.GatewayName), owner
	}
	o := Objects{}

	n, _, labels, ref := meta(name)
	o.ServiceAccount = corev1ac.ServiceAccount(n, ns).WithLabels(labels).WithOwnerReferences(ref)

	o.ConfigMap = corev1ac.ConfigMap(n, ns).WithLabels(labels).WithOwnerReferences(ref).
		WithAnnotations(map[string]string{dataplane.AnnotationConfigHash: in.Config.Hash}).
		WithData(map[string]string{dataplane.ConfigKey: string(in.ConfigJSON)})

	usageLabels := Labels(in.GatewayName)
	usageLabels[LabelUsage] = "true"
	o.Usage = corev1ac.ConfigMap(dataplane.Name(in.GatewayName, "-usage"), ns).WithLabels(usageLabels).WithOwnerReferences(ref)

	secretName := dataplane.Name(in.GatewayName, "-credentials")
	o.Secret = corev1ac.Secret(secretName, ns).WithLabels(labels).WithOwnerReferences(ref).
		WithType(corev1.SecretTypeOpaque).WithData(maps.Clone(in.Credentials))

	// The proxy reads only its own config and credentials, and heartbeats Leases.
	o.Role = rbacv1ac.Role(n, ns).WithLabels(labels).WithOwnerReferences(ref).WithRules(
		rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("configmaps").WithResourceNames(n).WithVerbs("get", "list", "watch"),
		rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("configmaps").WithResourceNames(dataplane.Name(in.GatewayName, "-usage")).WithVerbs("get", "update", "patch"),
		rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("secrets").WithResourceNames(secretName).WithVerbs("get", "list", "watch"),
		rbacv1ac.PolicyRule().WithAPIGroups("coordination.k8s.io").WithResources("leases").WithVerbs("get", "create", "update"),
	)
	o.RoleBinding = rbacv1ac.RoleBinding(n, ns).WithLabels(labels).WithOwnerReferences(ref).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("Role").WithName(n)).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(n).WithNamespace(ns))

	if pc.Spec.Deployment == v1.DeploymentExternal {
		return o
	}
	embedded := in.Config.Ledger.Type == string(v1.LedgerEmbedded)
	if embedded && pc.Spec.Ledger != nil && pc.Spec.Ledger.StorageSize != nil {
		o.PVC = corev1ac.PersistentVolumeClaim(dataplane.Name(in.GatewayName, "-ledger"), ns).WithLabels(labels).WithOwnerReferences(ref).
			WithSpec(corev1ac.PersistentVolumeClaimSpec().WithAccessModes(corev1.ReadWriteOnce).
				WithResources(corev1ac.VolumeResourceRequirements().WithRequests(corev1.ResourceList{corev1.ResourceStorage: *pc.Spec.Ledger.StorageSize})))
	}
	o.Deployment = deployment(in, pc, name, labels, ref, o.PVC != nil)
	o.Service = service(in, name, labels, ref)
	return o
}

func deployment(in Input, pc *v1.ProxyConfig, name string, labels map[string]string, ref *metav1ac.OwnerReferenceApplyConfiguration, pvc bool) *appsv1ac.DeploymentApplyConfiguration {
	image := in.Image
	if pc.Spec.Image != "" {
		image = pc.Spec.Image
	}
	container := corev1ac.Container().WithName("proxy").WithImage(image).WithCommand("/proxy").
		WithArgs("--gateway="+in.GatewayNamespace+"/"+in.GatewayName, "--admin-address=:9901", "--ledger-dir="+LedgerDir).
		WithEnv(
			corev1ac.EnvVar().WithName("POD_NAME").WithValueFrom(corev1ac.EnvVarSource().WithFieldRef(corev1ac.ObjectFieldSelector().WithFieldPath("metadata.name"))),
			corev1ac.EnvVar().WithName("POD_NAMESPACE").WithValueFrom(corev1ac.EnvVarSource().WithFieldRef(corev1ac.ObjectFieldSelector().WithFieldPath("metadata.namespace"))),
		).
		WithPorts(corev1ac.ContainerPort().WithName("admin").WithContainerPort(AdminPort)).
		WithReadinessProbe(corev1ac.Probe().WithHTTPGet(corev1ac.HTTPGetAction().WithPath("/readyz").WithPort(intstr.FromString("admin"))).WithPeriodSeconds(5)).
		WithLivenessProbe(corev1ac.Probe().WithHTTPGet(corev1ac.HTTPGetAction().WithPath("/healthz").WithPort(intstr.FromString("admin"))).WithPeriodSeconds(10)).
		WithSecurityContext(corev1ac.SecurityContext().WithAllowPrivilegeEscalation(false).WithReadOnlyRootFilesystem(true).
			WithRunAsNonRoot(true).WithCapabilities(corev1ac.Capabilities().WithDrop("ALL"))).
		WithVolumeMounts(corev1ac.VolumeMount().WithName("ledger").WithMountPath(LedgerDir), corev1ac.VolumeMount().WithName("tmp").WithMountPath("/tmp"))
	for _, l := range in.Config.Listeners {
		container.WithPorts(corev1ac.ContainerPort().WithName(portName(l.Name)).WithContainerPort(l.Port))
	}
	if r := pc.Spec.Resources; r != nil {
		container.WithResources(corev1ac.ResourceRequirements().WithRequests(r.Requests).WithLimits(r.Limits))
	} else {
		container.WithResources(corev1ac.ResourceRequirements().WithRequests(corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}))
	}
	ledger := corev1ac.Volume().WithName("ledger").WithEmptyDir(corev1ac.EmptyDirVolumeSource())
	strategy := appsv1ac.DeploymentStrategy().WithType("RollingUpdate").
		WithRollingUpdate(appsv1ac.RollingUpdateDeployment().WithMaxUnavailable(intstr.FromInt32(0)).WithMaxSurge(intstr.FromInt32(1)))
	if pvc {
		ledger = corev1ac.Volume().WithName("ledger").WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(dataplane.Name(in.GatewayName, "-ledger")))
		// A ReadWriteOnce ledger volume cannot be shared by an old and a new Pod.
		strategy = appsv1ac.DeploymentStrategy().WithType("Recreate")
	}
	replicas := int32(1)
	if pc.Spec.Replicas != nil {
		replicas = *pc.Spec.Replicas
	}
	return appsv1ac.Deployment(name, in.GatewayNamespace).WithLabels(labels).WithOwnerReferences(ref).
		WithSpec(appsv1ac.DeploymentSpec().WithReplicas(replicas).WithStrategy(strategy).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
			WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labels).WithSpec(corev1ac.PodSpec().
				WithServiceAccountName(name).
				WithTerminationGracePeriodSeconds(30).
				WithSecurityContext(corev1ac.PodSecurityContext().WithRunAsNonRoot(true).WithRunAsUser(65532).WithRunAsGroup(65532).
					WithFSGroup(65532).WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
				WithContainers(container).
				WithVolumes(ledger, corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource().WithMedium(corev1.StorageMediumMemory))))))
}

func service(in Input, name string, labels map[string]string, ref *metav1ac.OwnerReferenceApplyConfiguration) *corev1ac.ServiceApplyConfiguration {
	spec := corev1ac.ServiceSpec().WithType(corev1.ServiceTypeClusterIP).WithSelector(labels)
	for _, l := range in.Config.Listeners {
		spec.WithPorts(corev1ac.ServicePort().WithName(portName(l.Name)).WithProtocol(corev1.ProtocolTCP).
			WithPort(l.GatewayPort).WithTargetPort(intstr.FromInt32(l.Port)))
	}
	return corev1ac.Service(name, in.GatewayNamespace).WithLabels(labels).WithOwnerReferences(ref).WithSpec(spec)
}

// portName keeps port names within the 15 characters Kubernetes allows.
func portName(listener string) string {
	if len(listener) > 15 {
		return strings.TrimRight(listener[:15], "-")
	}
	return listener
}
