package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// RegisterWebhooks creates the webhook configurations in a YAML file, each webhook's Service
// clientConfig replaced by baseURL plus the Service's path, with caBundle.
func (h *Harness) RegisterWebhooks(ctx context.Context, path, baseURL string, caBundle []byte) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var probe struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return err
		}
		var obj client.Object
		switch probe.Kind {
		case "":
			continue
		case "MutatingWebhookConfiguration":
			c := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, c); err != nil {
				return err
			}
			for i := range c.Webhooks {
				pointAt(&c.Webhooks[i].ClientConfig, baseURL, caBundle)
			}
			obj = c
		case "ValidatingWebhookConfiguration":
			c := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, c); err != nil {
				return err
			}
			for i := range c.Webhooks {
				pointAt(&c.Webhooks[i].ClientConfig, baseURL, caBundle)
			}
			obj = c
		default:
			return fmt.Errorf("unexpected %s in %s", probe.Kind, path)
		}
		if err := h.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s: %w", probe.Kind, err)
		}
	}
}

func pointAt(cc *admissionregistrationv1.WebhookClientConfig, baseURL string, caBundle []byte) {
	url := baseURL + *cc.Service.Path
	cc.URL, cc.Service, cc.CABundle = &url, nil, caBundle
}
