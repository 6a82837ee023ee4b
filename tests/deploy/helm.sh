#!/usr/bin/env bash
# Checks of the Helm chart deploy/helm/mpu-janitor with a real helm (no cluster: nothing is installed):
#   helm lint --strict            the default values, every ci/*-values.yaml, the sidecar example
#   helm template                 every mode validated by kubernetes-validate --strict at the
#                                 Kubernetes versions the chart declares (kubeVersion), and refused
#                                 below them
#   the rendered ConfigMap        accepted by `mpu-janitor check-config`, with the container's env
#   values.schema.json            a wrong type, an unknown mode, an unknown key refused, saying why
#   ServiceMonitor/PrometheusRule disabled: nothing; enabled: exactly one, with the expected selector;
#                                 the rules are deploy/prometheus/alerts.yml's groups (promtool)
#   drift                         the chart renders deploy/kubernetes/*.yaml (labels aside)
#   modes, helm test hooks, NOTES.txt, helm package (the alerts symlink followed)
#
# Called by tests/deploy/lint.sh, which provides the tools; alone, it needs them in the environment:
#   HELM (default: helm on PATH, else ~/.cache/mpu-janitor/helm/helm, which scripts/test.sh installs),
#   PY (a python3 with PyYAML, tomllib), KUBEVAL (kubernetes-validate), promtool on PATH,
#   K8S_VERSIONS (default "1.29.0 1.33.0"), MPU_JANITOR_BIN (for check-config; skipped without it).
# Prints OK/FAIL per check and the count; exits 1 if any check failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CHART=deploy/helm/mpu-janitor
EXAMPLE=deploy/helm/examples/upload-service

die() { echo "helm.sh: $*" >&2; exit 1; }
HELM="${HELM:-$(command -v helm || echo "${XDG_CACHE_HOME:-$HOME/.cache}/mpu-janitor/helm/helm")}"
[ -x "$HELM" ] || die "no helm at $HELM: scripts/test.sh installs it (or set HELM)"
PY="${PY:-python3}"
KUBEVAL="${KUBEVAL:-kubernetes-validate}"
K8S_VERSIONS="${K8S_VERSIONS:-1.29.0 1.33.0}"
BIN="${MPU_JANITOR_BIN:-}"
command -v promtool >/dev/null || die "promtool missing (tests/deploy/lint.sh installs it)"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# helm's own state (repositories, cache) stays out of the user's home.
export HELM_CACHE_HOME="$TMP/helm/cache" HELM_CONFIG_HOME="$TMP/helm/config" HELM_DATA_HOME="$TMP/helm/data"

cat > "$TMP/chart.py" <<'PYEOF'
"""Assertions on rendered manifests; each prints what is wrong and exits 1."""
import difflib, json, os, re, subprocess, sys, tempfile, tomllib
import yaml

HELM_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
               "app.kubernetes.io/version"}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}

def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]

def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]

def one(docs, kind):
    found = of_kind(docs, kind)
    if len(found) != 1:
        sys.exit(f"expected exactly one {kind}, rendered {len(found)}")
    return found[0]

def pod_spec(d):
    s = d["spec"]
    if d["kind"] == "CronJob":
        s = s["jobTemplate"]["spec"]
    return s["template"]["spec"]

def janitor(d):
    spec = pod_spec(d)
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "mpu-janitor")

def workload(docs):
    ws = [d for d in docs if d["kind"] in ("CronJob", "Job", "Deployment")]
    if len(ws) != 1:
        sys.exit(f"expected one workload, rendered {[d['kind'] for d in ws]}")
    return ws[0]

def split(rendered, k8s_out):
    """The objects Kubernetes' own schemas know, for kubernetes-validate (CRDs are checked apart)."""
    docs = [d for d in load(rendered) if d["kind"] not in CRD_KINDS]
    yaml.safe_dump_all(docs, open(k8s_out, "w"))

