{{/*
Chart name, cut to 63 characters (a DNS label).
*/}}
{{- define "framegate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, cut to 63 characters. A release name that already contains the chart
name is used as is.
*/}}
{{- define "framegate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of a component object: fullname-<suffix>, the fullname shortened so the result stays within 63
characters. Call with (dict "ctx" $ "suffix" "gateway").
*/}}
{{- define "framegate.componentName" -}}
{{- $suffix := printf "-%s" .suffix }}
{{- $base := include "framegate.fullname" .ctx | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s%s" $base $suffix }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "framegate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: release identity only. Selectors are immutable, so nothing version- or
values-dependent may ever appear here.
*/}}
{{- define "framegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "framegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of one workload. Call with (dict "ctx" $ "component" "gateway").
*/}}
{{- define "framegate.componentSelectorLabels" -}}
{{ include "framegate.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Common labels of every object.
*/}}
{{- define "framegate.labels" -}}
helm.sh/chart: {{ include "framegate.chart" . }}
{{ include "framegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: framegate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Common labels plus the component label. Call with (dict "ctx" $ "component" "gateway").
*/}}
{{- define "framegate.componentLabels" -}}
{{ include "framegate.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Object names shared between templates.
*/}}
{{- define "framegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "framegate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "framegate.settingsConfigMapName" -}}
{{- include "framegate.componentName" (dict "ctx" . "suffix" "settings") }}
{{- end }}

{{- define "framegate.flagsConfigMapName" -}}
{{- include "framegate.componentName" (dict "ctx" . "suffix" "flags") }}
{{- end }}

{{- define "framegate.featureFlagName" -}}
{{- include "framegate.componentName" (dict "ctx" . "suffix" "flags") }}
{{- end }}

{{- define "framegate.featureFlagSourceName" -}}
{{- include "framegate.componentName" (dict "ctx" . "suffix" "flag-source") }}
{{- end }}

{{- define "framegate.gatewayServiceName" -}}
{{- include "framegate.componentName" (dict "ctx" . "suffix" "gateway") }}
{{- end }}

{{- define "framegate.tritonHeadlessServiceName" -}}
{{- include "framegate.componentName" (dict "ctx" . "suffix" "triton-headless") }}
{{- end }}

{{- define "framegate.streamAuthSecretName" -}}
{{- if .Values.stream.authToken.existingSecret }}
{{- .Values.stream.authToken.existingSecret }}
{{- else }}
{{- include "framegate.componentName" (dict "ctx" . "suffix" "stream-auth") }}
{{- end }}
{{- end }}

{{/*
Flag provider the gateway actually uses: the OpenFeature Operator injects a flagd sidecar, so it
forces "flagd" whatever flags.provider says.
*/}}
{{- define "framegate.flagProvider" -}}
{{- if .Values.openFeatureOperator.enabled }}flagd{{ else }}{{ .Values.flags.provider }}{{ end }}
{{- end }}

{{/*
Whether the chart renders the flag ConfigMap: every provider reads it except "env" (the flag is an
environment variable) and the operator (the FeatureFlag resource replaces it).
*/}}
{{- define "framegate.renderFlagsConfigMap" -}}
{{- if and (not .Values.openFeatureOperator.enabled) (ne .Values.flags.provider "env") }}true{{ end }}
{{- end }}

{{/*
The video-streaming flag in flagd's flag-definition format (shared by the ConfigMap and the
FeatureFlag resource).
*/}}
{{- define "framegate.videoStreamingFlag" -}}
{{- $flag := dict "state" "ENABLED" "variants" (dict "on" true "off" false) "defaultVariant" (ternary "on" "off" .Values.flags.videoStreaming.enabled) }}
{{- with .Values.flags.videoStreaming.targeting }}
{{- $_ := set $flag "targeting" . }}
{{- end }}
{{- toJson $flag }}
{{- end }}

{{/*
Image reference: repository:tag, the tag defaulting to the chart's appVersion.
Call with (dict "image" .Values.image "ctx" $).
*/}}
{{- define "framegate.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/*
Deployment update strategy: rollingUpdate only with type RollingUpdate. A {type: Recreate}
override is merged with the default rollingUpdate block, and the API server rejects the pair.
*/}}
{{- define "framegate.strategy" -}}
{{- if eq .type "RollingUpdate" }}
{{- toYaml . }}
{{- else }}
{{- toYaml (omit . "rollingUpdate") }}
{{- end }}
{{- end }}

{{/*
Application settings by audience: shared (every API pod), gateway (ROLE=stream) and jobs
(ROLE=jobs). The settings ConfigMap holds all of them; each workload's checksum/config covers only
the sections it reads, so a gateway-only setting never restarts the single-writer jobs pod.
A new setting belongs in "shared" unless only one role reads it.
*/}}
{{- define "framegate.settings" -}}
shared:
  LOG_LEVEL: {{ .Values.logLevel | quote }}
  {{- /* dns:///: the gateway re-resolves the headless name every 15 s, so Triton replicas added
  by scaling get traffic (gRPC alone re-resolves only when a connection fails). */}}
  TRITON_URL: {{ printf "dns:///%s.%s.svc:8001" (include "framegate.tritonHeadlessServiceName" .) .Release.Namespace | quote }}
  BATCH_MAX_SIZE: {{ .Values.batch.maxSize | toString | quote }}
  BATCH_MAX_DELAY_MS: {{ .Values.batch.maxDelayMs | toString | quote }}
