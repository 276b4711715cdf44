{{/* spec.replicas of a Deployment that may be autoscaled (web, worker); context: dict
"root" $ "component" NAME.

Without autoscaling: <component>.replicas. With it the HPA owns the count, and the
manifest must not fight it, yet simply leaving the field out is what takes an
existing release down to one pod: Helm's three-way merge sees the field gone from
the new manifest and removes it, and the Deployment falls back to its default, 1,
until the HPA reacts. So the count the Deployment has now (the HPA's) is written
back (`lookup`); on a first install there is none and the HPA sets minReplicas.
`helm template`, `--dry-run` and Argo CD have no cluster to look up: they render no
replicas (docs/deploy.md "Scale"). */}}
{{- define "order-service.replicas" -}}
{{- $values := get .root.Values .component }}
{{- if not $values.autoscaling.enabled }}
replicas: {{ $values.replicas }}
{{- else }}
{{- $live := lookup "apps/v1" "Deployment" .root.Release.Namespace (include "order-service.componentName" .) }}
{{- if and $live $live.spec }}
replicas: {{ $live.spec.replicas }}
{{- end }}
{{- end }}
{{- end }}