def check_config(rendered, binary, configmap=None):
    """check-config on the rendered ConfigMap with the janitor container's environment."""
    docs = load(rendered)
    cms = of_kind(docs, "ConfigMap")
    cm = next(d for d in cms if configmap is None or d["metadata"]["name"] == configmap)
    ws = [d for d in docs if d["kind"] in ("CronJob", "Job", "Deployment")]
    tmp = tempfile.mkdtemp()
    with open(f"{tmp}/config.toml", "w") as f:
        f.write(cm["data"]["config.toml"])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MPU_JANITOR_") and k != "JOB_COMPLETION_INDEX"}
    if ws:
        for e in janitor(ws[0]).get("env", []):
            # A fieldRef (the completion index) is set by Kubernetes: 0 here, like $(VAR) uses.
            v = re.sub(r"\$\((\w+)\)", "0", e.get("value", "0"))
            # The textfile's directory is a hostPath on the node: a scratch directory here.
            v = v.replace("/var/lib/mpu-janitor/textfile", tmp)
            env[e["name"]] = v
    r = subprocess.run([binary, "--config", f"{tmp}/config.toml", "check-config"], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"check-config exited {r.returncode} with env "
                 f"{ {k: v for k, v in env.items() if k.startswith('MPU_')} }:\n{r.stdout}{r.stderr}")
    print(f"check-config: ok ({len(tomllib.loads(cm['data']['config.toml']).get('targets', []))} targets)")

def none_of(rendered, kind):
    found = of_kind(load(rendered), kind)
    if found:
        sys.exit(f"{kind} rendered while disabled: {[d['metadata']['name'] for d in found]}")

def service_monitor(rendered, want_labels):
    docs = load(rendered)
    sm, svc, dep = one(docs, "ServiceMonitor"), one(docs, "Service"), one(docs, "Deployment")
    sel = sm["spec"]["selector"]["matchLabels"]
    errors = []
    if not sel or any(svc["metadata"]["labels"].get(k) != v for k, v in sel.items()):
        errors.append(f"selector {sel} does not match the Service's labels {svc['metadata']['labels']}")
    pods = dep["spec"]["template"]["metadata"]["labels"]
    if any(pods.get(k) != v for k, v in svc["spec"]["selector"].items()):
        errors.append(f"the Service's selector {svc['spec']['selector']} does not match the pods {pods}")
    ports = {p["name"] for p in svc["spec"]["ports"]}
    for ep in sm["spec"]["endpoints"]:
        if ep["port"] not in ports:
            errors.append(f"endpoint port {ep['port']} is not a port of the Service ({ports})")
        if ep.get("path") != "/metrics":
            errors.append(f"endpoint path {ep.get('path')}")
    cport = {p["name"]: p["containerPort"] for p in janitor(dep).get("ports", [])}
    listen = {e["name"]: e.get("value") for e in janitor(dep).get("env", [])}.get("MPU_JANITOR_METRICS__LISTEN")
    if "metrics" not in cport or listen != f"0.0.0.0:{cport['metrics']}":
        errors.append(f"the container listens on {listen}, its port is {cport}")
    if sm["spec"].get("namespaceSelector", {}).get("matchNames") != [svc["metadata"].get("namespace", "default")]:
        errors.append(f"namespaceSelector {sm['spec'].get('namespaceSelector')}")
    for k, v in want_labels.items():
        if sm["metadata"]["labels"].get(k) != v:
            errors.append(f"ServiceMonitor label {k}={v} missing (Prometheus' serviceMonitorSelector)")
    if errors:
        sys.exit("\n".join(errors))
    print(f"ServiceMonitor selector {sel}")

def prometheus_rule(rendered, alerts, want_labels, groups_out):
    pr = one(load(rendered), "PrometheusRule")
    errors = []
    for k, v in want_labels.items():
        if pr["metadata"]["labels"].get(k) != v:
            errors.append(f"PrometheusRule label {k}={v} missing (Prometheus' ruleSelector)")
    want = yaml.safe_load(open(alerts))["groups"]
    got = pr["spec"]["groups"]
    if got != want:
        a = yaml.safe_dump(want, sort_keys=True).splitlines(True)
        b = yaml.safe_dump(got, sort_keys=True).splitlines(True)
        errors.append("spec.groups differ from " + alerts + ":\n" + "".join(difflib.unified_diff(a, b, alerts, "PrometheusRule")))
    yaml.safe_dump({"groups": got}, open(groups_out, "w"))
    if errors:
        sys.exit("\n".join(errors))
    print(f"{sum(len(g['rules']) for g in got)} rules in {len(got)} group(s)")

