#!/usr/bin/env bash
# The idle `run` daemon between sweeps: its RSS and the CPU it uses over 10 s (issue 7).
# Usage: scripts/bench-idle.sh [BINARY]   (build it first: cargo build --release --locked)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/mpu-janitor}
d=$(mktemp -d)
# A free port for the metrics endpoint (port 0 is refused: a scraper needs a fixed one).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$d/c.toml" <<T
[defaults]
endpoint_url = "http://127.0.0.1:9"
force_path_style = true
schedule = "0 0 0 1 1 *"
[metrics]
listen = "127.0.0.1:$port"
[[targets]]
bucket = "idle-bucket"
T
AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y "$BIN" --config "$d/c.toml" run 2>/dev/null &
pid=$!
sleep 2
kill -0 $pid 2>/dev/null || { echo "bench-idle: the daemon did not start" >&2; exit 1; }
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
sleep 10
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
kill -TERM $pid; wait $pid || true
echo "idle daemon: RSS $((rss/1024)) MiB (peak $((hwm/1024)) MiB), CPU $(( (t1-t0)*10 )) ms over 10 s"
rm -rf "$d"
