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
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}

{{/*
Expected state of the streaming endpoint for `helm test`: off when the router is unmounted or the
flag's default variant is off, unless tests.expectStreaming overrides it.
*/}}
{{- define "framegate.expectStreaming" -}}
{{- if .Values.tests.expectStreaming }}
{{- .Values.tests.expectStreaming }}
{{- else if and .Values.streaming.enabled .Values.flags.videoStreaming.enabled }}on
{{- else }}off
{{- end }}
{{- end }}
