#!/usr/bin/env bash
# Benchmark of mpu-janitor against its peers, on this machine, with real servers on loopback.
#
#   scripts/bench.sh                 compare: janitor vs rclone vs 4 rclones vs Garage's own cleanup
#                                    on N stale uploads (default 10,000), plus the janitor against the
#                                    embedded in-memory endpoint (the client's own ceiling)
#   scripts/bench.sh --scale         how wall time and peak RSS grow: embedded endpoint 1k/5k/10k/50k,
#                                    Garage 1k/10k
#   scripts/bench.sh --tune          the janitor at concurrency 8..256, on Garage and on the endpoint
#   scripts/bench.sh --latency MS    the janitor's default configuration on the embedded endpoint with
#                                    no delay and with MS ms before every answer (its latency mode: 20
#                                    plays a 10 ms path each way), and rclone through the same delay
#                                    (on at most 2,000 uploads: it does one at a time), and the
#                                    host's ceiling: loopback again, pinned at the depth 0.9 of its
#                                    rate needs through MS; use --uploads 20000 so that the limit's
#                                    ramp is a small part of the run
#   scripts/bench.sh --throttle RATE the endpoint's token-bucket mode: RATE requests a second per
#                                    prefix partition (burst RATE/10), every upload under one prefix,
#                                    20 ms before every answer (or --latency MS); the janitor's default
#                                    configuration on the lean and on the SDK request path: the share
#                                    of RATE it sustains and the share of its requests throttled
#   scripts/bench.sh --million       1,000,000 stale uploads in one bucket on the endpoint against
#                                    100,000: wall, uploads/s and peak RSS (and rclone's rate on 10,000)
#   scripts/bench.sh --paths         the same sweep on both request paths from one build:
#                                    `request_path = "auto"` (the lean path) and "sdk" (aws-sdk-s3's
#                                    pipeline), on the embedded endpoint and on a fresh Garage, each
#                                    --rounds times (auto, sdk, sdk, auto, ...): wall, uploads/s, CPU
#                                    per upload, peak RSS of each, and the ratios SDK / lean
#   scripts/bench.sh --config-load   how long `check-config` takes to load, validate and print a
#                                    configuration of 1,000 / 10,000 / 100,000 targets (no server;
#                                    --debug times the dev build, which the tests use)
#
# Options: --uploads N (compare, tune, paths; default 10000), --concurrency C (the janitor's, default
#          64; 0 = adaptive), --part-size BYTES (default 1024), --rounds R (--paths: runs of each path
#          on each server, default 2), --skip-build, --debug (--config-load only).
# Env:     GARAGE_BIN (else garage on PATH, else cargo install garage 2.5.0), CARGO_TARGET_DIR,
#          BENCH_TUNE_LIST (concurrencies for --tune), GARAGE_DB_ENGINE (default sqlite),
#          BENCH_CONFIG_TARGETS (target counts for --config-load, default "1000 10000 100000").
#
# Installs what is missing (rclone and time with apt-get, Garage with cargo), builds the janitor and
# examples/bench_{seed,endpoint}.rs in release, starts a single-node Garage on free loopback ports in a
# temp dir (a fresh one for every measurement; stopped and removed at exit), seeds a fresh bucket through
# aws-sdk-s3 (one part of 1 KiB per upload, keys over 100 prefixes, the same for every tool), and
# measures each tool with /usr/bin/time -v: wall seconds, user+sys CPU seconds, peak RSS, plus the
# CPU the server spent meanwhile (from /proc). After every tool it checks that the bucket has 0
# uploads left, and that the janitor's report shows every upload aborted, verified and its bytes
# counted; any miss stops the run. Tables are printed and written to bench/results.md (each mode
# replaces its own section).
# shellcheck disable=SC2016 # backquotes in printf formats are markdown, not expansions
# shellcheck disable=SC1091 # /etc/os-release
# shellcheck disable=SC2153 # GARAGE_BIN is set by scripts/garage.sh (shellcheck -x follows it)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=compare
UPLOADS=10000
CONCURRENCY=64
PART_SIZE=1024
PREFIXES=100
SEED_CONCURRENCY=64
SKIP_BUILD=0
TUNE_LIST=${BENCH_TUNE_LIST:-"8 16 32 64 128 256"}
SCALE_ENDPOINT="1000 5000 10000 50000"
SCALE_GARAGE="1000 10000"
PROFILE=release
CONFIG_TARGETS=${BENCH_CONFIG_TARGETS:-"1000 10000 100000"}
LATENCY_MS=0
THROTTLE_RATE=0
# Extra [defaults] lines of the janitor's configuration (the request path, for --throttle and --paths).
JANITOR_EXTRA=""
# Extra arguments of the janitor before its command (the log filter, for --paths).
JANITOR_FLAGS=()
# Runs of each request path on each server, for --paths.
PATHS_ROUNDS=2
# The endpoint's token bucket (requests a second per partition; 0 = off) for start_endpoint.
ENDPOINT_THROTTLE=0
# The endpoint's delay before every answer, for janitor_endpoint and rclone_endpoint.
ENDPOINT_LATENCY=0

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 && !/shellcheck/ { sub(/^# ?/, ""); print }' "$0"; }
while [ $# -gt 0 ]; do
  case $1 in
    --scale) MODE=scale ;;
    --tune) MODE=tune ;;
    --config-load) MODE=config_load ;;
    --latency) [ "$MODE" = throttle ] || MODE=latency; LATENCY_MS=${2:?--latency MS}; shift ;;
    --throttle) MODE=throttle; THROTTLE_RATE=${2:?--throttle RATE}; shift ;;
    --million) MODE=million ;;
    --paths) MODE=paths ;;
    --rounds) PATHS_ROUNDS=${2:?--rounds R}; shift ;;
    --debug) PROFILE=debug ;;
    --compare) MODE=compare ;;
    --uploads) UPLOADS=${2:?--uploads N}; shift ;;
    --concurrency) CONCURRENCY=${2:?--concurrency C}; shift ;;
    --part-size) PART_SIZE=${2:?--part-size BYTES}; shift ;;
    --skip-build) SKIP_BUILD=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $UPLOADS in '' | *[!0-9]*) echo "bench: --uploads must be a number" >&2; exit 2 ;; esac
case $CONCURRENCY in '' | *[!0-9]*) echo "bench: --concurrency must be a number" >&2; exit 2 ;; esac
case $LATENCY_MS in '' | *[!0-9]*) echo "bench: --latency must be a number of milliseconds" >&2; exit 2 ;; esac
case $THROTTLE_RATE in '' | *[!0-9]*) echo "bench: --throttle must be a number of requests a second" >&2; exit 2 ;; esac
case $PATHS_ROUNDS in '' | 0 | *[!0-9]*) echo "bench: --rounds must be a number above 0" >&2; exit 2 ;; esac
if [ "$MODE" = throttle ] && [ "$LATENCY_MS" = 0 ]; then LATENCY_MS=20; fi

log() { printf '==> %s\n' "$*" >&2; }
die() { printf '\nbench: FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# 1. Install and build

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
missing=()
case $MODE in config_load | paths) ;; *) command -v rclone >/dev/null || missing+=(rclone) ;; esac
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  log "Installing ${missing[*]} (apt-get)"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# shellcheck source=scripts/garage.sh
[ "$MODE" = config_load ] || source "$ROOT/scripts/garage.sh"