def normalize(d):
    """The object without what only Helm adds: its labels, the release revision in a Job's name."""
    d = json.loads(json.dumps(d))
    def walk(x):
        if isinstance(x, dict):
            for key in ("labels", "matchLabels"):
                if isinstance(x.get(key), dict):
                    for l in HELM_LABELS:
                        x[key].pop(l, None)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(d)
    d["metadata"].pop("namespace", None)
    if d["kind"] == "Job":
        d["metadata"]["name"] = re.sub(r"-\d+$", "", d["metadata"]["name"])
    return d

def drift(raw, rendered):
    """Every object of the raw manifest equals the chart's object of the same kind and name."""
    chart = {(d["kind"], normalize(d)["metadata"]["name"]): normalize(d) for d in load(rendered)}
    errors = []
    for want in load(raw):
        key = (want["kind"], want["metadata"]["name"])
        got = chart.get(key)
        if got is None:
            errors.append(f"{raw}: the chart renders no {key[0]} {key[1]} (it has {sorted(chart)})")
        elif got != want:
            a = yaml.safe_dump(want, sort_keys=True).splitlines(True)
            b = yaml.safe_dump(got, sort_keys=True).splitlines(True)
            errors.append(f"{raw}: {key[0]} {key[1]} differs from the chart's:\n"
                          + "".join(difflib.unified_diff(a, b, raw, "helm template")))
        else:
            print(f"{key[0]} {key[1]}: equal")
    if errors:
        sys.exit("\n".join(errors))

