package source

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// Client is what the proxy asks of the Kubernetes API: ConfigMaps and
// Secrets to read and watch, its usage ConfigMap and its heartbeat Lease.
// It is client-go's REST client over a scheme of only those types: the
// generated clientset would link and register every API group at start,
// which is about 9 MB of the proxy's resident memory.
type Client struct {
	core, coordination rest.Interface
}

// NewClient makes a Client from a REST config.
func NewClient(cfg *rest.Config) (*Client, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, coordinationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	codecs := serializer.NewCodecFactory(scheme)
	client := func(gv schema.GroupVersion, apiPath string) (rest.Interface, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion, c.APIPath = &gv, apiPath
		c.NegotiatedSerializer = codecs.WithoutConversion()
		c.ContentType = runtime.ContentTypeJSON
		if c.UserAgent == "" {
			c.UserAgent = "tollgate-proxy"
		}
		return rest.RESTClientFor(c)
	}
	core, err := client(corev1.SchemeGroupVersion, "/api")
	if err != nil {
		return nil, err
	}
	coordination, err := client(coordinationv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, err
	}
	return &Client{core: core, coordination: coordination}, nil
}

// object is one named object of a resource in a namespace, through one of
// the Client's REST clients.
type object struct {
	rc                        rest.Interface
	namespace, resource, name string
}

func (o object) get(ctx context.Context, into runtime.Object) error {
	return o.rc.Get().Namespace(o.namespace).Resource(o.resource).Name(o.name).Do(ctx).Into(into)
}

func (o object) create(ctx context.Context, obj runtime.Object) error {
	return o.rc.Post().Namespace(o.namespace).Resource(o.resource).Param("fieldManager", fieldManager).Body(obj).Do(ctx).Error()
}

func (o object) update(ctx context.Context, obj runtime.Object) error {
	return o.rc.Put().Namespace(o.namespace).Resource(o.resource).Name(o.name).Param("fieldManager", fieldManager).Body(obj).Do(ctx).Error()
}

func (o object) delete(ctx context.Context) error {
	return o.rc.Delete().Namespace(o.namespace).Resource(o.resource).Name(o.name).Do(ctx).Error()
}

// fieldManager names the proxy in the objects it writes.
const fieldManager = "tollgate-proxy"