# Before our own build, which loads the machine for a minute.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$MODE" = config_load ]; then
  # Only the binary: no server, no seeding.
  if [ "$SKIP_BUILD" = 0 ]; then
    log "Building mpu-janitor ($PROFILE)"
    if [ "$PROFILE" = release ]; then cargo build --release --locked --bin mpu-janitor; else cargo build --locked --bin mpu-janitor; fi
  fi
elif [ "$SKIP_BUILD" = 0 ]; then
  log "Building mpu-janitor and the bench examples (release)"
  cargo build --release --locked --bins --examples
fi
[ "$MODE" = config_load ] || PROFILE=release
JANITOR=$TARGET_DIR/$PROFILE/mpu-janitor
SEED=$TARGET_DIR/release/examples/bench_seed
ENDPOINT=$TARGET_DIR/release/examples/bench_endpoint
bins=("$JANITOR")
[ "$MODE" = config_load ] || bins+=("$SEED" "$ENDPOINT")
for b in "${bins[@]}"; do
  [ -x "$b" ] || die "$b is missing (build failed, or --skip-build without a build)"
done

# ---------------------------------------------------------------------------------------------
# Temp dir, cleanup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mpu-bench.XXXXXX")
GARAGE_PID=""
EP_PID=""
cleanup() {
  local rc=$?
  if [ -n "$EP_PID" ]; then kill "$EP_PID" 2>/dev/null || true; wait "$EP_PID" 2>/dev/null || true; fi
  if [ -n "$GARAGE_PID" ]; then kill "$GARAGE_PID" 2>/dev/null || true; wait "$GARAGE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CLK_TCK=$(getconf CLK_TCK)
now() { date +%s.%N; }
# CPU seconds (user+sys) a live process has used so far; 0 when there is none.
proc_cpu() {
  if [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ]; then
    sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$CLK_TCK" '{ printf "%.2f\n", ($12 + $13) / t }'
  else
    echo 0
  fi
}
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# ---------------------------------------------------------------------------------------------
# 2. Garage

GARAGE_CONF=$WORK/garage/garage.toml
GK_ID=GK$(hex 12)
GK_SECRET=$(hex 32)
garage_cli() { RUST_LOG=warn "$GARAGE_BIN" -c "$GARAGE_CONF" "$@"; }

start_garage() {
  local ports s3 rpc admin node_id deadline
  ports=$("$SEED" ports 3 | tr '\n' ' ')
  read -r s3 rpc admin <<<"$ports"
  mkdir -p "$WORK/garage"
  cat >"$GARAGE_CONF" <<EOF
metadata_dir = "$WORK/garage/meta"
data_dir = "$WORK/garage/data"
db_engine = "${GARAGE_DB_ENGINE:-sqlite}"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
  RUST_LOG=warn "$GARAGE_BIN" -c "$GARAGE_CONF" server >"$WORK/garage/garage.log" 2>&1 &
  GARAGE_PID=$!
  GARAGE_URL=http://127.0.0.1:$s3
  deadline=$((SECONDS + 60))
  until node_id=$(garage_cli node id -q 2>/dev/null); do
    kill -0 "$GARAGE_PID" 2>/dev/null || die "Garage exited: $(tail -n 20 "$WORK/garage/garage.log")"
    [ $SECONDS -lt $deadline ] || die "Garage not ready after 60 s: $(tail -n 20 "$WORK/garage/garage.log")"
    sleep 0.1
  done
  node_id=${node_id%%@*}
  garage_cli layout assign -z dc1 -c 1G "$node_id" >/dev/null
  garage_cli layout apply --version 1 >/dev/null
  garage_cli key import --yes -n bench "$GK_ID" "$GK_SECRET" >/dev/null
  garage_cli key allow --create-bucket bench >/dev/null
  # rclone's remote "garage:", from the environment only.
  export RCLONE_CONFIG_GARAGE_TYPE=s3 RCLONE_CONFIG_GARAGE_PROVIDER=Other
  export RCLONE_CONFIG_GARAGE_ACCESS_KEY_ID=$GK_ID RCLONE_CONFIG_GARAGE_SECRET_ACCESS_KEY=$GK_SECRET
  export RCLONE_CONFIG_GARAGE_ENDPOINT=$GARAGE_URL RCLONE_CONFIG_GARAGE_REGION=garage
  export RCLONE_CONFIG_GARAGE_FORCE_PATH_STYLE=true RCLONE_CONFIG_GARAGE_ENV_AUTH=false
  export RCLONE_CONFIG=/dev/null
  # rclone (its AWS SDK) cannot apply AWS_CA_BUNDLE to its own HTTP transport and refuses to start
  # when it is set ("LoadCustomCABundleError"); the endpoint is plain HTTP, so drop it for rclone.
  RCLONE=(env -u AWS_CA_BUNDLE rclone)
  log "Fresh Garage $("$GARAGE_BIN" --version | head -n1 | awk '{print $2}') on $GARAGE_URL (db ${GARAGE_DB_ENGINE:-sqlite})"
}

# A command prefix (for /usr/bin/time, which cannot run shell functions) with Garage's key.
GK_ENV=(env AWS_ACCESS_KEY_ID="$GK_ID" AWS_SECRET_ACCESS_KEY="$GK_SECRET" AWS_EC2_METADATA_DISABLED=true
  AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent)
# fresh_garage: a new, empty Garage for the next measurement, so that no tool runs on the metadata
# (and the background work) left by the ones before it.
fresh_garage() {
  if [ -n "$GARAGE_PID" ]; then
    kill "$GARAGE_PID" 2>/dev/null || true
    wait "$GARAGE_PID" 2>/dev/null || true
    GARAGE_PID=""
    rm -rf "$WORK/garage"
  fi
  start_garage
}
with_garage_key() { "${GK_ENV[@]}" "$@"; }

BUCKET_SEQ=0
SEEDED_AT=0
# seed N BUCKET...: fresh buckets, N uploads each, checked by a full listing.
seed() {
  local n=$1 b got args=()
  shift
  for b in "$@"; do args+=(--bucket "$b"); done
  with_garage_key "$SEED" seed --endpoint "$GARAGE_URL" --uploads "$n" --part-size "$PART_SIZE" \
    --prefixes "$PREFIXES" --concurrency "$SEED_CONCURRENCY" "${args[@]}" \
    2> >(sed 's/^/    /' >&2) || die "seeding $* failed"
  SEEDED_AT=$(now)
  for b in "$@"; do
    got=$(with_garage_key "$SEED" count --endpoint "$GARAGE_URL" --bucket "$b")
    [ "$got" = "$n" ] || die "bucket $b has $got uploads after seeding $n"
  done
}
# new_bucket HINT: a bucket name never used in this run, in $NB.
new_bucket() { BUCKET_SEQ=$((BUCKET_SEQ + 1)); NB="bench-$1-$BUCKET_SEQ"; }
# Every seeded upload must be older than older_than = 1s when a tool starts.
wait_stale() {
  local left
  wait_idle "$GARAGE_PID"
  left=$(calc "1.2 - ($(now) - $SEEDED_AT)")
  if awk "BEGIN { exit !($left > 0) }"; then sleep "$left"; fi
}
# wait_idle PID: polls the server's CPU use until it is quiet (< 5% of a core over 0.5 s), so that
# background work left by the previous tool (Garage's table syncs and GC) is not billed to the next.
wait_idle() {
  local pid=$1 a b deadline=$((SECONDS + 30))
  [ -n "$pid" ] || return 0
  a=$(proc_cpu "$pid")
  while [ $SECONDS -lt $deadline ]; do
    sleep 0.5
    b=$(proc_cpu "$pid")
    if awk "BEGIN { exit !($b - $a < 0.025) }"; then return 0; fi
    a=$b
  done
  log "  (the server is still busy after 30 s; measuring anyway)"
}
assert_empty() {
  local b got
  for b in "$@"; do
    got=$(with_garage_key "$SEED" count --endpoint "$GARAGE_URL" --bucket "$b")
    [ "$got" = 0 ] || die "$TOOL left $got uploads in bucket $b (it should have aborted them all)"
  done
}

# ---------------------------------------------------------------------------------------------
# Measuring

# measure NAME SERVER_PID CMD...: runs CMD under /usr/bin/time -v; sets M_WALL (s), M_CPU (user+sys
# s), M_RSS (KiB), M_SRV (server CPU s meanwhile). Output in $WORK/NAME.{out,err,time}.
measure() {
  local name=$1 srv=$2 t0 t1 s0 s1 rc=0
  shift 2
  s0=$(proc_cpu "$srv")
  t0=$(now)
  /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  t1=$(now)
  s1=$(proc_cpu "$srv")
  if [ $rc != 0 ]; then
    tail -n 30 "$WORK/$name.err" "$WORK/$name.out" >&2 || true
    die "$name exited with status $rc"
  fi
  M_WALL=$(calc "$t1 - $t0" 3)
  M_SRV=$(calc "$s1 - $s0")
  read -r M_CPU M_RSS < <(time_fields "$WORK/$name.time")
}
# "cpu_seconds max_rss_kib" from a /usr/bin/time -v file.
time_fields() {
  awk -F': ' '/User time \(seconds\)/ { u = $2 } /System time \(seconds\)/ { s = $2 }
    /Maximum resident set size/ { r = $2 } END { printf "%.2f %d\n", u + s, r }' "$1"
}

ROWS=()
# row TOOL UPLOADS WALL CPU RSS_KIB SERVER_CPU
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); }
row_from_last() { row "$1" "$2" "$M_WALL" "$M_CPU" "$M_RSS" "$M_SRV"; }
# Markdown table of ROWS.
table() {
  printf '| tool | uploads | wall s | uploads/s | CPU s | CPU ms/upload | peak RSS MiB | server CPU s |\n'
  printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
  local r
  for r in "${ROWS[@]}"; do
    awk -F'|' '{
      cpu = ($4 == "") ? "-" : sprintf("%.2f", $4)
      ms = ($4 == "") ? "-" : sprintf("%.3f", 1000 * $4 / $2)
      rss = ($5 == "") ? "-" : sprintf("%.1f", $5 / 1024)
      printf "| %s | %d | %.2f | %.0f | %s | %s | %s | %.2f |\n", $1, $2, $3, $2 / $3, cpu, ms, rss, $6
    }' <<<"$r"
  done
}
field() { awk -F'|' -v f="$2" '{ print $f }' <<<"$1"; }