gateway:
  {{- if eq (include "framegate.flagProvider" .) "env" }}
  STREAMING_ENABLED: {{ .Values.flags.videoStreaming.enabled | toString | quote }}
  {{- else }}
  STREAMING_ENABLED: {{ .Values.flags.fallbackEnabled | toString | quote }}
  {{- end }}
  STREAM_MAX_SESSIONS: {{ .Values.stream.maxSessions | toString | quote }}
  STREAM_MAX_INFLIGHT: {{ .Values.stream.maxInflight | toString | quote }}
  STREAM_MAX_FRAME_SIZE_MB: {{ .Values.stream.maxFrameSizeMb | toString | quote }}
  STREAM_DROP_THRESHOLD: {{ .Values.stream.dropThreshold | toString | quote }}
  STREAM_SLOWDOWN_THRESHOLD: {{ .Values.stream.slowdownThreshold | toString | quote }}
  STREAM_IDLE_TIMEOUT_S: {{ .Values.stream.idleTimeoutS | toString | quote }}
  STREAM_MAX_SESSION_S: {{ .Values.stream.maxSessionS | toString | quote }}
  STREAM_LATENCY_BUDGET_MS: {{ .Values.stream.latencyBudgetMs | toString | quote }}
jobs:
  JOBS_CONCURRENCY: {{ .Values.jobs.concurrency | toString | quote }}
  VIDEO_MAX_UPLOAD_MB: {{ .Values.video.maxUploadMb | toString | quote }}
{{- end }}

{{/*
checksum/config of one workload: the shared settings and its own section.
Call with (dict "ctx" $ "component" "gateway").
*/}}
{{- define "framegate.settingsChecksum" -}}
{{- $settings := include "framegate.settings" .ctx | fromYaml }}
{{- toJson (dict "shared" $settings.shared .component (get $settings .component)) | sha256sum }}
{{- end }}

{{/*
Expected state of the streaming endpoint for `helm test`: off when the router is unmounted or the
flag's default variant is off, unless tests.expectStreaming overrides it.
*/}}
{{- define "framegate.expectStreaming" -}}
{{- if .Values.tests.expectStreaming }}
{{- .Values.tests.expectStreaming }}
{{- else if not .Values.streaming.enabled }}off
{{- else if .Values.flags.videoStreaming.targeting }}any
{{- else if .Values.flags.videoStreaming.enabled }}on
{{- else }}off
{{- end }}
{{- end }}

{{- define "framegate.guardName" -}}
{{- include "framegate.componentName" (dict "ctx" . "suffix" "guard") }}
{{- end }}

{{/*
Prometheus label matchers of the gateways' series: guard.prometheus.selector, or the namespace and
the job label the ServiceMonitor gives the gateway Service's targets.
*/}}
{{- define "framegate.guardSelector" -}}
{{- .Values.guard.prometheus.selector | default (printf "namespace=%q,job=%q" .Release.Namespace (include "framegate.gatewayServiceName" .)) }}
{{- end }}

{{/*
The guard's error ratio in PromQL, exactly what `framegate guard --prometheus-url` computes
(api/guard/sources.py, signals.error_ratio): server-side failures (session-ending
inference_unavailable / internal_error / pipeline_failure, plus per-frame pipeline failures) over
frames received, summed over the gateways, over the guard's window.
*/}}
{{- define "framegate.guardErrorRatioQuery" -}}
{{- $sel := include "framegate.guardSelector" . }}
{{- $window := printf "%vs" .Values.guard.thresholds.windowS }}
{{- $codes := `code=~"inference_unavailable|internal_error|pipeline_failure"` }}
{{- $errors := printf "(sum(increase(framegate_stream_errors_total{%s,%s}[%s])) or vector(0))" $sel $codes $window }}
{{- $failures := printf "(sum(increase(framegate_stream_frame_failures_total{%s}[%s])) or vector(0))" $sel $window }}
{{- $received := printf "sum(increase(framegate_stream_frames_total{%s,outcome=\"received\"}[%s]))" $sel $window }}
{{- printf "(%s + %s) / %s" $errors $failures $received }}
{{- end }}

{{/*
terminationGracePeriodSeconds of an API pod: its preStop sleep (which counts against the grace
period), the drain after SIGTERM (shutdown.timeoutSeconds, SHUTDOWN_TIMEOUT_S) and 5 s for the
process to exit, so the kubelet never SIGKILLs a drain that keeps its promise.
Usage: include "framegate.terminationGracePeriodSeconds" (dict "ctx" . "preStopSleepSeconds" N)
*/}}
{{- define "framegate.terminationGracePeriodSeconds" -}}
{{- add .preStopSleepSeconds .ctx.Values.shutdown.timeoutSeconds 5 -}}
{{- end }}
