{{- /*
The release's first AthensProxy (values firstProxy), as the JSON object the operator applies
(ATHENS_OPERATOR_FIRST_PROXY in deployment.yaml; operator/src/first_proxy.rs). Helm does not create
it: Helm resolves every object's kind before creating any, so it could not create an AthensProxy
in the install that creates the CRD. The operator applies it once the CRD serves, so one
`helm install` gives a Ready proxy on any cluster. Helm never owns it, so `helm uninstall` keeps it.
*/ -}}
{{- define "athens-operator.firstProxy" -}}
{{- $meta := dict "name" .Values.firstProxy.name "namespace" .Release.Namespace -}}
{{- dict "apiVersion" "athens.dev/v1alpha1" "kind" "AthensProxy" "metadata" $meta "spec" .Values.firstProxy.spec | toJson -}}
{{- end -}}