janitor_config() { # FILE ENDPOINT REGION OLDER_THAN CONCURRENCY BUCKET...
  local file=$1 url=$2 region=$3 older=$4 conc=$5 b
  shift 5
  {
    printf '[defaults]\nendpoint_url = "%s"\nregion = "%s"\nforce_path_style = true\n' "$url" "$region"
    printf 'older_than = "%s"\nconcurrency = %s\n%s\n\n' "$older" "$conc" "$JANITOR_EXTRA"
    # A pinned concurrency above the default run-wide cap gets a cap to match; the default
    # (adaptive) configuration is measured as it ships.
    printf '[daemon]\nparallel_targets = 8\n'
    if [ "$conc" -gt 1024 ]; then printf 'max_in_flight = %s\n' "$conc"; fi
    printf '\n'
    printf '[metrics]\nlisten = ""\n'
    for b in "$@"; do printf '\n[[targets]]\nbucket = "%s"\n' "$b"; done
  } >"$file"
}

# janitor_garage NAME N CONCURRENCY: seeds a bucket, sweeps it, checks. Leaves M_*.
janitor_garage() {
  local name=$1 n=$2 conc=$3 b
  fresh_garage
  new_bucket "$name"
  b=$NB
  seed "$n" "$b"
  janitor_config "$WORK/$name.toml" "$GARAGE_URL" garage 1s "$conc" "$b"
  wait_stale
  TOOL="mpu-janitor (concurrency $conc)"
  log "$TOOL: $n uploads on Garage"
  measure "$name" "$GARAGE_PID" "${GK_ENV[@]}" "$JANITOR" "${JANITOR_FLAGS[@]}" --config "$WORK/$name.toml" once --output json
  "$SEED" check-report "$WORK/$name.out" --uploads "$n" --part-size "$PART_SIZE" >/dev/null ||
    die "$TOOL: its report does not show every upload aborted and verified"
  assert_empty "$b"
  log "  $M_WALL s, $(calc "$n / $M_WALL" 0) uploads/s, CPU $M_CPU s, RSS $((M_RSS / 1024)) MiB, Garage CPU $M_SRV s"
}

