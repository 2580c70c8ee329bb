{{/*
The chart's name, or nameOverride.
*/}}
{{- define "imdsguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The objects' name: fullnameOverride, or the release name when it already
contains the chart's name (release "imdsguard" makes "imdsguard", as in
packaging/kubernetes/daemonset.yaml), or RELEASE-imdsguard.
*/}}
{{- define "imdsguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "imdsguard.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
What selects the pods: never changes over a release's life (a DaemonSet's
selector is immutable).
*/}}
{{- define "imdsguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "imdsguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Every object's labels: the selector's and Helm's standard ones.
*/}}
{{- define "imdsguard.labels" -}}
{{ include "imdsguard.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The image, by digest when image.digest is set.
*/}}
{{- define "imdsguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
imdsguard.yaml: the config value, with metrics.listen set to
metrics.address:metrics.port when metrics.enabled, and, when
ciliumLocalRedirect.enabled, listen.local_redirect_port set to its port and
"lxc+" and "cilium_host" added to redirect.container_interfaces where
missing (docs/containers.md, "Cilium": the pod veths the policy's
connections come in by, and the route back to pods). Rendered from a copy,
so that .Values stays as given; `version` first, as a reader expects it.
*/}}
{{- define "imdsguard.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if .Values.metrics.enabled }}
{{- $metrics := get $cfg "metrics" | default dict }}
{{- $_ := set $metrics "listen" (printf "%s:%d" (toString .Values.metrics.address) (int .Values.metrics.port)) }}
{{- $_ = set $cfg "metrics" $metrics }}
{{- end }}
{{- if .Values.ciliumLocalRedirect.enabled }}
{{- $listen := get $cfg "listen" | default dict }}
{{- $_ := set $listen "local_redirect_port" (int .Values.ciliumLocalRedirect.port) }}
{{- $_ = set $cfg "listen" $listen }}
{{- $redirect := get $cfg "redirect" | default dict }}
{{- $ifaces := get $redirect "container_interfaces" | default list }}
{{- range list "lxc+" "cilium_host" }}
{{- if not (has . $ifaces) }}
{{- $ifaces = append $ifaces . }}
{{- end }}
{{- end }}
{{- $_ = set $redirect "container_interfaces" $ifaces }}
{{- $_ = set $cfg "redirect" $redirect }}
{{- end }}
{{- if hasKey $cfg "version" }}
{{- pick $cfg "version" | toYaml }}
{{ end }}
{{- omit $cfg "version" | toYaml }}
{{- end }}
