{{/* Names and labels. Components: web, worker, beat, consumer, migrate. */}}

{{- define "order-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name; 50 characters leave room for "-consumer". */}}
{{- define "order-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of one component's resources: (dict "root" $ "component" "web") */}}
{{- define "order-service.componentName" -}}
{{- printf "%s-%s" (include "order-service.fullname" .root) .component }}
{{- end }}

{{- define "order-service.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "order-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: order-service
{{- end }}

{{/* Selector of one component's pods: (dict "root" $ "component" "web"). The
component label keeps each Service, PDB and HPA on its own pods only. */}}
{{- define "order-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "order-service.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component's objects and pods: (dict "root" $ "component" "web") */}}
{{- define "order-service.componentLabels" -}}
{{ include "order-service.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "order-service.configMapName" -}}
{{- include "order-service.fullname" . }}
{{- end }}

{{/* The Secret every container reads: the existing one when named, else the chart's. */}}
{{- define "order-service.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else }}
{{- include "order-service.fullname" . }}
{{- end }}
{{- end }}

{{- define "order-service.chartSecret" -}}
{{- and (not .Values.secret.existingSecret) .Values.secret.create }}
{{- end }}

{{/* ConfigMap data, shared by the ConfigMap and its migrations-hook copy. */}}
{{- define "order-service.configData" -}}
{{- range $key, $value := .Values.config }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* Secret data, shared by the Secret and its migrations-hook copy. */}}
{{- define "order-service.secretData" -}}
{{- range $key, $value := .Values.secret.values }}
{{ $key }}: {{ $value | toString | b64enc | quote }}
{{- end }}
{{- end }}

{{- define "order-service.image" -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}