# start_endpoint N: the in-memory endpoint with N uploads in its own process (delay
# $ENDPOINT_LATENCY ms). Sets EP_PID, EP_URL, EP_AK, EP_SK, EP_BUCKET, EP_REGION, EP_IN, EP_OUT.
start_endpoint() {
  local n=$1 line kv
  EP_URL="" EP_AK="" EP_SK="" EP_BUCKET="" EP_REGION=""
  coproc EPROC { exec "$ENDPOINT" --uploads "$n" --part-size "$PART_SIZE" --prefixes "$PREFIXES" --latency-ms "$ENDPOINT_LATENCY" --throttle-rate "$ENDPOINT_THROTTLE"; }
  EP_PID=$EPROC_PID
  EP_IN=${EPROC[1]}
  # Our own copy of its stdout: bash may close the coproc's fds as soon as it exits.
  exec {EP_OUT}<&"${EPROC[0]}"
  read -r -t 300 line <&"$EP_OUT" || die "the embedded endpoint did not start"
  for kv in $line; do
    case $kv in
      url=*) EP_URL=${kv#url=} ;; access_key=*) EP_AK=${kv#access_key=} ;;
      secret_key=*) EP_SK=${kv#secret_key=} ;; bucket=*) EP_BUCKET=${kv#bucket=} ;;
      region=*) EP_REGION=${kv#region=} ;;
    esac
  done
  if [ -z "$EP_URL" ] || [ -z "$EP_AK" ] || [ -z "$EP_BUCKET" ]; then die "unexpected first line from bench_endpoint: $line"; fi
}
# stop_endpoint: closes its stdin, checks that it left no upload behind.
stop_endpoint() {
  local stats
  exec {EP_IN}>&-
  read -r -t 60 stats <&"$EP_OUT" || die "the embedded endpoint gave no final stats"
  exec {EP_OUT}<&-
  wait "$EP_PID" || die "the embedded endpoint failed"
  EP_PID=""
  case " $stats " in *" uploads_left=0 "*) ;; *) die "$TOOL left uploads on the endpoint: $stats" ;; esac
}
# rclone_endpoint NAME N: rclone backend cleanup against the in-memory endpoint. Leaves M_*.
rclone_endpoint() {
  local name=$1 n=$2
  start_endpoint "$n"
  TOOL="rclone backend cleanup"
  log "$TOOL: $n uploads on the embedded endpoint (delay $ENDPOINT_LATENCY ms)"
  measure "$name" "$EP_PID" env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null RCLONE_CONFIG_EP_TYPE=s3 \
    RCLONE_CONFIG_EP_PROVIDER=Other RCLONE_CONFIG_EP_ACCESS_KEY_ID="$EP_AK" \
    RCLONE_CONFIG_EP_SECRET_ACCESS_KEY="$EP_SK" RCLONE_CONFIG_EP_ENDPOINT="$EP_URL" \
    RCLONE_CONFIG_EP_REGION="$EP_REGION" RCLONE_CONFIG_EP_FORCE_PATH_STYLE=true \
    RCLONE_CONFIG_EP_ENV_AUTH=false rclone backend cleanup "ep:$EP_BUCKET" -o max-age=1s
  stop_endpoint
}
# janitor_endpoint NAME N CONCURRENCY: the in-memory endpoint in its own process. Leaves M_*.
janitor_endpoint() {
  local name=$1 n=$2 conc=$3 stats
  start_endpoint "$n"
  local url=$EP_URL ak=$EP_AK sk=$EP_SK bucket=$EP_BUCKET region=$EP_REGION in_fd=$EP_IN out_fd=$EP_OUT
  janitor_config "$WORK/$name.toml" "$url" "$region" 1d "$conc" "$bucket"
  TOOL="mpu-janitor (concurrency $conc)"
  log "$TOOL: $n uploads on the embedded endpoint"
  measure "$name" "$EP_PID" env AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" AWS_EC2_METADATA_DISABLED=true \
    AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    "$JANITOR" "${JANITOR_FLAGS[@]}" --config "$WORK/$name.toml" once --output json
  exec {in_fd}>&-
  read -r -t 60 stats <&"$out_fd" || die "the embedded endpoint gave no final stats"
  exec {out_fd}<&-
  wait "$EP_PID" || die "the embedded endpoint failed"
  EP_PID=""
  "$SEED" check-report "$WORK/$name.out" --uploads "$n" --part-size "$PART_SIZE" >/dev/null ||
    die "$TOOL: its report does not show every upload aborted and verified"
  case " $stats " in *" uploads_left=0 "*) ;; *) die "$TOOL left uploads on the endpoint: $stats" ;; esac
  EP_STATS=$stats
  log "  $M_WALL s, $(calc "$n / $M_WALL" 0) uploads/s, CPU $M_CPU s, RSS $((M_RSS / 1024)) MiB, endpoint CPU $M_SRV s"
}

# ---------------------------------------------------------------------------------------------
# Results file

machine_line() {
  local model mem
  model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
  printf '%s cores (%s), %s RAM, %s, kernel %s' "$(nproc)" "${model:-unknown CPU}" "$mem" \
    "$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-Linux}")" "$(uname -r)"
}
versions_line() {
  local rev dirty="" rcl=""
  rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ -z "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] || dirty="+local changes"
  ! command -v rclone >/dev/null || rcl="$(rclone version 2>/dev/null | head -n1), "
  printf '%s (%s%s), %sGarage %s' "$("$JANITOR" --version)" "$rev" "$dirty" \
    "$rcl" "$("$GARAGE_BIN" --version 2>/dev/null | head -n1 | awk '{print $2}')"
}
section_header() { # TITLE
  printf '## %s\n\n' "$1"
  printf -- '- date: %s\n- machine: %s\n- versions: %s\n- command: `%s`\n- load average at the start (1, 5, 15 min): %s\n\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(machine_line)" "$(versions_line)" "$COMMAND" "$LOAD_BEFORE"
}
# write_results SECTION FILE: replaces that section of bench/results.md, keeps the others.
write_results() {
  local name=$1 body=$2 out=$ROOT/bench/results.md s
  mkdir -p "$ROOT/bench"
  {
    printf '# mpu-janitor benchmark results\n\n'
    printf 'Written by `scripts/bench.sh` (each mode replaces its own section). Loopback only; see the\n'
    printf 'script header for what is measured and how.\n\n'
    for s in compare scale tune config-load latency throttle million paths; do
      if [ "$s" = "$name" ]; then
        printf '<!-- section:%s -->\n' "$s"
        cat "$body"
        printf '<!-- /section:%s -->\n\n' "$s"
      elif [ -f "$out" ]; then
        awk -v s="$s" '$0 == "<!-- section:" s " -->" { on = 1 } on { print } $0 == "<!-- /section:" s " -->" { on = 0; print "" }' "$out"
      fi
    done
    # Hand-written sections (`<!-- section:NAME (written by hand ...) -->`) stay at the end as they are.
    if [ -f "$out" ]; then awk '/^<!-- section:[^ ]* \(written by hand/ { on = 1 } on { print }' "$out"; fi
  } >"$WORK/results.md"
  mv "$WORK/results.md" "$out"
  log "Wrote bench/results.md (section $name)"
}
verdict() { # VALUE OP TARGET -> "met" / "missed"
  if awk "BEGIN { exit !($1 $2 $3) }"; then echo met; else echo "**missed**"; fi
}

COMMAND="scripts/bench.sh"
[ "$MODE" = compare ] || COMMAND="$COMMAND --${MODE//_/-}"
[ "$MODE" != throttle ] || COMMAND="$COMMAND $THROTTLE_RATE --latency $LATENCY_MS"
[ "$MODE" != latency ] || COMMAND="$COMMAND $LATENCY_MS"
[ "$MODE" != paths ] || [ "$PATHS_ROUNDS" = 2 ] || COMMAND="$COMMAND --rounds $PATHS_ROUNDS"
[ "$PROFILE" = release ] || COMMAND="$COMMAND --$PROFILE"
[ "$UPLOADS" = 10000 ] || COMMAND="$COMMAND --uploads $UPLOADS"
[ "$CONCURRENCY" = 64 ] || COMMAND="$COMMAND --concurrency $CONCURRENCY"
[ "$PART_SIZE" = 1024 ] || COMMAND="$COMMAND --part-size $PART_SIZE"

# ---------------------------------------------------------------------------------------------
# Modes

