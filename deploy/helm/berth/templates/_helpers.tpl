{{/* The release name names every object: helm install berth deploy/helm/berth -n berth */}}
{{- define "berth.fullname" -}}
{{ .Release.Name }}
{{- end }}

{{- define "berth.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "berth.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "berth.secretName" -}}
{{- if .Values.credentials.existingSecret -}}
{{ .Values.credentials.existingSecret }}
{{- else -}}
{{ include "berth.fullname" . }}-credentials
{{- end -}}
{{- end }}

{{- define "berth.clusterSecretName" -}}
{{- if .Values.cluster.existingSecret -}}
{{ .Values.cluster.existingSecret }}
{{- else -}}
{{ include "berth.fullname" . }}-cluster
{{- end -}}
{{- end }}

{{- define "berth.redisAddr" -}}
{{- if .Values.cluster.redis.addr -}}
{{ .Values.cluster.redis.addr }}
{{- else -}}
{{ include "berth.fullname" . }}-redis:6379
{{- end -}}
{{- end }}
