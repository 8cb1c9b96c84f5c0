# bench/lib.sh - shared helpers for tallyd's benchmarks (sourced, not run).
#
# Servers are pinned to CPU $SERVER_CPU and load generators to $CLIENT_CPU so
# that contenders meet the same conditions; everything talks to loopback.

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BENCH_TOKEN=${BENCH_TOKEN:-bench-token-0123456789}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${WORK:-}" ]; then
  WORK=$(mktemp -d /tmp/tallyd-bench.XXXXXX)
  WORK_IS_TMP=1   # removed at exit unless KEEP_WORK is set
fi
mkdir -p "$WORK"
chmod 755 "$WORK"   # nginx workers run as www-data
BUILD=${BUILD:-$ROOT/build-release}   # meson build directory (release)
TALLYD_BIN=${TALLYD_BIN:-$BUILD/daemon/tallyd}
PIDS=()

any_alive() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}

cleanup() {
  local p i
  set +e   # best effort: a process may be gone already
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  # Give them 30 s (tallyd finishes requests in flight and writes a
  # snapshot), then SIGKILL.
  for i in $(seq 300); do
    any_alive "${PIDS[@]}" || break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${KEEP_WORK:-}" ] || [ -z "${WORK_IS_TMP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
# Ctrl-C or kill: exit, which runs cleanup (bash skips EXIT traps on signals
# it does not handle).
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_pid PID [SECONDS]: stop one process started here (SIGTERM; SIGKILL
# after SECONDS, default 10: tallyd writes a snapshot at a clean stop) and
# forget it.
stop_pid() {
  local p=$1 i keep=()
  kill "$p" 2>/dev/null || true
  for i in $(seq $((${2:-10} * 20))); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  for i in "${PIDS[@]}"; do [ "$i" = "$p" ] || keep+=("$i"); done
  PIDS=("${keep[@]}")
}

# free_port: a TCP port that no socket uses, below the ephemeral range (so
# that load generators' own connections never take it).
free_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % 20000))
    grep -q ":$(printf '%04X' "$p") " /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return 0; }
  done
}

wait_http() {  # URL [SECONDS (10)] [PID: give up early if it exits]
  local i
  for i in $(seq $((${2:-10} * 50))); do
    curl -kfsS -o /dev/null "$1" 2>/dev/null && return 0
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
      echo "bench: the server for $1 exited" >&2
      return 1
    fi
    sleep 0.02
  done
  echo "bench: $1 did not come up" >&2
  return 1
}

build_release() {
  local log
  [ -d "$BUILD" ] || meson setup "$BUILD" "$ROOT" --buildtype=release >/dev/null
  log=$(ninja -C "$BUILD" 2>&1) ||
    { echo "$log" | tail -40 >&2; echo "bench: the release build in $BUILD failed" >&2; return 1; }
}

# start_tallyd PORT ELECTION DATADIR [extra args...]: foreground daemon, pinned.
start_tallyd() {
  local port=$1 election=$2 dir=$3; shift 3
  mkdir -p "$dir"
  # Every load generator is one loopback address: no per-IP cap here.
  case " $* " in
    *" -f "*) ;;
    *) tallyd_conf "$dir.bench.conf"; set -- "$@" -f "$dir.bench.conf" ;;
  esac
  TALLYD_INGEST_TOKEN=$BENCH_TOKEN taskset -c "$SERVER_CPU" "$TALLYD_BIN" -d \
    --listen "127.0.0.1:$port" --data-dir "$dir" --election "$election" "$@" \
    >"$dir/log" 2>&1 &
  PIDS+=($!)
  TALLYD_PID=$!
  wait_http "${TALLYD_SCHEME:-http}://127.0.0.1:$port/healthz" "${TALLYD_START_TIMEOUT:-10}" "$TALLYD_PID" ||
    { echo "bench: tallyd did not start; its log:" >&2; tail -20 "$dir/log" >&2; return 1; }
}

# tallyd_conf FILE [key value]...: a settings file (e.g. fsync always|off|batch:5)
# Always without the per-IP connection cap: the load comes from one address.
tallyd_conf() {
  local f=$1; shift
  echo "per_ip_connection_limit 0" >"$f"
  while [ $# -ge 2 ]; do printf '%s %s\n' "$1" "$2" >>"$f"; shift 2; done
}

# start_redis PORT APPENDFSYNC DIR: Redis with an append-only file, pinned
# like the other servers; no RDB snapshots, no AOF rewrites while measuring.
start_redis() {
  local port=$1 policy=$2 dir=$3 i
  mkdir -p "$dir"
  taskset -c "$SERVER_CPU" redis-server --port "$port" --bind 127.0.0.1 \
    --appendonly yes --appendfsync "$policy" --save '' --dir "$dir" \
    --auto-aof-rewrite-percentage 0 --daemonize no --logfile "$dir/log" &
  PIDS+=($!)
  REDIS_PID=$!
  for i in $(seq 200); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "bench: redis-server did not start; its log:" >&2
  tail -20 "$dir/log" >&2
  return 1
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
  NGINX_PID=$!
  wait_http "http://127.0.0.1:$port$path" 10 "$NGINX_PID" ||
    { echo "bench: nginx did not start; its log:" >&2; tail -20 "$dir/error.log" >&2; return 1; }
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
  echo "$out" | wrk_parse
}

# wrk_parse: wrk --latency output on stdin -> "rps p50_ms p99_ms [non2xx=N
# ok_rps=R] [errors=N]" (errors: connect, read, write, timeout).
wrk_parse() {
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps=$2 }
    /^ +50%/ { p50=ms($2) }
    /^ +99%/ { p99=ms($2) }
    / requests in / { total=$1 }
    /Non-2xx/ { bad=$NF }
    /Socket errors/ { gsub(/,/, ""); err=$4+$6+$8+$10 }
    END {
      printf "%.0f %.3f %.3f", rps, p50, p99
      # ok_rps: the rate of answers that were not errors (status < 400).
      if (bad) printf " non2xx=%d ok_rps=%.0f", bad, (total ? rps * (total - bad) / total : 0)
      if (err) printf " errors=%d", err
      printf "\n" }'
}

# wrk_script_run URL CONNECTIONS SECONDS SCRIPT [ARGS...]: one wrk thread
# running a Lua script (ARGS go to its init()); prints like wrk_run.
wrk_script_run() {
  local url=$1 conns=$2 secs=$3 script=$4; shift 4
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$script" \
    "$url" -- "$@" 2>&1 | wrk_parse
}

# cpu_ticks PID: CPU time (user + system, every thread) a process has used,
# in clock ticks (getconf CLK_TCK a second).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# mib_rss PID: resident memory of a process in MiB.
mib_rss() { awk '/^VmRSS:/ { printf "%.1f\n", $2/1024 }' "/proc/$1/status"; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