run_compare() {
  local n=$UPLOADS q=$((UPLOADS / 4)) b id i t0 t1 s0 s1 cpu rss rc pids=() buckets=()
  # The embedded endpoint first, while no Garage runs beside it.
  janitor_endpoint endpoint "$n" "$CONCURRENCY"
  local ep_row="mpu-janitor once vs embedded endpoint (concurrency $CONCURRENCY)|$n|$M_WALL|$M_CPU|$M_RSS|$M_SRV"

  # Every tool gets a fresh Garage of its own, so the order does not matter.
  fresh_garage
  new_bucket rclone
  b=$NB
  seed "$n" "$b"
  wait_stale
  TOOL="rclone backend cleanup"
  log "$TOOL: $n uploads"
  measure rclone "$GARAGE_PID" "${RCLONE[@]}" backend cleanup "garage:$b" -o max-age=1s
  assert_empty "$b"
  row_from_last "rclone backend cleanup" "$n"
  log "  $M_WALL s, $(calc "$n / $M_WALL" 0) uploads/s, CPU $M_CPU s, Garage CPU $M_SRV s"

  fresh_garage
  for i in 1 2 3 4; do new_bucket rclone4 && buckets+=("$NB"); done
  seed "$q" "${buckets[@]}"
  wait_stale
  TOOL="4 x rclone backend cleanup"
  log "$TOOL: 4 x $q uploads at once"
  s0=$(proc_cpu "$GARAGE_PID")
  t0=$(now)
  for i in 0 1 2 3; do
    /usr/bin/time -v -o "$WORK/rclone4-$i.time" "${RCLONE[@]}" backend cleanup "garage:${buckets[$i]}" -o max-age=1s \
      >"$WORK/rclone4-$i.out" 2>"$WORK/rclone4-$i.err" &
    pids+=($!)
  done
  rc=0
  for i in 0 1 2 3; do wait "${pids[$i]}" || rc=$?; done
  t1=$(now)
  s1=$(proc_cpu "$GARAGE_PID")
  [ $rc = 0 ] || { tail -n 20 "$WORK"/rclone4-*.err >&2; die "an rclone of the four failed"; }
  cpu=0
  rss=0
  for i in 0 1 2 3; do
    read -r c r < <(time_fields "$WORK/rclone4-$i.time")
    cpu=$(calc "$cpu + $c")
    rss=$((rss + r))
  done
  assert_empty "${buckets[@]}"
  M_WALL=$(calc "$t1 - $t0" 3)
  M_SRV=$(calc "$s1 - $s0")
  row "4 x rclone at once (4 x $q; RSS summed)" "$((4 * q))" "$M_WALL" "$cpu" "$rss" "$M_SRV"
  log "  $M_WALL s, $(calc "$((4 * q)) / $M_WALL" 0) uploads/s, CPU $cpu s, Garage CPU $M_SRV s"

  janitor_garage janitor "$n" "$CONCURRENCY"
  row_from_last "mpu-janitor once (concurrency $CONCURRENCY; 3 requests/upload)" "$n"

  fresh_garage
  new_bucket garage
  b=$NB
  seed "$n" "$b"
  wait_stale
  TOOL="garage bucket cleanup-incomplete-uploads"
  log "$TOOL: $n uploads (server-side)"
  # A bucket created through S3 has only a local alias (the key's): the CLI wants its id.
  id=$(garage_cli bucket list | awk -v a="$GK_ID:$b" '{ for (i = 2; i <= NF; i++) if ($i == a) print $1 }')
  [ -n "$id" ] || die "no id for bucket $b in: $(garage_cli bucket list)"
  measure garage-cleanup "$GARAGE_PID" env RUST_LOG=warn "$GARAGE_BIN" -c "$GARAGE_CONF" bucket cleanup-incomplete-uploads --older-than 1s "$id"
  assert_empty "$b"
  row "garage bucket cleanup-incomplete-uploads (server-side; CPU is the CLI's)" "$n" "$M_WALL" "$M_CPU" "$M_RSS" "$M_SRV"
  log "  $M_WALL s, Garage CPU $M_SRV s"

  local garage_rows=("${ROWS[@]}")

  # Ratios.
  local r1=${garage_rows[0]} r4=${garage_rows[1]} rj=${garage_rows[2]}
  local jw rw fw jc rc1 wall_ratio floor_ratio cpu_ratio ep_rate ep_cpu_ms ep_rss
  jw=$(field "$rj" 3)
  rw=$(field "$r1" 3)
  fw=$(field "$r4" 3)
  jc=$(calc "$(field "$rj" 4) / $(field "$rj" 2)" 6)
  rc1=$(calc "$(field "$r1" 4) / $(field "$r1" 2)" 6)
  wall_ratio=$(calc "$jw / $rw")
  floor_ratio=$(calc "$jw / $fw")
  cpu_ratio=$(calc "$jc / $rc1")
  ep_rate=$(calc "$(field "$ep_row" 2) / $(field "$ep_row" 3)" 0)
  ep_cpu_ms=$(calc "1000 * $(field "$ep_row" 4) / $(field "$ep_row" 2)" 3)
  ep_rss=$(calc "$(field "$ep_row" 5) / 1024" 1)

  local body=$WORK/compare.md
  {
    section_header "Compare: $n stale uploads on loopback Garage"
    printf 'Each tool on a fresh Garage and freshly seeded bucket(s) (one %s-byte part per upload, keys over %s\n' "$PART_SIZE" "$PREFIXES"
    printf 'prefixes); every bucket checked empty afterwards, and the janitor'"'"'s report checked for\n'
    printf '%s uploads aborted, verified and %s bytes reclaimed. "server CPU s" is what Garage (or the\n' "$n" "$((n * PART_SIZE))"
    printf 'embedded endpoint) spent meanwhile.\n\n'
    ROWS=("${garage_rows[@]}")
    table
    printf '\n| ratio | measured | target | |\n|---|---:|---:|---|\n'
    printf '| janitor wall / rclone wall | %s | <= 0.8 | %s |\n' "$wall_ratio" "$(verdict "$wall_ratio" '<=' 0.8)"
    printf '| janitor wall / 4-rclone floor wall | %s | <= 1.3 | %s |\n' "$floor_ratio" "$(verdict "$floor_ratio" '<=' 1.3)"
    printf '| janitor CPU per upload / rclone CPU per upload | %s | < 1 | %s |\n' "$cpu_ratio" "$(verdict "$cpu_ratio" '<' 1)"
    printf '\n### Embedded in-memory endpoint (its own process; the client'"'"'s ceiling)\n\n'
    ROWS=("$ep_row")
    table
    printf '\n| figure | measured | target | |\n|---|---:|---:|---|\n'
    printf '| uploads/s through the full sweep | %s | >= 5000 | %s |\n' "$ep_rate" "$(verdict "$ep_rate" '>=' 5000)"
    printf '| janitor CPU ms per upload | %s | | |\n' "$ep_cpu_ms"
    printf '| janitor peak RSS MiB | %s | < 40 | %s |\n' "$ep_rss" "$(verdict "$ep_rss" '<' 40)"
    printf '\nEndpoint counters: `%s`\n\n' "$EP_STATS"
  } >"$body"
  printf '\n' && cat "$body"
  write_results compare "$body"
}

run_scale() {
  local n r rss5 rss50 wall5 wall50
  for n in $SCALE_ENDPOINT; do
    janitor_endpoint "endpoint-$n" "$n" "$CONCURRENCY"
    row_from_last "janitor vs embedded endpoint" "$n"
  done
  local ep_rows=("${ROWS[@]}")
  ROWS=()
  for n in $SCALE_GARAGE; do
    janitor_garage "garage-$n" "$n" "$CONCURRENCY"
    row_from_last "janitor vs Garage" "$n"
  done
  local garage_rows=("${ROWS[@]}")
  for r in "${ep_rows[@]}"; do
    case $(field "$r" 2) in
      5000) rss5=$(field "$r" 5); wall5=$(field "$r" 3) ;;
      50000) rss50=$(field "$r" 5); wall50=$(field "$r" 3) ;;
    esac
  done
  local body=$WORK/scale.md rss_ratio rss50_mib
  rss_ratio=$(calc "${rss50:-0} / ${rss5:-1}")
  rss50_mib=$(calc "${rss50:-0} / 1024" 1)
  {
    section_header "Scale: how time and memory grow (concurrency $CONCURRENCY)"
    ROWS=("${ep_rows[@]}" "${garage_rows[@]}")
    table
    printf '\n| figure | measured | target | |\n|---|---:|---:|---|\n'
    printf '| peak RSS 50k / 5k (endpoint) | %s | <= 1.2 | %s |\n' "$rss_ratio" "$(verdict "$rss_ratio" '<=' 1.2)"
    printf '| peak RSS at 50k MiB | %s | < 40 | %s |\n' "$rss50_mib" "$(verdict "$rss50_mib" '<' 40)"
    printf '| wall 50k / 5k (endpoint; 10 = linear) | %s | | |\n\n' "$(calc "${wall50:-0} / ${wall5:-1}")"
  } >"$body"
  printf '\n' && cat "$body"
  write_results scale "$body"
}

