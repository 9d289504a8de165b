// Package controller holds one thin reconciler per kind. Reconcilers only do
// I/O: they gather a snapshot, call the pure translate and render packages,
// apply the result with server-side apply and write statuses.
package controller

// The manager's permissions, least privilege: it reads the Tollgate and
// Gateway API kinds, writes only their status, and owns the proxy objects it
// renders. Leases are read for proxy heartbeats, and written by leader
// election; a Role that lets proxies heartbeat can only be granted by a
// manager that holds those verbs itself.
//
// +kubebuilder:rbac:groups=tollgate.dev,resources=modelproviders;airoutes;tenants;paymentpolicies;proxyconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=tollgate.dev,resources=modelproviders/status;airoutes/status;tenants/status;paymentpolicies/status;proxyconfigs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses;gateways,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses/status;gateways/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps;services;serviceaccounts;persistentvolumeclaims,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch
