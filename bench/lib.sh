# bench/lib.sh - shared helpers for tallyd's benchmarks (sourced, not run).
#
# Servers are pinned to CPU $SERVER_CPU and load generators to $CLIENT_CPU so
# that contenders meet the same conditions; everything talks to loopback.

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BENCH_TOKEN=${BENCH_TOKEN:-bench-token-0123456789}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/tallyd-bench.XXXXXX)}
chmod 755 "$WORK"   # nginx workers run as www-data
TALLYD_BIN=${TALLYD_BIN:-$ROOT/build-release/daemon/tallyd}
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() {  # URL
  local i
  for i in $(seq 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: $1 did not come up" >&2
  return 1
}

build_release() {
  [ -d "$ROOT/build-release" ] || meson setup "$ROOT/build-release" --buildtype=release >/dev/null
  ninja -C "$ROOT/build-release" >/dev/null
}

# start_tallyd PORT ELECTION DATADIR [extra args...]: foreground daemon, pinned.
start_tallyd() {
  local port=$1 election=$2 dir=$3; shift 3
  mkdir -p "$dir"
  TALLYD_INGEST_TOKEN=$BENCH_TOKEN taskset -c "$SERVER_CPU" "$TALLYD_BIN" -d \
    --listen "127.0.0.1:$port" --data-dir "$dir" --election "$election" "$@" \
    >"$dir/log" 2>&1 &
  PIDS+=($!)
  TALLYD_PID=$!
  wait_http "http://127.0.0.1:$port/healthz"
}

post_batch() {  # PORT FILE
  curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $BENCH_TOKEN" \
    -H 'Content-Type: application/json' --data-binary "@$2" \
    "http://127.0.0.1:$1/v1/results"
}

# start_nginx PORT FILE URLPATH: one worker serving FILE at URLPATH.
start_nginx() {
  local port=$1 file=$2 path=$3 dir="$WORK/nginx-$1"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60;
  sendfile on;
  open_file_cache max=16 inactive=60s;
  server {
    listen 127.0.0.1:$port backlog=1024;
    location = $path { default_type application/json; alias $file; }
  }
}
CONF
  taskset -c "$SERVER_CPU" nginx -c "$dir/nginx.conf" -p "$dir" &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$port$path"
}

# wrk_run URL CONNECTIONS SECONDS [header]: prints "rps p50_ms p99_ms".
wrk_run() {
  local url=$1 conns=$2 secs=$3 hdr=${4:-} out threads=1
  [ "$conns" -ge 256 ] && threads=1
  if [ -n "$hdr" ]; then
    out=$(taskset -c "$CLIENT_CPU" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -H "$hdr" "$url" 2>&1)
  else
    out=$(taskset -c "$CLIENT_CPU" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$url" 2>&1)
  fi
  echo "$out" | awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps=$2 }
    /^ +50%/ { p50=ms($2) }
    /^ +99%/ { p99=ms($2) }
    /Non-2xx/ { bad=$NF }
    END { printf "%.0f %.3f %.3f %s\n", rps, p50, p99, (bad ? "non2xx=" bad : "") }'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