run_tune() {
  local c g_rows=() e_rows=() i
  for c in $TUNE_LIST; do
    janitor_endpoint "tune-endpoint-$c" "$UPLOADS" "$c"
    e_rows+=("$c|$M_WALL|$M_CPU|$M_RSS|$M_SRV")
  done
  for c in $TUNE_LIST; do
    janitor_garage "tune-garage-$c" "$UPLOADS" "$c"
    g_rows+=("$c|$M_WALL|$M_CPU|$M_RSS|$M_SRV")
  done
  local body=$WORK/tune.md
  {
    section_header "Tune: the janitor's concurrency, $UPLOADS uploads"
    printf '| concurrency | Garage wall s | uploads/s | CPU ms/upload | RSS MiB | Garage CPU s | endpoint wall s | uploads/s | CPU ms/upload | RSS MiB |\n'
    printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    for i in "${!g_rows[@]}"; do
      awk -F'|' -v n="$UPLOADS" -v e="${e_rows[$i]}" 'BEGIN { split(e, x, "|") } {
        printf "| %d | %.2f | %.0f | %.3f | %.1f | %.2f | %.2f | %.0f | %.3f | %.1f |\n",
          $1, $2, n / $2, 1000 * $3 / n, $4 / 1024, $5, x[2], n / x[2], 1000 * x[3] / n, x[4] / 1024 }' <<<"${g_rows[$i]}"
    done
    printf '\n'
  } >"$body"
  printf '\n' && cat "$body"
  write_results tune "$body"
}

# Config load: check-config (read, layer, validate, print) on generated configurations of N
# targets, every tenth overriding two keys; the printed targets are counted. Linear loading means
# the time per target stays flat as N grows tenfold.
run_config_load() {
  local n f rows=() per first_per="" last_per="" got
  for n in $CONFIG_TARGETS; do
    f=$WORK/targets-$n.toml
    awk -v n="$n" 'BEGIN {
      print "[defaults]\nolder_than = \"7d\"\n[metrics]\nlisten = \"\"\n"
      for (i = 0; i < n; i++) {
        printf "[[targets]]\nbucket = \"bench-%07d\"\nprefix = \"p/%d/\"\n", i, i
        if (i % 10 == 0) printf "older_than = \"3d\"\nexclude_prefixes = [\"keep/\"]\n"
        print ""
      } }' >"$f"
    measure "config-load-$n" "" env -u MPU_JANITOR_CONFIG RUST_LOG=warn "$JANITOR" --config "$f" check-config
    got=$(grep -c '^\[\[targets\]\]' "$WORK/config-load-$n.out" || true)
    [ "$got" = "$n" ] || die "check-config printed $got targets of $n"
    per=$(calc "1000000 * $M_WALL / $n" 1)
    [ -n "$first_per" ] || first_per=$per
    last_per=$per
    rows+=("$n|$M_WALL|$M_CPU|$(calc "$M_RSS / 1024" 1)|$per")
    log "config load: $n targets in $M_WALL s"
  done
  local body=$WORK/config-load.md r
  {
    printf '## Config load: check-config on 1k to 100k targets (%s build)\n\n' "$PROFILE"
    printf -- '- date: %s\n- machine: %s\n- version: %s (%s)\n- command: `%s`\n- load average at the start (1, 5, 15 min): %s\n\n' \
      "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(machine_line)" "$("$JANITOR" --version)" \
      "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$COMMAND" "$LOAD_BEFORE"
    printf '| targets | wall s | CPU s | peak RSS MiB | wall us/target |\n|---:|---:|---:|---:|---:|\n'
    for r in "${rows[@]}"; do
      awk -F'|' '{ printf "| %d | %.2f | %.2f | %.1f | %.1f |\n", $1, $2, $3, $4, $5 }' <<<"$r"
    done
    printf '\n| figure | measured | target | |\n|---|---:|---:|---|\n'
    printf '| wall per target, largest / smallest (1 = linear) | %s | <= 2 | %s |\n\n' \
      "$(calc "$last_per / $first_per")" "$(verdict "$(calc "$last_per / $first_per")" '<=' 2)"
  } >"$body"
  printf '\n' && cat "$body"
  write_results config-load "$body"
}

# The default configuration (concurrency adapting) on the endpoint with no delay and with
# LATENCY_MS before every answer, and rclone through the same delay (on at most 2,000 uploads: it
# does one at a time, so its rate does not depend on how many). Then the ceiling of this host: the
# loopback run again, its concurrency pinned at the depth that 0.9 of its rate needs through the
# delay (Little's law: rate x three round trips an upload, one after another). Both processes pay
# for each upload in flight (a connection at each end, its buffers and task), whatever the
# delay, so no limit reaches more at LATENCY_MS than this run reaches with none.
run_latency() {
  local n=$UPLOADS rn loop lat rcl deep peak depth
  rn=$((n < 2000 ? n : 2000))
  ENDPOINT_LATENCY=0
  janitor_endpoint latency-loopback "$n" 0
  loop="$M_WALL|$M_CPU|$M_RSS"
  ENDPOINT_LATENCY=$LATENCY_MS
  janitor_endpoint latency-janitor "$n" 0
  lat="$M_WALL|$M_CPU|$M_RSS"
  peak=$(grep -o '"concurrency_peak": [0-9]*' "$WORK/latency-janitor.out" | head -n1 | awk '{print $2}')
  rclone_endpoint latency-rclone "$rn"
  rcl="$M_WALL|$M_CPU|$M_RSS"
  local body=$WORK/latency.md ups_loop ups_lat ups_rcl ups_deep tolerance vs ceiling hidden reach
  ups_loop=$(calc "$n / $(field "$loop" 1)" 0)
  depth=$(calc "0.9 * $ups_loop * 3 * $LATENCY_MS / 1000" 0)
  [ "$depth" -ge 1 ] || depth=1
  ENDPOINT_LATENCY=0
  janitor_endpoint latency-deep "$n" "$depth"
  deep="$M_WALL|$M_CPU|$M_RSS"
  ups_lat=$(calc "$n / $(field "$lat" 1)" 0)
  ups_rcl=$(calc "$rn / $(field "$rcl" 1)" 1)
  ups_deep=$(calc "$n / $(field "$deep" 1)" 0)
  tolerance=$(calc "$ups_lat / $ups_loop")
  vs=$(calc "$ups_lat / $ups_rcl" 1)
  ceiling=$(calc "$ups_deep / $ups_loop")
  hidden=$(calc "$ups_lat / $ups_deep")
  reach=$(awk "BEGIN { print ($ceiling >= 0.9) ? \"0.9 within reach\" : \"0.9 out of reach on this host\" }")
  {
    section_header "Latency: $LATENCY_MS ms before every answer, $n uploads, default configuration"
    printf '| figure | measured | target | |\n|---|---:|---:|---|\n'
    printf '| uploads/s at %s ms / uploads/s on loopback (the janitor) | %s | >= 0.9 | %s |\n' "$LATENCY_MS" "$tolerance" "$(verdict "$tolerance" '>=' 0.9)"
    printf '| janitor / rclone uploads/s, both at %s ms | %s | >= 20 | %s |\n' "$LATENCY_MS" "$vs" "$(verdict "$vs" '>=' 20)"
    printf '| the ceiling of this host: uploads/s on loopback at the depth 0.9 needs at %s ms (%s in flight) / uploads/s on loopback | %s | - | %s |\n' "$LATENCY_MS" "$depth" "$ceiling" "$reach"
    printf '| uploads/s at %s ms / the ceiling (the latency hidden, at the cost of depth of this host) | %s | >= 0.9 | %s |\n\n' "$LATENCY_MS" "$hidden" "$(verdict "$hidden" '>=' 0.9)"
    printf '| run | uploads | wall s | uploads/s | CPU s | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|\n'
    printf '| janitor, loopback | %s | %s | %s | %s | %s |\n' "$n" "$(field "$loop" 1)" "$ups_loop" "$(field "$loop" 2)" "$(calc "$(field "$loop" 3) / 1024" 1)"
    printf '| janitor, %s ms (concurrency peak %s) | %s | %s | %s | %s | %s |\n' "$LATENCY_MS" "${peak:-?}" "$n" "$(field "$lat" 1)" "$ups_lat" "$(field "$lat" 2)" "$(calc "$(field "$lat" 3) / 1024" 1)"
    printf '| janitor, loopback, concurrency pinned at %s | %s | %s | %s | %s | %s |\n' "$depth" "$n" "$(field "$deep" 1)" "$ups_deep" "$(field "$deep" 2)" "$(calc "$(field "$deep" 3) / 1024" 1)"
    printf '| rclone backend cleanup, %s ms | %s | %s | %s | %s | %s |\n\n' "$LATENCY_MS" "$rn" "$(field "$rcl" 1)" "$ups_rcl" "$(field "$rcl" 2)" "$(calc "$(field "$rcl" 3) / 1024" 1)"
  } >"$body"
  printf '\n' && cat "$body"
  write_results latency "$body"
}

