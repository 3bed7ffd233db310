{{/*
Names are fixed, not derived from the release name: the CA, the webhook and the injector agree on
them (CONTRACT.md), and the cluster-scoped objects (webhook configuration, ClusterRole) allow one
Tollgate per cluster anyway.
*/}}

{{/* Labels on every object. */}}
{{- define "tollgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: tollgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tollgate
{{- end }}

{{/* Labels that select the CA pods (Deployment selector, Service, PDB, anti-affinity, NetworkPolicy). */}}
{{- define "tollgate.caSelectorLabels" -}}
app.kubernetes.io/name: tollgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ca
{{- end }}

{{/* Labels of the CA's objects: the common ones plus the component. */}}
{{- define "tollgate.caLabels" -}}
{{ include "tollgate.labels" . }}
app.kubernetes.io/component: ca
{{- end }}

{{/* The one image of CA, webhook and sidecar. */}}
{{- define "tollgate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* DNS names of the webhook's serving certificate (the Service as the API server calls it). */}}
{{- define "tollgate.webhookDnsNames" -}}
tollgate-ca.{{ .Release.Namespace }}.svc,tollgate-ca.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{/* Namespaces the webhook never sees (the injector also refuses them itself). */}}
{{- define "tollgate.excludedNamespaces" -}}
- kube-system
- kube-public
- kube-node-lease
- {{ .Release.Namespace }}
{{- end }}

{{/* A NetworkPolicy ingress rule: the port, and its sources unless the list is empty (= any source). */}}
{{- define "tollgate.ingressRule" -}}
- ports:
    - port: {{ .port }}
      protocol: TCP
  {{- with .from }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
