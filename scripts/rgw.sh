#!/usr/bin/env bash
# A throwaway single-node Ceph RADOS Gateway (Debian's Ceph 16) on loopback, as plain processes: no
# systemd, no cephx, nothing outside DIR but the packages. For the integration tests.
#
#   scripts/rgw.sh start DIR   install Ceph if missing, start mon, mgr, one memstore OSD and radosgw,
#                              create an S3 user, then print shell-sourceable lines on stdout:
#                                RGW_ENDPOINT=http://127.0.0.1:PORT
#                                RGW_ACCESS_KEY=...  RGW_SECRET_KEY=...  RGW_REGION=...
#                              (progress goes to stderr; everything else to DIR/log).
#   scripts/rgw.sh stop DIR    kill the daemons recorded in DIR/run/*.pid and wait for them.
#   scripts/rgw.sh run DIR     start, print the same lines, then keep running until standard input
#                              closes (or SIGTERM/SIGINT), and stop. A test harness that spawns this
#                              with a piped stdin gets the cluster stopped whenever it exits.
#
# DIR is created if needed and must not hold a running cluster. All daemons bind to 127.0.0.1 only.
# Environment: RGW_ACCESS_KEY / RGW_SECRET_KEY override the fixed test key; RGW_START_TIMEOUT (s,
# default 120) bounds every wait; RGW_MEMSTORE_BYTES (default 1 GiB) is the OSD's capacity, held in
# its memory as objects are written.
set -euo pipefail

ACCESS_KEY=${RGW_ACCESS_KEY:-RGWTESTACCESSKEY0001}
SECRET_KEY=${RGW_SECRET_KEY:-rgwtestsecretkey0123456789abcdefghijklmn}
# RGW's default zonegroup is "default"; SigV4 requests signed for any region are accepted, and
# "default" is the one RGW itself names in GetBucketLocation-style answers.
REGION=default
TIMEOUT=${RGW_START_TIMEOUT:-120}
MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-1073741824}
PACKAGES=(ceph-mon ceph-mgr ceph-osd radosgw ceph-common)

log() { printf 'rgw.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  echo "usage: $0 start|stop|run DIR" >&2
  exit 2
}