# ep_stat NAME: one counter of the endpoint's final line ($EP_STATS).
ep_stat() { tr ' ' '\n' <<<"$EP_STATS" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# The endpoint's token bucket at THROTTLE_RATE requests a second per prefix partition, every upload
# under one prefix, LATENCY_MS before every answer: the janitor's default configuration on both
# request paths, and rclone through the same endpoint (on 500 uploads).
run_throttle() {
  local n=$UPLOADS body=$WORK/throttle.md path lines="" ok=1 admitted reached share peak backoffs
  PREFIXES=1
  ENDPOINT_LATENCY=$LATENCY_MS
  ENDPOINT_THROTTLE=$THROTTLE_RATE
  for path in auto sdk; do
    JANITOR_EXTRA="request_path = \"$path\""
    janitor_endpoint "throttle-$path" "$n" 0
    admitted=$(ep_stat throttle_admitted)
    reached=$(calc "$admitted / $M_WALL / $THROTTLE_RATE")
    share=$(calc "100 * $(ep_stat throttled) / $(ep_stat requests)")
    peak=$(grep -o '"concurrency_peak": [0-9]*' "$WORK/throttle-$path.out" | head -n1 | awk '{print $2}')
    backoffs=$(grep -o '"throttle_backoffs": [0-9]*' "$WORK/throttle-$path.out" | head -n1 | awk '{print $2}')
    lines+="| $path | $M_WALL | $(calc "$n / $M_WALL" 0) | $(calc "$admitted / $M_WALL" 0) | **$reached** | **$share%** | $(ep_stat throttled) of $(ep_stat requests) | ${peak:-?} | ${backoffs:-?} |"$'\n'
    awk "BEGIN { exit !($reached >= 0.9 && $share < 1) }" || ok=0
    eval "reached_$path=$reached share_$path=$share"
  done
  JANITOR_EXTRA=""
  rclone_endpoint throttle-rclone 500
  local rcl_ups
  rcl_ups=$(calc "500 / $M_WALL" 1)
  {
    section_header "Throttle: $THROTTLE_RATE requests/s per prefix partition, $LATENCY_MS ms before every answer, $n uploads under one prefix"
    printf '| figure | measured | target | |\n|---|---:|---:|---|\n'
    # shellcheck disable=SC2154 # set by the eval above
    printf '| share of the limit sustained, lean / SDK path | %s / %s | >= 0.9 | %s |\n' "$reached_auto" "$reached_sdk" "$(verdict "$reached_auto" '>=' 0.9) / $(verdict "$reached_sdk" '>=' 0.9)"
    # shellcheck disable=SC2154
    printf '| requests throttled, lean / SDK path | %s%% / %s%% | < 1%% | %s |\n\n' "$share_auto" "$share_sdk" "$(verdict "$share_auto" '<' 1) / $(verdict "$share_sdk" '<' 1)"
    printf '| request path | wall s | uploads/s | requests admitted/s | share of the limit | throttled | requests | concurrency peak | throttle backoffs |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    printf '%s\n' "$lines"
    printf 'rclone backend cleanup through the same endpoint: %s uploads/s (500 uploads; one request at a time never meets the limit).\n\n' "$rcl_ups"
  } >"$body"
  printf '\n' && cat "$body"
  write_results throttle "$body"
  [ $ok = 1 ] || log "throttle: a target was missed (see the table)"
}

# 1,000,000 stale uploads in one bucket on the endpoint against 100,000, default configuration, and
# rclone's rate on 10,000.
run_million() {
  local body=$WORK/million.md small large rcl
  janitor_endpoint million-100k 100000 0
  small="$M_WALL|$M_CPU|$M_RSS"
  janitor_endpoint million-1m 1000000 0
  large="$M_WALL|$M_CPU|$M_RSS"
  rclone_endpoint million-rclone 10000
  rcl="$M_WALL|$M_CPU|$M_RSS"
  local rss_ratio time_ratio rss_mib
  rss_ratio=$(calc "$(field "$large" 3) / $(field "$small" 3)")
  time_ratio=$(calc "$(field "$large" 1) / (10 * $(field "$small" 1))")
  rss_mib=$(calc "$(field "$large" 3) / 1024" 1)
  {
    section_header "A million: 1,000,000 stale uploads in one bucket on the embedded endpoint, default configuration"
    printf '| figure | measured | target | |\n|---|---:|---:|---|\n'
    printf '| peak RSS at 1M, MiB | %s | < 40 | %s |\n' "$rss_mib" "$(verdict "$rss_mib" '<' 40)"
    printf '| peak RSS 1M / 100k | %s | <= 1.2 | %s |\n' "$rss_ratio" "$(verdict "$rss_ratio" '<=' 1.2)"
    printf '| wall 1M / (10 x wall 100k) | %s | <= 1.2 | %s |\n' "$time_ratio" "$(verdict "$time_ratio" '<=' 1.2)"
    printf '| janitor / rclone uploads/s | %s | | |\n\n' "$(calc "1000000 / $(field "$large" 1) / (10000 / $(field "$rcl" 1))" 1)"
    printf '| run | uploads | wall s | uploads/s | CPU s | CPU ms/upload | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|\n'
    printf '| janitor | 100000 | %s | %s | %s | %s | %s |\n' "$(field "$small" 1)" "$(calc "100000 / $(field "$small" 1)" 0)" "$(field "$small" 2)" "$(calc "1000 * $(field "$small" 2) / 100000" 3)" "$(calc "$(field "$small" 3) / 1024" 1)"
    printf '| janitor | 1000000 | %s | %s | %s | %s | %s |\n' "$(field "$large" 1)" "$(calc "1000000 / $(field "$large" 1)" 0)" "$(field "$large" 2)" "$(calc "1000 * $(field "$large" 2) / 1000000" 3)" "$rss_mib"
    printf '| rclone backend cleanup | 10000 | %s | %s | %s | %s | %s |\n\n' "$(field "$rcl" 1)" "$(calc "10000 / $(field "$rcl" 1)" 0)" "$(field "$rcl" 2)" "$(calc "1000 * $(field "$rcl" 2) / 10000" 3)" "$(calc "$(field "$rcl" 3) / 1024" 1)"
  } >"$body"
  printf '\n' && cat "$body"
  write_results million "$body"
}

# The same sweep ($UPLOADS uploads, concurrency $CONCURRENCY) from one build on both request paths:
# `request_path = "auto"` (the lean path wherever the endpoint is plain SigV4, as both are here) and
# "sdk" (every call through aws-sdk-s3's pipeline), on the embedded endpoint and on a fresh Garage,
# PATHS_ROUNDS runs of each in the order auto, sdk, sdk, auto, ... so that a drift in the load of
# the machine falls on both. Every run is checked as the other modes check theirs; the connect
# module's debug line says which path a run took (checked), and on the endpoint both paths must
# send the same number of requests.
run_paths() {
  local n=$UPLOADS body=$WORK/paths.md server path i order name took want recs=() r
  JANITOR_FLAGS=(--log-level "info,mpu_janitor::store::connect=debug")
  for server in endpoint garage; do
    for ((i = 1; i <= PATHS_ROUNDS; i++)); do
      if ((i % 2 == 1)); then order="auto sdk"; else order="sdk auto"; fi
      for path in $order; do
        JANITOR_EXTRA="request_path = \"$path\""
        name=paths-$server-$path-$i
        log "Request path $path, run $i of $PATHS_ROUNDS"
        if [ "$server" = endpoint ]; then
          janitor_endpoint "$name" "$n" "$CONCURRENCY"
        else
          janitor_garage "$name" "$n" "$CONCURRENCY"
        fi
        took=lean want=lean
        if grep -q 'take the SDK request path' "$WORK/$name.err"; then took=sdk; fi
        [ "$path" = auto ] || want=sdk
        [ "$took" = "$want" ] || die "$name: request_path = \"$path\" took the $took path"
        r=0
        [ "$server" = garage ] || r=$(ep_stat requests)
        recs+=("$server|$path|$i|$M_WALL|$M_CPU|$M_RSS|$M_SRV|$r")
      done
    done
  done
  JANITOR_FLAGS=()
  JANITOR_EXTRA=""
  # The endpoint's request counts: one sweep is one set of requests, whichever path sends them.
  local counts
  counts=$(printf '%s\n' "${recs[@]}" | awk -F'|' '$1 == "endpoint" { print $8 }' | sort -u | tr '\n' ' ')
  [ "$(wc -w <<<"$counts")" = 1 ] || die "the two paths sent different numbers of requests to the endpoint: $counts"
  {
    section_header "Request paths: the same sweep on the lean and the SDK path, $n uploads, concurrency $CONCURRENCY"
    printf 'One release build; `request_path = "auto"` (the lean path: hyper and aws-sigv4) against\n'
    printf '`request_path = "sdk"` (aws-sdk-s3'"'"'s pipeline), %s run(s) of each on each server, in the\n' "$PATHS_ROUNDS"
    printf 'order auto, sdk, sdk, auto, ...; each run'"'"'s path checked in its log, its report checked for\n'
    printf '%s uploads aborted, verified and %s bytes reclaimed, the bucket checked empty. Garage is\n' "$n" "$((n * PART_SIZE))"
    printf 'fresh and freshly seeded for every run. Figures per path are over all its runs: uploads/s\n'
    printf 'is all uploads over all wall time, CPU (user+sys, the janitor only) per upload likewise, peak\n'
    printf 'RSS the highest. On the endpoint every run sent %s requests.\n\n' "${counts% }"
    printf '| server | request path | runs | wall s (mean) | uploads/s | CPU s (mean) | CPU ms/upload | peak RSS MiB | server CPU s (mean) |\n'
    printf '|---|---|---:|---:|---:|---:|---:|---:|---:|\n'
    printf '%s\n' "${recs[@]}" | awk -F'|' -v n="$n" '
      { k = $1 "|" ($2 == "auto" ? "lean (auto)" : "sdk"); if (!(k in runs)) keys[++nk] = k
        runs[k]++; wall[k] += $4; cpu[k] += $5; srv[k] += $7; if ($6 > rss[k]) rss[k] = $6 }
      END {
        for (i = 1; i <= nk; i++) { k = keys[i]; split(k, x, "|")
          printf "| %s | %s | %d | %.2f | %.0f | %.2f | %.3f | %.1f | %.2f |\n", (x[1] == "endpoint" ? "embedded endpoint" : "Garage"), x[2],
            runs[k], wall[k] / runs[k], n * runs[k] / wall[k], cpu[k] / runs[k], 1000 * cpu[k] / (n * runs[k]), rss[k] / 1024, srv[k] / runs[k] }
        printf "\n| server | CPU per upload, SDK / lean | uploads/s, SDK / lean |\n|---|---:|---:|\n"
        for (i = 1; i <= nk; i++) { split(keys[i], x, "|"); s = x[1]; if (s in seen) continue; seen[s] = 1
          l = s "|lean (auto)"; d = s "|sdk"
          printf "| %s | **%.2f** | **%.2f** |\n", (s == "endpoint" ? "embedded endpoint" : "Garage"),
            (cpu[d] / runs[d]) / (cpu[l] / runs[l]), (runs[d] / wall[d]) / (runs[l] / wall[l]) }
      }'
    printf '\n| run | server | request path | wall s | uploads/s | CPU s | CPU ms/upload | peak RSS MiB | server CPU s |\n'
    printf '|---:|---|---|---:|---:|---:|---:|---:|---:|\n'
    printf '%s\n' "${recs[@]}" | awk -F'|' -v n="$n" '{
      printf "| %d | %s | %s | %.3f | %.0f | %.2f | %.3f | %.1f | %.2f |\n", $3, ($1 == "endpoint" ? "embedded endpoint" : "Garage"),
        ($2 == "auto" ? "lean (auto)" : "sdk"), $4, n / $4, $5, 1000 * $5 / n, $6 / 1024, $7 }'
    printf '\n'
  } >"$body"
  printf '\n' && cat "$body"
  write_results paths "$body"
}

log "Mode $MODE; uploads $UPLOADS; janitor concurrency $CONCURRENCY; load average $LOAD_BEFORE; temp dir $WORK"
if awk -v l="${LOAD_BEFORE%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  log "WARNING: the machine is busy (load $LOAD_BEFORE on $(nproc) cores): numbers will be noisy"
fi
"run_$MODE"