def modes(rendered_dir):
    """What each mode must be, beyond the schemas."""
    e = []
    def r(name):
        return load(f"{rendered_dir}/{name}.yaml")
    # cronjob: `once` on the schedule, never two at once.
    cj = workload(r("cronjob"))
    c = janitor(cj)
    if cj["kind"] != "CronJob" or cj["spec"]["concurrencyPolicy"] != "Forbid":
        e.append(f"cronjob: {cj['kind']} concurrencyPolicy {cj['spec'].get('concurrencyPolicy')}")
    if "once" not in c["args"] or "run" in c["args"]:
        e.append(f"cronjob: args {c['args']}")
    env = {x["name"]: x.get("value") for x in c.get("env", [])}
    if not env.get("MPU_JANITOR_METRICS__PUSHGATEWAY_URL", "").startswith("http"):
        e.append("cronjob: no Pushgateway URL in the environment")
    # textfile: a hostPath mounted where MPU_JANITOR_METRICS__TEXTFILE points, no push.
    tf = workload(r("textfile"))
    c = janitor(tf)
    env = {x["name"]: x.get("value") for x in c.get("env", [])}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod_spec(tf)["volumes"]}
    path = env.get("MPU_JANITOR_METRICS__TEXTFILE", "")
    if "MPU_JANITOR_METRICS__PUSHGATEWAY_URL" in env or not path.startswith(mounts.get("textfile", "?") + "/") \
       or "hostPath" not in vols.get("textfile", {}):
        e.append(f"textfile: env {env}, mounts {mounts}")
    if c["args"][-1] != "--dry-run" or mounts.get("ca") != "/etc/ssl/corporate" or "ca" not in vols:
        e.append(f"textfile: extraArgs/extraVolumes not applied: {c['args']}, {mounts}")
    pod = pod_spec(tf)
    if pod.get("imagePullSecrets") != [{"name": "registry-credentials"}] or not pod.get("tolerations") \
       or not pod.get("affinity") or pod.get("nodeSelector") != {"kubernetes.io/os": "linux"}:
        e.append("textfile: imagePullSecrets/tolerations/affinity/nodeSelector not applied")
    meta = tf["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    if meta.get("annotations", {}).get("example.com/team") != "storage" or meta["labels"].get("example.com/cost-center") != "42":
        e.append(f"textfile: podAnnotations/podLabels not applied: {meta}")
    # daemon: a Deployment running `run`, one replica, no [coordination].
    dd = r("daemon-default")
    dep = workload(dd)
    cm = one(dd, "ConfigMap")["data"]["config.toml"]
    if dep["kind"] != "Deployment" or dep["spec"]["replicas"] != 1 or "run" not in janitor(dep)["args"]:
        e.append(f"daemon: {dep['kind']} replicas {dep['spec'].get('replicas')} args {janitor(dep)['args']}")
    if "coordination" in tomllib.loads(cm):
        e.append("daemon: [coordination] rendered without coordination.lease")
    if "checksum/config" not in dep["spec"]["template"]["metadata"].get("annotations", {}):
        e.append("daemon: no checksum/config annotation (a changed config would not restart it)")
    # daemon with a lease: the section in the config, the Secret as environment.
    dl = r("daemon-lease")
    dep = workload(dl)
    co = tomllib.loads(one(dl, "ConfigMap")["data"]["config.toml"]).get("coordination")
    if dep["spec"]["replicas"] != 3 or co != {"lease": "s3://example-leases/mpu-janitor/", "lease_ttl": "90s"}:
        e.append(f"daemon-lease: replicas {dep['spec']['replicas']}, [coordination] {co}")
    if janitor(dep).get("envFrom") != [{"secretRef": {"name": "mpu-janitor-aws"}}]:
        e.append(f"daemon-lease: envFrom {janitor(dep).get('envFrom')}")
    # shards: an Indexed Job, completions = parallelism = the count the pods are told.
    for name, kind in (("shards", "Job"), ("shards-schedule", "CronJob")):
        w = workload(r(name))
        spec = w["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else w["spec"]
        env = {x["name"]: x for x in janitor(w).get("env", [])}
        count = env.get("MPU_JANITOR_SHARDING__COUNT", {}).get("value")
        if w["kind"] != kind or spec.get("completionMode") != "Indexed" \
           or not (str(spec.get("completions")) == str(spec.get("parallelism")) == count) \
           or "once" not in janitor(w)["args"]:
            e.append(f"{name}: {w['kind']} {spec.get('completionMode')} completions {spec.get('completions')} "
                     f"parallelism {spec.get('parallelism')} count {count}")
        if kind == "CronJob" and w["spec"]["concurrencyPolicy"] != "Forbid":
            e.append(f"{name}: concurrencyPolicy {w['spec']['concurrencyPolicy']}")
        if name == "shards-schedule":
            tfp = env.get("MPU_JANITOR_METRICS__TEXTFILE", {}).get("value", "")
            if "$(JANITOR_SHARD_INDEX)" not in tfp or list(env).index("JANITOR_SHARD_INDEX") > list(env).index("MPU_JANITOR_METRICS__TEXTFILE"):
                e.append(f"{name}: the textfile is not per shard: {tfp}")
    # helm test hooks: /healthz of the daemon's Service; check-config elsewhere.
    for name, want in (("daemon-default", "/healthz"), ("cronjob", "check-config"), ("shards", "check-config")):
        docs = r(name)
        pods = [d for d in of_kind(docs, "Pod") if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
        if len(pods) != 1:
            e.append(f"{name}: {len(pods)} helm test pods")
            continue
        cmd = " ".join(pods[0]["spec"]["containers"][0].get("command", []) + pods[0]["spec"]["containers"][0].get("args", []))
        if want not in cmd:
            e.append(f"{name}: the test pod runs {cmd!r}, not {want}")
        if want == "/healthz":
            svc = one(docs, "Service")
            url = f"http://{svc['metadata']['name']}.default.svc:{svc['spec']['ports'][0]['port']}/healthz"
            if url not in cmd:
                e.append(f"{name}: the test pod does not fetch {url}: {cmd!r}")
    if e:
        sys.exit("\n".join(e))
    print("cronjob, textfile, daemon, daemon-lease, shards, shards-schedule, helm test hooks: as expected")

if __name__ == "__main__":
    f = globals()[sys.argv[1]]
    args = sys.argv[2:]
    if f in (service_monitor, prometheus_rule):
        args[-2 if f is prometheus_rule else -1] = json.loads(args[-2 if f is prometheus_rule else -1])
    f(*args)
PYEOF
chart() { "$PY" "$TMP/chart.py" "$@"; }

PASSED=0
FAILED=0
FAILURES=()
# check NAME FUNCTION [ARGS...]: as tests/deploy/lint.sh's: OK, or FAIL with the output.
check() {
  local name=$1; shift
  local rc=0
  set +e
  ( set -e; "$@" ) > "$TMP/out" 2>&1
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then
    echo "OK   $name"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL $name"
    sed 's/^/     /' "$TMP/out"
    FAILED=$((FAILED + 1))
    FAILURES+=("$name")
  fi
}

# helm logs at INFO that it follows the files/alerts.yml symlink: not a problem, not printed.
helm_() { "$HELM" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }
# render NAME [helm template flags...]: $TMP/r/NAME.yaml
mkdir -p "$TMP/r"
render() { local n=$1; shift; helm_ template rel "$CHART" --namespace default "$@" > "$TMP/r/$n.yaml"; }
# fails_with PATTERN CMD...: CMD must fail and say PATTERN.
fails_with() {
  local want=$1; shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" = 0 ]; then echo "succeeded, expected a refusal saying: $want"; return 1; fi
  if ! grep -qE -- "$want" <<<"$out"; then echo "$out"; echo "(refused, but not saying: $want)"; return 1; fi
  echo "refused: $(grep -E -- "$want" <<<"$out" | head -n1)"
}
kubeval() {
  local f=$1 v out
  chart split "$f" "$f.k8s"
  for v in $K8S_VERSIONS; do
    out=$("$KUBEVAL" --strict --quiet -k "$v" "$f.k8s" 2>&1) || { echo "Kubernetes $v: $out"; return 1; }
    if [ -n "$out" ]; then echo "Kubernetes $v: $out"; return 1; fi
  done
}
# The Kubernetes versions validated must be ones the chart declares.
KUBE_DECLARED=$(sed -n 's/^kubeVersion: *"\(.*\)"/\1/p' "$CHART/Chart.yaml")
render_validate() {
  local name=$1; shift
  local v
  for v in $K8S_VERSIONS; do
    helm_ template rel "$CHART" --namespace default --kube-version "$v" "$@" > "$TMP/r/$name.yaml" \
      || { echo "helm template --kube-version $v failed"; return 1; }
  done
  kubeval "$TMP/r/$name.yaml"
}

echo "helm: $("$HELM" version --short) ($HELM)"
# Values files: the defaults, then ci/*-values.yaml (chart-testing's convention).
VALUES=(default)
for f in "$CHART"/ci/*-values.yaml; do VALUES+=("$(basename "$f" -values.yaml)"); done
vflags() { [ "$1" = default ] || echo "-f $CHART/ci/$1-values.yaml"; }

# --- lint, render, validate, check-config: each values file ---
for n in "${VALUES[@]}"; do
  # shellcheck disable=SC2046
  check "helm lint --strict ($n values)" helm_ lint --strict "$CHART" $(vflags "$n")
  # shellcheck disable=SC2046
  check "helm template ($n values) | kubernetes-validate --strict, Kubernetes ${K8S_VERSIONS// /, } ($KUBE_DECLARED)" \
    render_validate "$n" $(vflags "$n")
  if [ -n "$BIN" ]; then
    check "rendered ConfigMap ($n values): $BIN check-config, with the container's env" \
      chart check_config "$TMP/r/$n.yaml" "$BIN"
  fi
done
[ -n "$BIN" ] || echo "SKIP check-config of the rendered ConfigMaps: no MPU_JANITOR_BIN"
check "kubeVersion: helm template refuses Kubernetes 1.28 (chart declares $KUBE_DECLARED)" \
  fails_with "chart requires kubeVersion: >=1.29.0-0 which is incompatible with Kubernetes v1.28" \
  helm_ template rel "$CHART" --kube-version 1.28.0

# --- modes ---
mode_renders() {
  render daemon-default --set mode=daemon
  chart modes "$TMP/r"
}
check "modes: cronjob (once, Forbid, Pushgateway / textfile), daemon (run, 1 replica, lease), shards (Indexed), helm test hooks" mode_renders

# --- values.schema.json and the chart's own refusals ---
check "schema refuses an unknown mode" fails_with "at '/mode': value must be one of 'cronjob', 'daemon', 'shards'" \
  helm_ template rel "$CHART" --set mode=weekly
check "schema refuses a wrong type (daemon.replicas: \"two\")" fails_with "at '/daemon/replicas': got string, want integer" \
  helm_ template rel "$CHART" --set mode=daemon --set daemon.replicas=two
check "schema refuses a wrong type (serviceMonitor.enabled: \"yes\")" fails_with "at '/serviceMonitor/enabled': got string, want boolean" \
  helm_ template rel "$CHART" --set-string serviceMonitor.enabled=yes
check "schema refuses an unknown key (a typo: serviceMonitor.enable)" fails_with "additional properties 'enable' not allowed" \
  helm_ template rel "$CHART" --set serviceMonitor.enable=true
check "refused: daemon.replicas > 1 without coordination.lease" fails_with "daemon.replicas > 1 needs coordination.lease" \
  helm_ template rel "$CHART" --set mode=daemon --set daemon.replicas=2
check "refused: serviceMonitor in cronjob mode (nothing to scrape)" fails_with "serviceMonitor.enabled needs mode daemon" \
  helm_ template rel "$CHART" --set serviceMonitor.enabled=true
check "refused: [coordination] both in config and in coordination.lease" fails_with "has its own \[coordination\] section" \
  helm_ template rel "$CHART" -f "$CHART/ci/daemon-lease-values.yaml" --set-string 'config=[coordination]'

# --- ServiceMonitor and PrometheusRule ---
sm_disabled() { render sm-off --set mode=daemon; chart none_of "$TMP/r/sm-off.yaml" ServiceMonitor; }
sm_enabled() {
  render sm-on --set mode=daemon --set serviceMonitor.enabled=true --set serviceMonitor.additionalLabels.release=kube-prometheus-stack
  chart service_monitor "$TMP/r/sm-on.yaml" '{"release": "kube-prometheus-stack"}'
}
pr_disabled() {
  local m
  for m in cronjob daemon shards; do
    render "pr-off-$m" --set mode=$m
    chart none_of "$TMP/r/pr-off-$m.yaml" PrometheusRule
  done
}
pr_enabled() {
  render pr-on --set prometheusRule.enabled=true --set prometheusRule.additionalLabels.release=kube-prometheus-stack
  chart prometheus_rule "$TMP/r/pr-on.yaml" deploy/prometheus/alerts.yml '{"release": "kube-prometheus-stack"}' "$TMP/pr-groups.yml"
  promtool check rules "$TMP/pr-groups.yml"
}
alerts_symlink() {
  local link="$CHART/files/alerts.yml"
  [ -L "$link" ] || { echo "$link must be a symlink to deploy/prometheus/alerts.yml, not a copy"; return 1; }
  [ "$(readlink -f "$link")" = "$ROOT/deploy/prometheus/alerts.yml" ] \
    || { echo "$link resolves to $(readlink -f "$link")"; return 1; }
}
check "ServiceMonitor disabled (default): none rendered" sm_disabled
check "ServiceMonitor enabled: exactly one, selecting the daemon's Service and pods, port metrics" sm_enabled
check "PrometheusRule disabled (default): none rendered in any mode" pr_disabled
check "PrometheusRule enabled: exactly one, labelled for ruleSelector, groups == deploy/prometheus/alerts.yml (promtool check rules)" pr_enabled
check "files/alerts.yml is a symlink to deploy/prometheus/alerts.yml (one source)" alerts_symlink
packaged() {
  helm_ package "$CHART" --destination "$TMP/pkg" > /dev/null
  tar -xzOf "$TMP/pkg/mpu-janitor-"*.tgz mpu-janitor/files/alerts.yml | cmp - deploy/prometheus/alerts.yml
  helm_ template rel "$TMP/pkg/mpu-janitor-"*.tgz --set prometheusRule.enabled=true > "$TMP/r/pkg.yaml"
  chart prometheus_rule "$TMP/r/pkg.yaml" deploy/prometheus/alerts.yml '{}' "$TMP/pkg-groups.yml"
}
check "helm package: the archive carries alerts.yml itself (symlink followed) and renders the same rules" packaged
notes() {
  local m out
  for m in cronjob daemon shards; do
    out=$(helm_ install rel "$CHART" --dry-run=client --set mode=$m 2>&1) || { echo "$out"; return 1; }
    grep -q "^NOTES:" <<<"$out" && grep -q "(mode: $m)" <<<"$out" || { echo "$out" | sed -n '/NOTES/,$p'; return 1; }
  done
}
check "NOTES.txt renders for every mode (helm install --dry-run=client, no cluster)" notes

# --- the raw manifests cannot drift from the chart ---
CFG_K8S=(--set-file config=config/kubernetes.toml)
drift_cronjob() {
  render drift-cronjob -f "$CHART/ci/cronjob-values.yaml" "${CFG_K8S[@]}" --set prometheusRule.enabled=false
  local f
  for f in serviceaccount configmap cronjob; do chart drift "deploy/kubernetes/$f.yaml" "$TMP/r/drift-cronjob.yaml"; done
}
drift_shards() {
  render drift-shards -f "$CHART/ci/shards-values.yaml" "${CFG_K8S[@]}"
  chart drift deploy/kubernetes/indexed-job.yaml "$TMP/r/drift-shards.yaml"
}
# The sidecar example, with this chart unpacked as its dependency (no `helm dependency build`).
example_chart() {
  rm -rf "$TMP/example"
  cp -r "$EXAMPLE" "$TMP/example"
  mkdir -p "$TMP/example/charts"
  cp -rL "$CHART" "$TMP/example/charts/mpu-janitor"
}
sidecar_example() {
  example_chart
  helm_ lint --strict "$TMP/example"
  helm_ template rel "$TMP/example" --namespace default > "$TMP/r/example.yaml"
  kubeval "$TMP/r/example.yaml"
  if [ -n "$BIN" ]; then chart check_config "$TMP/r/example.yaml" "$BIN"; fi
}
drift_sidecar() {
  example_chart
  helm_ template rel "$TMP/example" --namespace default --set-file mpu-janitor.config=config/sidecar.toml > "$TMP/r/drift-sidecar.yaml"
  chart drift deploy/kubernetes/deployment-sidecar.yaml "$TMP/r/drift-sidecar.yaml"
  chart drift deploy/kubernetes/serviceaccount.yaml "$TMP/r/drift-sidecar.yaml"
}
check "sidecar example chart (named templates): lint --strict, kubernetes-validate, check-config" sidecar_example
check "drift: deploy/kubernetes/{serviceaccount,configmap,cronjob}.yaml == chart (cronjob values, config/kubernetes.toml)" drift_cronjob
check "drift: deploy/kubernetes/indexed-job.yaml == chart (shards values)" drift_shards
check "drift: deploy/kubernetes/deployment-sidecar.yaml == sidecar example (mpu-janitor.sidecar.* templates)" drift_sidecar

echo
if [ "$FAILED" != 0 ]; then
  printf 'failed: %s\n' "${FAILURES[@]}"
fi
echo "helm chart: $PASSED passed, $FAILED failed ($((PASSED + FAILED)) checks)"
[ "$FAILED" = 0 ]
