{{/* Pieces every pod shares. Argument: (dict "root" $ "component" "web"). */}}

{{/* Pod annotations: a change of config or of the secret's data changes the pod
template, so every Deployment rolls and picks up the new environment
(envFrom is read only when a container starts). The data of an existing Secret
is not in the values: its maker passes a checksum of it. */}}
{{- define "order-service.podAnnotations" -}}
checksum/config: {{ include "order-service.configData" .root | sha256sum }}
{{- if eq (include "order-service.chartSecret" .root) "true" }}
checksum/secret: {{ include "order-service.secretData" .root | sha256sum }}
{{- else if .root.Values.secret.existingSecretChecksum }}
checksum/secret: {{ .root.Values.secret.existingSecretChecksum | quote }}
{{- else }}
checksum/secret-name: {{ include "order-service.secretName" .root | sha256sum | trunc 16 }}
{{- end }}
{{- with .root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod-level settings. No Kubernetes API access (no token), no service-link
env vars (a Service named "redis" would inject REDIS_PORT=tcp://..., which
the settings would refuse), and the image's non-root user. */}}
{{- define "order-service.podSpec" -}}
{{- $root := .root -}}
automountServiceAccountToken: false
enableServiceLinks: false
terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if and $root.Values.topologySpread.enabled (ne .component "migrate") }}
topologySpreadConstraints:
{{- range $root.Values.topologySpread.topologyKeys }}
  - topologyKey: {{ . }}
    maxSkew: {{ $root.Values.topologySpread.maxSkew }}
    whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "order-service.selectorLabels" (dict "root" $root "component" $.component) | nindent 8 }}
    # Count only the pods of the same ReplicaSet, so a rolling update is not
    # squeezed by the old pods it is about to remove.
    matchLabelKeys:
      - pod-template-hash
{{- end }}
{{- end }}
volumes:
  # The only writable place: heartbeat files, temporary files, Python's tempdir.
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- end }}

{{/* Container settings that do not depend on the process kind. */}}
{{- define "order-service.containerCommon" -}}
image: {{ include "order-service.image" .root | quote }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  privileged: false
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end }}

{{/* envFrom of the long-running pods: the release's ConfigMap and Secret. */}}
{{- define "order-service.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "order-service.configMapName" . }}
  - secretRef:
      name: {{ include "order-service.secretName" . }}
{{- end }}

{{/* Liveness of the processes that serve no HTTP: the file their main loop
touches (HEARTBEAT_FILE) must be younger than 60 s. The startup probe gives
a slow start (broker connection, beat's schedule install) two minutes before
liveness counts. */}}
{{/* The probe runs by path with the standard library only (no Celery, no Django):
milliseconds of CPU, every 15 s in every pod. /app is the image's WORKDIR. */}}
{{- define "order-service.heartbeatProbes" -}}
startupProbe:
  exec:
    command: ["python", "-I", "-S", "/app/orders_project/heartbeat_probe.py", "/tmp/heartbeat", "--max-age", "60"]
  periodSeconds: 5
  timeoutSeconds: 5
  failureThreshold: 24
livenessProbe:
  exec:
    command: ["python", "-I", "-S", "/app/orders_project/heartbeat_probe.py", "/tmp/heartbeat", "--max-age", "60"]
  periodSeconds: 15
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}

{{- define "order-service.heartbeatEnv" -}}
env:
  - name: HEARTBEAT_FILE
    value: /tmp/heartbeat
  {{- include "order-service.metricsEnv" . | nindent 2 }}
{{- end }}

{{/* /metrics of every long-running container, on its own port (docs/observability.md):
METRICS_PORT, and for the kinds with several processes (gunicorn's workers, the prefork
pool) the folder where they add up, on the /tmp emptyDir (emptied at each start). */}}
{{- define "order-service.metricsEnv" -}}
- name: METRICS_PORT
  value: {{ .root.Values.metrics.port | quote }}
{{- if has .component (list "web" "worker") }}
- name: PROMETHEUS_MULTIPROC_DIR
  value: /tmp/prometheus
{{- end }}
{{- end }}

{{- define "order-service.metricsPort" -}}
- name: metrics
  containerPort: {{ .root.Values.metrics.port }}
  protocol: TCP
{{- end }}
