// Package scheme builds the runtime scheme that the manager, the proxy and
// the tests share: core Kubernetes kinds, Gateway API and tollgate.dev.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	tollgatev1alpha1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
)

// New returns a scheme with every kind Tollgate reads or writes.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(gwapiv1.AddToScheme(s))
	utilruntime.Must(tollgatev1alpha1.AddToScheme(s))
	return s
}
