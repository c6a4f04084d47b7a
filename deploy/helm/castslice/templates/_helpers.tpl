{{/*
Names are fixed (castslice, castslice-front, castslice-env, castslice-tls) as in the kustomize
install: one release per cluster, since the MutatingWebhookConfiguration is cluster-wide.
*/}}

{{/* Labels on every object: the kustomize install's name, plus Helm's own. */}}
{{- define "castslice.meta" -}}
app.kubernetes.io/name: {{ index . 1 }}
{{ include "castslice.helmLabels" (index . 0) }}
{{- end }}

{{/* Helm's own labels alone, on objects that are CastSlice's part, not its Pods'. */}}
{{- define "castslice.helmLabels" -}}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The Pods the castslice Service, the PDB and the NetworkPolicy hold: CastSlice's own
(plain) or the TLS front's (knative). */}}
{{- define "castslice.servedBy" -}}
{{ eq .Values.mode "plain" | ternary "castslice" "castslice-front" }}
{{- end }}

{{- define "castslice.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The Service the API server calls, and the names its certificate holds. */}}
{{- define "castslice.host" -}}
castslice.{{ .Release.Namespace }}.svc
{{- end }}

{{/*
The castslice-env data: the back-end and the source resource (which the webhook's
matchConditions test for, so it is always written), then config's other settings as the text CastSlice reads:
a list joined by commas (CASTSLICE_RULES: JSON), a map as name=count pairs, a whole
number without the exponent YAML's float64 would print (6291456, not 6.291456e+06).
*/}}
{{- define "castslice.env" -}}
{{- if hasKey .Values.config "CASTSLICE_BACKEND" }}
{{- fail (printf "config.CASTSLICE_BACKEND: the back-end is the chart's top-level value: --set backend=%v (the chart writes CASTSLICE_BACKEND from it)" .Values.config.CASTSLICE_BACKEND) }}
{{- end -}}
CASTSLICE_BACKEND: {{ .Values.backend | quote }}
CASTSLICE_SOURCE_RESOURCE: {{ include "castslice.source" . | quote }}
{{- range $name, $value := omit .Values.config "CASTSLICE_SOURCE_RESOURCE" }}
{{- $text := toString $value }}
{{- if and (kindIs "slice" $value) (eq $name "CASTSLICE_RULES") }}{{ $text = toJson $value }}
{{- else if kindIs "slice" $value }}{{ $text = join "," $value }}
{{- else if and (kindIs "float64" $value) (eq (floor $value) $value) }}{{ $text = int64 $value | toString }}
{{- else if kindIs "map" $value }}
{{- $pairs := list }}{{ range $key, $count := $value }}{{ $pairs = append $pairs (printf "%s=%v" $key $count) }}{{ end }}
{{- $text = join "," $pairs }}
{{- end }}
{{ $name }}: {{ $text | quote }}
{{- end }}
{{- end }}

{{/* The pod template's checksum of the settings: a changed config rolls the Pods. */}}
{{- define "castslice.checksum" -}}
checksum/config: {{ include "castslice.env" . | sha256sum }}
{{- end }}

{{/* topologySpreadConstraints, each selecting the Pods it is on unless it says otherwise. */}}
{{- define "castslice.spread" -}}
{{- $root := index . 0 -}}
{{- range $root.Values.topologySpreadConstraints }}
- {{ toYaml (merge (deepCopy .) (dict "labelSelector" (dict "matchLabels" (dict "app.kubernetes.io/name" (index $ 1))))) | nindent 2 | trim }}
{{- end }}
{{- end }}

{{/* Scheduling values shared by CastSlice's Pods and the front's. */}}
{{- define "castslice.scheduling" -}}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The self-signed mode's CA and serving certificate: the installed Secret's on upgrade (so the
webhook keeps trusting what the Pods serve), else made once per render and shared by the
Secret and the webhook's caBundle.
*/}}
{{- define "castslice.selfSigned" -}}
{{- if not (hasKey .Values "__castsliceTLS") -}}
{{- $found := lookup "v1" "Secret" .Release.Namespace .Values.tls.secretName -}}
{{- $tls := dict -}}
{{- if and $found (hasKey ($found.data | default dict) "ca.crt") -}}
{{- $tls = dict "ca" (index $found.data "ca.crt") "crt" (index $found.data "tls.crt") "key" (index $found.data "tls.key") -}}
{{- else -}}
{{- $host := include "castslice.host" . -}}
{{- $ca := genCA "castslice-ca" 3650 -}}
{{- $cert := genSignedCert $host nil (list $host (printf "%s.%s" $host .Values.clusterDomain)) 3650 $ca -}}
{{- $tls = dict "ca" ($ca.Cert | b64enc) "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set .Values "__castsliceTLS" $tls -}}
{{- end -}}
{{- toJson (get .Values "__castsliceTLS") -}}
{{- end }}

{{/* The CA the webhook configuration trusts, when cert-manager does not inject it. */}}
{{- define "castslice.caBundle" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{ required "tls.mode=secret needs tls.caBundle, the base64 PEM of the CA that signed the tls.secretName Secret's certificate (--set tls.caBundle=$(base64 -w0 ca.crt)); that Secret must exist in the release namespace before helm install" .Values.tls.caBundle }}
{{- else -}}
{{ (include "castslice.selfSigned" . | fromJson).ca }}
{{- end -}}
{{- end }}

{{/*
What the DRA objects are made from, read from config as CastSlice reads it (a test renders
them beside `castslice dra-templates` and the Python DeviceClasses for several configs).
*/}}
{{- define "castslice.ladder" -}}
{{- $value := get .Values.config "CASTSLICE_MIG_PROFILES" | default "1g.5gb,2g.10gb,3g.20gb,4g.20gb,7g.40gb" -}}
{{- $text := kindIs "slice" $value | ternary (join "," $value) (toString $value) -}}
{{- $ladder := list -}}
{{- range splitList "," $text }}{{ with trim . }}{{ $ladder = append $ladder (replace ".me" "+me" .) }}{{ end }}{{ end -}}
{{- toJson $ladder -}}
{{- end }}

{{/* One setting's text from config as CastSlice reads it (blank is unset), else its default. */}}
{{- define "castslice.setting" -}}
{{- get (index . 0).Values.config (index . 1) | default "" | toString | trim | default (index . 2) -}}
{{- end }}

{{/* The resource CastSlice converts, as the webhook's matchConditions and CastSlice read it. */}}
{{- define "castslice.source" -}}
{{- include "castslice.setting" (list . "CASTSLICE_SOURCE_RESOURCE" "nvidia.com/gpu") -}}
{{- end }}

{{- define "castslice.profileSelector" -}}
device.driver == 'gpu.nvidia.com' && 'profile' in device.attributes['gpu.nvidia.com'] && device.attributes['gpu.nvidia.com'].profile == '{{ . }}'
{{- end }}