install_ceph() {
  local packages=() cmd
  for cmd in ceph-mon ceph-mgr ceph-osd radosgw radosgw-admin ceph monmaptool; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
      packages=("${PACKAGES[@]}")
      break
    fi
  done
  command -v curl >/dev/null 2>&1 || packages+=(curl)
  command -v python3 >/dev/null 2>&1 || packages+=(python3)
  [ ${#packages[@]} -eq 0 ] && return 0
  log "installing ${packages[*]} (apt-get; about 40 s once)"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >&2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for WHAT CMD...: polls CMD until it succeeds; dies if a daemon has exited meanwhile, or after
# $TIMEOUT seconds.
wait_for() {
  local what=$1 deadline=$((SECONDS + TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    alive
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "timed out after ${TIMEOUT}s waiting for $what (logs in $DIR/log)"
    fi
    sleep 0.2
  done
}

# spawn NAME CMD...: runs a daemon in the foreground of a background job, detached from our
# stdin/stdout (so a caller reading our stdout sees EOF when we exit), pid in run/NAME.pid.
spawn() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/run/$name.pid"
  disown $!
}

# quiet CMD...: runs a setup step with its output in log/setup.log; on failure shows the log's end.
quiet() {
  if ! "$@" >>"$DIR/log/setup.log" 2>&1; then
    tail -n 20 "$DIR/log/setup.log" >&2
    die "$1 failed (see $DIR/log/setup.log)"
  fi
}

# ours PID: whether PID is a live daemon of the cluster in $DIR (and not a process that reused the
# number after a reboot).
ours() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$DIR/ceph.conf"
}

alive() {
  local f
  for f in "$DIR"/run/*.pid; do
    [ -e "$f" ] || continue
    kill -0 "$(cat "$f")" 2>/dev/null || die "$(basename "$f" .pid) exited; see $DIR/log"
  done
}

ceph_() { ceph -c "$DIR/ceph.conf" --connect-timeout 10 "$@"; }

write_conf() {
  local fsid=$1 mon_port=$2 rgw_port=$3
  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
ms bind msgr2 = true

# No cephx: nothing here is secret. radosgw (like every client) otherwise insists on msgr2's
# "secure" mode, which needs cephx session keys, so every mode is plain crc.
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc

run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.daemon-pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = false
mon cluster log file = $DIR/log/cluster.log
log to syslog = false
crash dir = $DIR/crash
keyring = $DIR/keyring

osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 4
osd pool default pgp num = 4
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon warn on pool no app = false
mon max pg per osd = 1000
# A throwaway monitor must not stop itself because the host's disk is fuller than 95%.
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = $DIR/mon/\$cluster-\$id
# Commit map changes (pool creations...) at once, not batched over a second.
paxos propose interval = 0.01
paxos min wait = 0.01
mon osd reporter subtree level = osd

[mgr]
mgr data = $DIR/mgr/\$cluster-\$id
# Only the always-on modules.
mgr initial modules =

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
# memstore keeps every object in the OSD's memory: this is the most it will hold.
memstore device bytes = $MEMSTORE_BYTES
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw.a]
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw thread pool size = 64
rgw enable usage log = false
rgw dns name = 127.0.0.1
# Free aborted parts' data within seconds rather than after the default two hours, so that the
# memstore does not fill up during a long test run.
rgw gc obj min wait = 10
rgw gc processor period = 10
EOF
}

osd_up() { ceph_ osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

# RGW answers an anonymous GET / with an empty bucket list and a request id of its own making
# ("tx..."): that tells it from anything else that might have taken the port meanwhile.
rgw_answers() {
  local out
  out=$(curl -sS -i --max-time 5 "http://127.0.0.1:$1/" 2>/dev/null) || return 1
  grep -q '^HTTP/1.1 200' <<<"$out" && grep -qi '^x-amz-request-id: tx' <<<"$out" &&
    grep -q 'ListAllMyBucketsResult' <<<"$out"
}

# The pools radosgw would otherwise create one after another as it starts and on the first bucket.
RGW_POOLS=(.rgw.root default.rgw.control default.rgw.meta default.rgw.log default.rgw.buckets.index
  default.rgw.buckets.non-ec default.rgw.buckets.data)

start() {
  install_ceph
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  local f
  for f in "$DIR"/run/*.pid; do
    if [ -e "$f" ] && ours "$(cat "$f")"; then
      die "$DIR already holds a running cluster (run: $0 stop $DIR)"
    fi
  done
  STARTED=1
  rm -rf "${DIR:?}/mon" "$DIR/mgr" "$DIR/osd" "$DIR/rgw" "$DIR/run" "$DIR/log" "$DIR/crash" \
    "$DIR/monmap" "$DIR/rgw.env"
  mkdir -p "$DIR"/{mon/ceph-a,mgr/ceph-x,osd/ceph-0,rgw,run,log,crash}
  : >"$DIR/keyring"

  local t0=$SECONDS fsid osd_uuid mon_port rgw_port
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  write_conf "$fsid" "$mon_port" "$rgw_port"
  local conf=(-c "$DIR/ceph.conf")

  log "mon on 127.0.0.1:$mon_port"
  quiet monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap"
  quiet ceph-mon "${conf[@]}" --mkfs -i a --monmap "$DIR/monmap"
  spawn mon.a ceph-mon "${conf[@]}" -f -i a
  wait_for "the monitor" ceph_ mon stat

  log "mgr and osd ($((SECONDS - t0)) s)"
  spawn mgr.x ceph-mgr "${conf[@]}" -f -i x
  local id
  id=$(ceph_ osd new "$osd_uuid" 2>>"$DIR/log/setup.log") || die "ceph osd new failed"
  [ "$id" = 0 ] || die "expected osd id 0, got $id"
  quiet ceph-osd "${conf[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid"
  spawn osd.0 ceph-osd "${conf[@]}" -f -i 0
  local pool
  for pool in "${RGW_POOLS[@]}"; do
    quiet ceph_ osd pool create "$pool"
  done
  wait_for "the osd to be up" osd_up

  log "radosgw on 127.0.0.1:$rgw_port ($((SECONDS - t0)) s)"
  spawn rgw.a radosgw "${conf[@]}" -f -n client.rgw.a
  wait_for "radosgw to answer on 127.0.0.1:$rgw_port" rgw_answers "$rgw_port"

  quiet radosgw-admin "${conf[@]}" user create --uid=tests --display-name=tests \
    --access-key="$ACCESS_KEY" --secret="$SECRET_KEY"
  log "ready in $((SECONDS - t0)) s"

  {
    echo "RGW_ENDPOINT=http://127.0.0.1:$rgw_port"
    echo "RGW_ACCESS_KEY=$ACCESS_KEY"
    echo "RGW_SECRET_KEY=$SECRET_KEY"
    echo "RGW_REGION=$REGION"
  } | tee "$DIR/rgw.env"
}

stop() {
  [ -d "$DIR/run" ] || return 0
  DIR=$(cd "$DIR" && pwd)
  local f pid pids=()
  # Nothing here outlives the cluster (memstore keeps data in memory), so no graceful shutdown,
  # which takes each daemon about 2 s: SIGKILL, and wait until each is gone.
  for f in "$DIR"/run/rgw.a.pid "$DIR"/run/osd.0.pid "$DIR"/run/mgr.x.pid "$DIR"/run/mon.a.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    rm -f "$f"
    if ours "$pid" && kill -KILL "$pid" 2>/dev/null; then pids+=("$pid"); fi
  done
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    # (A zombie counts as gone: whoever is its parent reaps it.)
    while kill -0 "$pid" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat" 2>/dev/null &&
      [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.05
    done
  done
}

STARTED=0
stop_on_failure() {
  local status=$?
  if [ "$status" -ne 0 ] && [ "$STARTED" = 1 ]; then stop; fi
}
stop_if_started() {
  if [ "$STARTED" = 1 ]; then stop; fi
}

[ $# -eq 2 ] || usage
DIR=$2
case $1 in
start)
  # A start that fails half-way leaves nothing running.
  trap stop_on_failure EXIT
  start
  ;;
stop) stop ;;
run)
  trap stop_if_started EXIT
  trap 'exit 0' TERM INT HUP
  start
  # Until our stdin closes.
  while read -r _; do :; done
  ;;
*) usage ;;
esac
