package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// forEach calls f with every item of a list.
func forEach(l client.ObjectList, f func(client.Object)) error {
	items, err := meta.ExtractList(l)
	if err != nil {
		return err
	}
	for _, it := range items {
		f(it.(client.Object))
	}
	return nil
}
