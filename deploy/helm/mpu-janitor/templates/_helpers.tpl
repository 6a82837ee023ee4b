{{/*
Names, labels and the pieces every workload of the chart shares (the janitor container, its
volumes), so that the CronJob, the Deployment, the Indexed Job and the sidecar cannot differ.
*/}}

{{- define "mpu-janitor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; truncated to 63 characters (DNS names). */}}
{{- define "mpu-janitor.fullname" -}}
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

{{- define "mpu-janitor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mpu-janitor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mpu-janitor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mpu-janitor.labels" -}}
helm.sh/chart: {{ include "mpu-janitor.chart" . }}
{{ include "mpu-janitor.selectorLabels" . }}
app.kubernetes.io/version: {{ include "mpu-janitor.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The component label of the mode's workload (the raw manifests' values). */}}
{{- define "mpu-janitor.component" -}}
{{- if not .Values.workload.enabled }}sidecar
{{- else if eq .Values.mode "shards" }}sharded-job
{{- else }}{{ .Values.mode }}
{{- end }}
{{- end }}

{{- define "mpu-janitor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mpu-janitor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mpu-janitor.configMapName" -}}
{{ include "mpu-janitor.fullname" . }}-config
{{- end }}

{{- define "mpu-janitor.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "mpu-janitor.image" -}}
{{ .Values.image.repository }}:{{ include "mpu-janitor.tag" . }}
{{- end }}

{{/*
The configuration file: `config` as given, plus [coordination] when coordination.lease is set.
*/}}
{{- define "mpu-janitor.config" -}}
{{- $config := .Values.config }}
{{- with .Values.coordination }}
{{- if .lease }}
{{- if regexMatch "(?m)^\\s*\\[\\s*coordination\\s*\\]" $config }}
{{- fail "coordination.lease is set and `config` has its own [coordination] section: keep one of them" }}
{{- end }}
{{- $config = printf "%s\n\n# coordination.* (chart values)\n[coordination]\nlease = %s\nlease_ttl = %s\n" (trimSuffix "\n" $config) (toJson .lease) (toJson .leaseTtl) }}
{{- if .holder }}
{{- $config = printf "%sholder = %s\n" $config (toJson .holder) }}
{{- end }}
{{- end }}
{{- end }}
{{- $config }}
{{- end }}

{{/* Refusals no schema can express: they need two values at once. */}}
{{- define "mpu-janitor.validate" -}}
{{- if and .Values.workload.enabled (eq .Values.mode "daemon") (gt (int .Values.daemon.replicas) 1) (not .Values.coordination.lease) }}
{{- fail "daemon.replicas > 1 needs coordination.lease (s3://BUCKET/PREFIX) so that one replica sweeps each target; set it, or keep 1 replica" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (or (ne .Values.mode "daemon") (not .Values.workload.enabled)) }}
{{- fail "serviceMonitor.enabled needs mode daemon (the cronjob and shards modes push to a Pushgateway or write a textfile: scrape those)" }}
{{- end }}
{{- if and .Values.metrics.textfile.enabled (eq .Values.mode "daemon") }}
{{- fail "metrics.textfile is for the cronjob and shards modes; the daemon is scraped (service, serviceMonitor)" }}
{{- end }}
{{- end }}

{{/*
The environment every janitor container of the release gets: the batch modes' metrics sinks,
the shard count, the existing Secret, extraEnv.
*/}}
{{- define "mpu-janitor.env" -}}
{{- $batch := has .Values.mode (list "cronjob" "shards") }}
{{- if eq .Values.mode "daemon" }}
- name: MPU_JANITOR_METRICS__LISTEN
  value: 0.0.0.0:{{ .Values.service.port }}
{{- end }}
{{- if eq .Values.mode "shards" }}
- name: MPU_JANITOR_SHARDING__COUNT
  value: {{ .Values.shards.count | quote }}
{{- end }}
{{- if and $batch .Values.metrics.pushgateway.url }}
- name: MPU_JANITOR_METRICS__PUSHGATEWAY_URL
  value: {{ .Values.metrics.pushgateway.url }}
{{- end }}
{{- if and $batch .Values.metrics.textfile.enabled }}
{{- if eq .Values.mode "shards" }}
# One file per shard: the completion index, from the pod's annotation.
- name: JANITOR_SHARD_INDEX
  valueFrom:
    fieldRef:
      fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
- name: MPU_JANITOR_METRICS__TEXTFILE
  value: /var/lib/mpu-janitor/textfile/{{ trimSuffix ".prom" .Values.metrics.textfile.fileName }}_shard_$(JANITOR_SHARD_INDEX).prom
{{- else }}
- name: MPU_JANITOR_METRICS__TEXTFILE
  value: /var/lib/mpu-janitor/textfile/{{ .Values.metrics.textfile.fileName }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The janitor container of the cronjob, daemon and shards modes. */}}
{{- define "mpu-janitor.container" -}}
- name: mpu-janitor
  image: {{ include "mpu-janitor.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- $args := list "--log-format" .Values.logFormat }}
  {{- if eq .Values.mode "daemon" }}
  {{- $args = append $args "run" }}
  {{- else }}
  {{- $args = concat $args (list "once" "--output" "json") }}
  {{- end }}
  args: {{ concat $args .Values.extraArgs | toJson }}
  {{- with include "mpu-janitor.env" . | trim }}
  env:
    {{- . | trim | nindent 4 }}
  {{- end }}
  {{- with .Values.credentials.existingSecret }}
  envFrom:
    - secretRef:
        name: {{ . }}
  {{- end }}
  {{- if eq .Values.mode "daemon" }}
  ports:
    - name: metrics
      containerPort: {{ .Values.service.port }}
      protocol: TCP
  {{- with .Values.daemon.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.daemon.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: config
      mountPath: /etc/mpu-janitor
      readOnly: true
    {{- if and (ne .Values.mode "daemon") .Values.metrics.textfile.enabled }}
    - name: textfile
      mountPath: /var/lib/mpu-janitor/textfile
    {{- end }}
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* The pod spec of the cronjob, daemon and shards modes. */}}
{{- define "mpu-janitor.podSpec" -}}
serviceAccountName: {{ include "mpu-janitor.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if ne .Values.mode "daemon" }}
restartPolicy: Never
{{- end }}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  {{- include "mpu-janitor.container" . | trim | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "mpu-janitor.configMapName" . }}
  {{- if and (ne .Values.mode "daemon") .Values.metrics.textfile.enabled }}
  - name: textfile
    hostPath:
      path: {{ .Values.metrics.textfile.hostPath }}
      type: Directory
  {{- end }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Pod template metadata of the cronjob, daemon and shards modes. */}}
{{- define "mpu-janitor.podMetadata" -}}
labels:
  {{- include "mpu-janitor.labels" . | nindent 2 }}
  app.kubernetes.io/component: {{ include "mpu-janitor.component" . }}
  {{- with .Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $annotations := .Values.podAnnotations }}
{{- if eq .Values.mode "daemon" }}
{{- /* A changed config restarts the daemon (a ConfigMap update reaches a mounted file late). */}}
{{- $annotations = merge (dict "checksum/config" (include "mpu-janitor.config" . | sha256sum)) $annotations }}
{{- end }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The Job spec of the cronjob and shards modes (the shards' adds completionMode: Indexed).
podFailurePolicy: exit 2 (invalid configuration) fails the Job at once; a disrupted pod (drain,
preemption) is not the sweep's fault and is not counted.
*/}}
{{- define "mpu-janitor.jobSpec" -}}
{{- if eq .Values.mode "shards" }}
completionMode: Indexed
completions: {{ .Values.shards.count }}
parallelism: {{ .Values.shards.count }}
# Retries are counted per shard, so one failing shard does not use up the others' retries.
backoffLimitPerIndex: {{ .Values.job.backoffLimit }}
{{- else }}
backoffLimit: {{ .Values.job.backoffLimit }}
{{- end }}
activeDeadlineSeconds: {{ .Values.job.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ .Values.job.ttlSecondsAfterFinished }}
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: mpu-janitor
        operator: In
        values: [2]
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
template:
  metadata:
    {{- include "mpu-janitor.podMetadata" . | trim | nindent 4 }}
  spec:
    {{- include "mpu-janitor.podSpec" . | trim | nindent 4 }}
{{- end }}

{{/*
The janitor as a native sidecar, for the initContainers of your own Deployment (Kubernetes >= 1.29):
  initContainers:
    {{- include "mpu-janitor.sidecar.container" (index .Subcharts "mpu-janitor") | nindent 4 }}
  volumes:
    {{- include "mpu-janitor.sidecar.volume" (index .Subcharts "mpu-janitor") | nindent 4 }}
with this chart as a dependency (workload.enabled: false): the context is the subchart's, so the
image, the ConfigMap and sidecar.* are this chart's values. The pod's service account must carry
the janitor's S3 permissions too (deploy/iam/policy.json).
*/}}
{{- define "mpu-janitor.sidecar.container" -}}
- name: mpu-janitor
  image: {{ include "mpu-janitor.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  restartPolicy: Always
  args: {{ concat (list "--log-format" .Values.logFormat "run") .Values.extraArgs | toJson }}
  env:
    - name: MPU_JANITOR_METRICS__LISTEN
      value: 0.0.0.0:{{ .Values.sidecar.port }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.credentials.existingSecret }}
  envFrom:
    - secretRef:
        name: {{ . }}
  {{- end }}
  ports:
    - name: janitor-metrics
      containerPort: {{ .Values.sidecar.port }}
      protocol: TCP
  # No startupProbe: the kubelet would hold the app back until it passed.
  {{- with .Values.sidecar.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: janitor-config
      mountPath: /etc/mpu-janitor
      readOnly: true
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{- define "mpu-janitor.sidecar.volume" -}}
- name: janitor-config
  configMap:
    name: {{ include "mpu-janitor.configMapName" . }}
{{- end }}
