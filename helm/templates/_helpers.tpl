{{/* Names. The RayService name is short because KubeRay derives longer names from it
     (<name>-<5 chars> for each RayCluster, <cluster>-<group>-worker-<5 chars> for pods). */}}
{{- define "curriculum.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "curriculum.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "curriculum.selectorLabels" -}}
app.kubernetes.io/name: {{ include "curriculum.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "curriculum.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "curriculum.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "curriculum.secretName" -}}
{{- default (include "curriculum.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "curriculum.redisService" -}}
{{- printf "%s-redis" (include "curriculum.fullname" .) -}}
{{- end -}}

{{- define "curriculum.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) -}}
{{- end -}}

{{/* Env of every Ray container. Order matters: Kubernetes expands $(REDIS_PASSWORD) only from variables
     defined earlier in the list. Serve replicas, actors and job drivers are processes of the pod, so they
     inherit all of it (serveConfigV2 cannot reference Secrets itself). */}}
{{- define "curriculum.rayEnv" -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "curriculum.secretName" . }}
      key: redis-password
- name: CURRICULUM_REDIS_URL
{{- if .Values.redis.external.url }}
  value: {{ .Values.redis.external.url | quote }}
{{- else }}
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "curriculum.redisService" .) | quote }}
{{- end }}
- name: CURRICULUM_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "curriculum.secretName" . }}
      key: api-token
{{- /* optional: an existingSecret without these keys simply configures no scoped tokens */}}
- name: CURRICULUM_WORKER_TOKENS
  valueFrom:
    secretKeyRef:
      name: {{ include "curriculum.secretName" . }}
      key: worker-tokens
      optional: true
- name: CURRICULUM_READ_TOKENS
  valueFrom:
    secretKeyRef:
      name: {{ include "curriculum.secretName" . }}
      key: read-tokens
      optional: true
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
{{- if .Values.ray.haproxyIngress }}
- name: RAY_SERVE_ENABLE_HA_PROXY
  value: "1"
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* rayStartParams are strings in the CRD (map[string]string). */}}
{{- define "curriculum.rayStartParams" -}}
{{- $out := dict -}}
{{- range $k, $v := . }}{{ $_ := set $out $k (toString $v) }}{{ end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* One worker group. Called with (dict "root" $ "name" <groupName> "group" <values of the group>). */}}
{{- define "curriculum.workerGroup" -}}
{{- $root := .root -}}
{{- $g := .group -}}
{{- $min := int (default 0 $g.minReplicas) -}}
{{- $max := int $g.maxReplicas -}}
{{- if gt $min $max -}}
{{- fail (printf "worker group %s: minReplicas (%d) > maxReplicas (%d)" .name $min $max) -}}
{{- end -}}
{{- $res := deepCopy (default dict $g.resources) -}}
{{- if gt (int (default 0 $g.gpus)) 0 -}}
{{- $limits := deepCopy (default dict $res.limits) -}}
{{- $_ := set $limits "nvidia.com/gpu" (int $g.gpus) -}}
{{- $_ := set $res "limits" $limits -}}
{{- end -}}
- groupName: {{ .name }}
  replicas: {{ $min }}
  minReplicas: {{ $min }}
  maxReplicas: {{ $max }}
  rayStartParams:
    {{- include "curriculum.rayStartParams" (default dict $g.rayStartParams) | nindent 4 }}
  template:
    metadata:
      labels:
        {{- include "curriculum.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: ray-worker
        curriculum/worker-group: {{ .name }}
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: ray-worker
          image: {{ include "curriculum.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          env:
            {{- include "curriculum.rayEnv" $root | nindent 12 }}
          {{- with $res }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            - {name: dshm, mountPath: /dev/shm}
      volumes:
        # Ray's object store lives in /dev/shm; the container runtime's default (64 MiB) is far too small.
        - {name: dshm, emptyDir: {medium: Memory}}
      {{- with $g.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $g.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
