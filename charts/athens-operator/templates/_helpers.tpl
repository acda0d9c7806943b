{{/* The release's full name: the release name, with the chart name unless it already contains it. */}}
{{- define "athens-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "athens-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "athens-operator.labels" -}}
{{ include "athens-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "athens-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "athens-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "athens-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The MutatingAdmissionPolicy of cluster-wide GOPROXY (one per release; the operator's
bindings name it). */}}
{{- define "athens-operator.goproxyPolicyName" -}}
{{- printf "%s-goproxy" (include "athens-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The admissionregistration version of MutatingAdmissionPolicy the cluster serves: v1 (1.36
and later), else v1beta1 (1.34 and 1.35, behind the MutatingAdmissionPolicy feature gate and
--runtime-config=admissionregistration.k8s.io/v1beta1=true), else empty. */}}
{{- define "athens-operator.goproxyPolicyApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" -}}
admissionregistration.k8s.io/v1
{{- else if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy" -}}
admissionregistration.k8s.io/v1beta1
{{- end -}}
{{- end -}}
