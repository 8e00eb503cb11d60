{{/* Labels of every object: config/webhook's two, plus Helm's. */}}
{{- define "rrguard.labels" -}}
app.kubernetes.io/name: rrguard
app.kubernetes.io/part-of: rrguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "rrguard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The certificate mode in force: certManager, generated or secret. */}}
{{- define "rrguard.certMode" -}}
{{- $mode := .Values.certificates.mode -}}
{{- if eq $mode "auto" -}}
{{- if .Capabilities.APIVersions.Has "cert-manager.io/v1" }}certManager{{ else }}generated{{ end -}}
{{- else if has $mode (list "certManager" "generated" "secret") -}}
{{ $mode }}
{{- else -}}
{{ fail (printf "certificates.mode %q: use auto, certManager, generated or secret" $mode) }}
{{- end -}}
{{- end }}

{{/* The webhooks' Service DNS names, which the serving certificate covers. */}}
{{- define "rrguard.dnsNames" -}}
- rrguard-webhook.{{ .Release.Namespace }}.svc
- rrguard-webhook.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{- define "rrguard.failurePolicy" -}}
{{- if not (has . (list "Fail" "Ignore")) -}}
{{ fail (printf "failurePolicy %q: use Fail or Ignore" .) }}
{{- end -}}
{{ . }}
{{- end }}

{{/* A webhook's clientConfig: the Service, and the CA bundle unless cert-manager injects it. */}}
{{- define "rrguard.clientConfig" -}}
clientConfig:
  service: {name: rrguard-webhook, namespace: {{ .ctx.Release.Namespace }}, path: {{ .path }}, port: 443}
  {{- with .caBundle }}
  caBundle: {{ . | b64enc }}
  {{- end }}
{{- end }}

{{/* Which Node requests reach rrguard: none of kubelets or Calico's own, only those touching Calico. */}}
{{- define "rrguard.nodeConditions" -}}
matchConditions:
  - name: not-a-kubelet
    expression: "!('system:nodes' in request.userInfo.groups)"
  - name: not-calico-itself
    expression: |-
      !(request.userInfo.username in [
        'system:serviceaccount:calico-system:calico-node',
        'system:serviceaccount:kube-system:calico-node',
        'system:serviceaccount:calico-system:calico-kube-controllers',
        'system:serviceaccount:kube-system:calico-kube-controllers'])
  - name: touches-calico
    expression: |-
      request.operation != 'UPDATE' || oldObject == null ||
      (has(object.metadata.labels) ? object.metadata.labels : {}) != (has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}) ||
      (has(object.metadata.annotations) ? object.metadata.annotations : {}).exists(k, k.startsWith('projectcalico.org/') &&
        (!has(oldObject.metadata.annotations) || !(k in oldObject.metadata.annotations) || oldObject.metadata.annotations[k] != object.metadata.annotations[k])) ||
      (has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {}).exists(k, k.startsWith('projectcalico.org/') &&
        (!has(object.metadata.annotations) || !(k in object.metadata.annotations)))
{{- end }}
