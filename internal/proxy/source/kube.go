package source

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/tollgate-dev/tollgate/internal/dataplane"
)

// Kube watches the Gateway's ConfigMap and credentials Secret through the
// API (the proxy's Role allows reading only those two) and loads the config
// whenever either changes. It runs until ctx ends.
func Kube(ctx context.Context, c *Client, namespace, gateway string, l Loader, log *slog.Logger) {
	cmName, secretName := dataplane.Name(gateway, ""), dataplane.Name(gateway, "-credentials")
	watch := func(resource, name string, obj runtime.Object) cache.SharedIndexInformer {
		lw := cache.NewListWatchFromClient(c.core, resource, namespace, fields.OneTermEqualSelector("metadata.name", name))
		return cache.NewSharedIndexInformer(lw, obj, 10*time.Minute, cache.Indexers{})
	}
	cms := watch("configmaps", cmName, &corev1.ConfigMap{})
	secrets := watch("secrets", secretName, &corev1.Secret{})
	changed := make(chan struct{}, 1)
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { nudge(changed) },
		UpdateFunc: func(any, any) { nudge(changed) },
		DeleteFunc: func(any) { nudge(changed) },
	}
	_, _ = cms.AddEventHandler(poke)
	_, _ = secrets.AddEventHandler(poke)
	go cms.Run(ctx.Done())
	go secrets.Run(ctx.Done())
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			cm, ok := get[*corev1.ConfigMap](cms, namespace, cmName)
			if !ok {
				log.Info("Waiting for the config", "configmap", cmName)
				continue
			}
			creds := map[string][]byte{}
			if s, ok := get[*corev1.Secret](secrets, namespace, secretName); ok {
				creds = s.Data
			}
			load(l, log, []byte(cm.Data[dataplane.ConfigKey]), creds, "configmap/"+cmName)
		}
	}()
}

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func get[T any](inf cache.SharedIndexInformer, ns, name string) (T, bool) {
	var zero T
	obj, ok, err := inf.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return zero, false
	}
	t, ok := obj.(T)
	return t, ok
}

// Heartbeat renews a Lease that says which config hash this proxy serves,
// every period, so that the manager can tell when every live proxy runs the
// current config. The Lease is deleted on shutdown so that a stopped proxy
// stops counting at once.
func Heartbeat(ctx context.Context, c *Client, namespace, gateway, holder string, hash func() string, period time.Duration, log *slog.Logger) {
	name := dataplane.Name(gateway, "-"+holder)
	lease := object{c.coordination, namespace, "leases", name}
	beat := func() error {
		h := hash()
		if h == "" {
			return nil // nothing loaded yet: do not count as a live proxy
		}
		now := metav1.NewMicroTime(time.Now())
		l := &coordinationv1.Lease{}
		err := lease.get(ctx, l)
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
		} else if err != nil {
			return err
		}
		l.Labels = map[string]string{dataplane.LabelHeartbeat: gateway}
		l.Annotations = map[string]string{dataplane.AnnotationConfigHash: h}
		l.Spec.HolderIdentity = ptr.To(holder)
		// Three missed beats and the proxy no longer counts; Leases count in whole seconds.
		l.Spec.LeaseDurationSeconds = ptr.To(int32((3*period + time.Second - 1) / time.Second))
		l.Spec.RenewTime = &now
		if l.ResourceVersion == "" {
			return lease.create(ctx, l)
		}
		return lease.update(ctx, l)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	last := ""
	for {
		if err := beat(); err != nil && ctx.Err() == nil {
			log.Error("Failed to renew the heartbeat Lease", "lease", name, "error", err)
		}
		if h := hash(); h != last {
			last = h
			continue // report a new config at once
		}
		select {
		case <-ctx.Done():
			del, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = lease.delete(del)
			cancel()
			return
		case <-t.C:
		}
	}
}

// ParseGateway splits "namespace/name".
func ParseGateway(s string) (namespace, name string, err error) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' && i > 0 && i < len(s)-1 {
			return s[:i], s[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("--gateway must be namespace/name, got %q", s)
}
