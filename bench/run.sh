#!/usr/bin/env bash
# shellcheck disable=SC2317 # the cleanup functions run from traps
# Runs one benchmark scenario against two fresh sparkd instances.
#
#   bench/run.sh fanout|idle|events|pgbench|diff|notify [spark_load options...]
#
# Builds sparkd (release, not sanitized) and spark_load, creates a fresh
# database on the server of $DATABASE_URL (or, when DATABASE_URL is unset, on
# a private cluster in .spark/bench-pg, started and stopped here), migrates
# it, starts instances A and B on loopback, runs the scenario, and stops
# everything and drops the database. Options after the scenario go to
# spark_load (see build-release/.../spark_load --help); JSON results land in
# $BENCH_OUT (default build-release/bench-results).
#
#   fanout   defaults: --clients 5000 --rate 10 --duration 20 --warmup 5
#   idle     defaults: --clients 10000
#   events   runs pgbench first (the ceiling), then spark_load events with
#            --ceiling set to pgbench's best transactions/s
#   diff     render+diff time and patch size for todo lists of 10 to 5,000
#            items (bench/diff_bench; no server, no database; options: the
#            list sizes, e.g. "diff 500 5000")
#   pgbench  only the ceiling: one event per transaction of the same shape as
#            sparkd's writes (set the event settings, update the component;
#            its triggers insert the history row and notify)
#   floor    the fanout scenario (same defaults) against bench/floor_relay
#            instead of sparkd: two processes that relay each chat message
#            to every member with one send() each, and nothing else (no
#            database). What the generator and loopback cost here.
#            BENCH_FLOOR_PACE_MS=50 sends them together every 50 ms instead,
#            one send() a member, as sparkd's rounds do in a busy room.
#   notify   that transaction's commit rate with NOTIFY as 1 to 32 instances
#            listen, without it, and with logical decoding consumers
#            instead (bench/notify_scale.sh, which has its own settings)
#
# Environment: DATABASE_URL; BENCH_PORT_A / BENCH_PORT_B (default 28471 /
# 28472); BENCH_PG_PORT (private cluster, default 54339); BENCH_AUTH (1, the
# default: keys from sparkd keygen and tokens for BENCH_USERS users, default
# 20; 0: no keys, anonymous connections); BENCH_COMPONENTS (events and
# pgbench, default 20); BENCH_PGBENCH_CLIENTS (default "1 2 8");
# BENCH_PGBENCH_SECONDS (default 10); BENCH_KEEP_DB=1 keeps the database;
# BENCH_PERF=1 records a perf profile of instance A (and BENCH_PERF=b of B)
# while spark_load runs, into $BENCH_OUT/perf-*.data, at BENCH_PERF_HZ
# samples a second (499) with BENCH_PERF_CALLS (-g; e.g. "--call-graph
# dwarf" for the callers of libraries built without frame pointers); BENCH_SYNC_COMMIT=off
# sets synchronous_commit off for the bench database (pgbench and instances:
# commits no longer wait for the disk, and a PostgreSQL crash may lose the
# last acknowledged ones), to tell the disk's share of a latency from ours;
# BENCH_SOURCE: the source tree whose sparkd, migrations, sql and web to use
# (default: this checkout; e.g. a `git archive` of a commit to compare);
# BENCH_LOAD: a spark_load binary to run instead of that tree's (another
# generator against the same sparkd).
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=bench/common.sh
source "$root/bench/common.sh"
src=$(cd -- "${BENCH_SOURCE:-$root}" && pwd -P)
cd -- "$src"

log() { echo "bench: $*" >&2; }
die() {
  log "$*"
  exit 2
}

usage() {
  sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

(($# >= 1)) || {
  usage >&2
  exit 2
}
scenario=$1
shift
case $scenario in
  fanout | idle | events | pgbench | diff | floor) ;;
  notify) exec bash "$root/bench/notify_scale.sh" "$@" ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) die "unknown scenario '$scenario' (fanout, idle, events, pgbench, diff, floor or notify)" ;;
esac

port_a=${BENCH_PORT_A:-28471}
port_b=${BENCH_PORT_B:-28472}
auth=${BENCH_AUTH:-1}
users=${BENCH_USERS:-20}
components=${BENCH_COMPONENTS:-20}
pgbench_clients=${BENCH_PGBENCH_CLIENTS:-1 2 8}
pgbench_seconds=${BENCH_PGBENCH_SECONDS:-10}
build=$src/build-release
out=${BENCH_OUT:-$build/bench-results}
pgdir=$root/.spark/bench-pg
stamp=$(date +%Y%m%d-%H%M%S)
work=$(mktemp -d "${TMPDIR:-/tmp}/spark-bench.XXXXXX")
mkdir -p "$out"

pgbench_bin=$(command -v pgbench || true)
[[ -n $pgbench_bin ]] || pgbench_bin=/usr/lib/postgresql/15/bin/pgbench

pids=()
started_pg=false
db_name=""
admin_url=""

stop_instances() {
  local pid deadline
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 15))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "instance $pid did not stop; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}

cleanup() {
  trap '' INT TERM
  if [[ -n ${perf_pid:-} ]]; then kill -INT "$perf_pid" 2>/dev/null || true; fi
  ((${#pids[@]} == 0)) || stop_instances
  if [[ -n $db_name && ${BENCH_KEEP_DB:-0} != 1 ]]; then
    drop_db "$admin_url" "$db_name"
  fi
  if $started_pg; then bash "$root/scripts/pg.sh" stop "$pgdir" >/dev/null || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM

# ---- build ----------------------------------------------------------------
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPARK_SANITIZE=OFF \
  -DSPARK_BUILD_TESTS=OFF >/dev/null
if [[ $scenario == diff ]]; then
  log "building diff_bench (release)"
  cmake --build "$build" -j2 --target diff_bench >/dev/null
  exec "$build/bench/diff_bench" "$@"
fi
log "building sparkd (release) and spark_load"
cmake --build "$build" -j2 --target sparkd >/dev/null
if cmake --build "$build" --target help | grep '\bspark_load\b' >/dev/null; then
  cmake --build "$build" -j2 --target spark_load floor_relay >/dev/null
  load=$build/bench/spark_load
else
  cmake -S "$root/bench" -B "$build/bench-standalone" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build/bench-standalone" -j2 >/dev/null
  load=$build/bench-standalone/spark_load
fi
sparkd=$build/sparkd
relay=$(dirname -- "$load")/floor_relay
load=${BENCH_LOAD:-$load}

# ---- the floor: the fanout scenario against floor_relay -------------------------
if [[ $scenario == floor ]]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  mkfifo "$work/relay-pids"
  "$relay" "$port_a" "$port_b" "${BENCH_FLOOR_PACE_MS:-0}" >"$work/relay-pids" 2>"$out/floor-relay-$stamp.log" &
  pids+=("$!")
  read -r pid_a pid_b _ <"$work/relay-pids" || die "floor_relay did not start; see $out/floor-relay-$stamp.log"
  log "floor_relay a (pid $pid_a, port $port_a) and b (pid $pid_b, port $port_b) are up"
  rc=0
  "$load" fanout --port-a "$port_a" --port-b "$port_b" --pid-a "$pid_a" --pid-b "$pid_b" \
    --clients 5000 --rate 10 --duration 20 --warmup 5 --json "$out/floor-$stamp.json" "$@" || rc=$?
  exit "$rc"
fi

# ---- database --------------------------------------------------------------
if [[ -z ${DATABASE_URL:-} ]]; then
  bash "$root/scripts/pg.sh" status "$pgdir" >/dev/null 2>&1 || started_pg=true
  bash "$root/scripts/pg.sh" start "$pgdir" "${BENCH_PG_PORT:-54339}" >/dev/null
  DATABASE_URL=$(bash "$root/scripts/pg.sh" url "$pgdir")
fi
admin_url=$DATABASE_URL
db_name=spark_bench_$$
psql -q -v ON_ERROR_STOP=1 "$admin_url" -c "CREATE DATABASE \"$db_name\"" >/dev/null
commits=durable
if [[ ${BENCH_SYNC_COMMIT:-on} == off ]]; then
  commits="asynchronous (synchronous_commit off)"
  psql -q -v ON_ERROR_STOP=1 "$admin_url" \
    -c "ALTER DATABASE \"$db_name\" SET synchronous_commit = off" >/dev/null
  log "synchronous_commit off for $db_name: commits do not wait for the disk"
fi
export DATABASE_URL
DATABASE_URL=$(with_db "$admin_url" "$db_name")
log "database $db_name; migrating"
SPARK_LOG_LEVEL=warn "$sparkd" migrate >/dev/null

# ---- keys and tokens --------------------------------------------------------
load_args=()
if [[ $auth == 1 ]]; then
  keys=$("$sparkd" keygen)
  SPARK_SIGNING_KEY=$(sed -n 's/^SPARK_SIGNING_KEY=//p' <<<"$keys")
  SPARK_VERIFY_KEYS=$(sed -n 's/^SPARK_VERIFY_KEYS=//p' <<<"$keys")
  export SPARK_SIGNING_KEY SPARK_VERIFY_KEYS
  for ((i = 1; i <= users; i++)); do
    "$sparkd" token --sub "bench-$i" --name "bench $i" --ttl 86400 \
      --scope 'room:*' --scope 'component:*' --scope 'user:*'
  done >"$work/tokens"
  load_args+=(--token-file "$work/tokens")
else
  export SPARK_AUTH=off # anonymous connections, asked for by BENCH_AUTH=0
fi

# ---- instances ---------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export SPARK_LOG_LEVEL=${SPARK_LOG_LEVEL:-warn}
export SPARK_RATE_LIMIT=${SPARK_RATE_LIMIT:-0}
export SPARK_MAX_CONNECTIONS=${SPARK_MAX_CONNECTIONS:-19000}
export SPARK_HOST=127.0.0.1 SPARK_WEB_ROOT=web
port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
for port in "$port_a" "$port_b"; do
  ! port_in_use "$port" || die "port $port is in use (set BENCH_PORT_A / BENCH_PORT_B)"
done
start_instance() {
  local name=$1 port=$2
  "$sparkd" serve --port "$port" --instance "bench-$name" \
    >"$out/sparkd-$name-$stamp.log" 2>&1 &
  pids+=("$!")
}
start_instance a "$port_a"
pid_a=${pids[0]}
start_instance b "$port_b"
pid_b=${pids[1]}
for _ in $(seq 150); do
  if curl -sf -m 1 -o /dev/null "http://127.0.0.1:$port_a/healthz" &&
    curl -sf -m 1 -o /dev/null "http://127.0.0.1:$port_b/healthz"; then
    break
  fi
  if ! kill -0 "$pid_a" 2>/dev/null || ! kill -0 "$pid_b" 2>/dev/null; then
    die "an instance exited; see $out/sparkd-*-$stamp.log"
  fi
  sleep 0.1
done
curl -sf -m 1 -o /dev/null "http://127.0.0.1:$port_a/healthz" ||
  die "instance a is not healthy after 15 s"
log "instances a (pid $pid_a, port $port_a) and b (pid $pid_b, port $port_b) are up"

# ---- pgbench: the ceiling ------------------------------------------------------
ceiling=0
run_pgbench() {
  psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" >/dev/null <<SQL
INSERT INTO spark.components (id, state)
SELECT 'counter:bench-' || k, '{"count":0,"step":1}'
  FROM generate_series(0, $components - 1) k
ON CONFLICT (id) DO NOTHING;
SQL
  # One event of sparkd's shape per transaction (bench/event.sql; pgbench
  # reads ":name" as a variable even inside quotes: hence chr(58) there).
  cp "$root/bench/event.sql" "$work/event.sql"
  local c tps p50 p99 max json="" best=0
  for c in $pgbench_clients; do
    rm -f "$work/pgbench-log".*
    tps=$("$pgbench_bin" -n -M prepared -f "$work/event.sql" -D ncomp="$components" \
      -c "$c" -j "$((c < 2 ? c : 2))" -T "$pgbench_seconds" \
      -l --log-prefix "$work/pgbench-log" "$DATABASE_URL" 2>&1 |
      sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' || true)
    [[ -n $tps ]] || die "pgbench failed (clients $c)"
    # Each transaction's latency (3rd field, µs) from pgbench's own log: the
    # tail of a durable commit on this disk, with no sparkd in the path.
    read -r p50 p99 max < <(awk '{ print $3 }' "$work/pgbench-log".* | sort -n |
      awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f\n",
        v[int(NR * 0.50 + 0.5)] / 1000, v[int(NR * 0.99 + 0.5)] / 1000, v[NR] / 1000 }')
    log "pgbench: $c client(s): $tps events/s"
    printf '  pgbench %2s client(s): %10.1f %s events/s (one per transaction); commit p50 %s, p99 %s, max %s ms\n' \
      "$c" "$tps" "$commits" "$p50" "$p99" "$max"
    json+="${json:+,}{\"clients\":$c,\"tps\":$tps,\"p50_ms\":$p50,\"p99_ms\":$p99,\"max_ms\":$max}"
    best=$(awk -v a="$best" -v b="$tps" 'BEGIN { print (b > a) ? b : a }')
  done
  local events
  events=$(psql -Atq "$DATABASE_URL" -c "SELECT count(*) FROM spark.events WHERE instance = 'pgbench'")
  printf '  pgbench ceiling: %.1f events/s (%s history rows written)\n' "$best" "$events"
  printf '{"scenario":"pgbench","components":%s,"seconds":%s,"runs":[%s],"ceiling_tps":%s,"history_rows":%s}\n' \
    "$components" "$pgbench_seconds" "$json" "$best" "$events" >"$out/pgbench-$stamp.json"
  ceiling=$best
}

# ---- profiling -----------------------------------------------------------------
perf_pid=""
start_perf() {
  [[ -n ${BENCH_PERF:-} && ${BENCH_PERF:-0} != 0 ]] || return 0
  local target=$pid_a name=a
  if [[ $BENCH_PERF == b ]]; then target=$pid_b name=b; fi
  # shellcheck disable=SC2086 # BENCH_PERF_CALLS is a list of options
  perf record -q -F "${BENCH_PERF_HZ:-499}" ${BENCH_PERF_CALLS:--g} -o "$out/perf-$name-$stamp.data" -p "$target" 2>/dev/null &
  perf_pid=$!
  log "perf recording instance $name into $out/perf-$name-$stamp.data"
}

# ---- the scenario ----------------------------------------------------------------
rc=0
case $scenario in
  pgbench)
    run_pgbench
    ;;
  fanout)
    start_perf
    "$load" fanout --port-a "$port_a" --port-b "$port_b" --pid-a "$pid_a" --pid-b "$pid_b" \
      --clients 5000 --rate 10 --duration 20 --warmup 5 "${load_args[@]}" \
      --json "$out/fanout-$stamp.json" "$@" || rc=$?
    ;;
  idle)
    start_perf
    "$load" idle --port-a "$port_a" --port-b "$port_b" --pid-a "$pid_a" --pid-b "$pid_b" \
      --clients 10000 "${load_args[@]}" --json "$out/idle-$stamp.json" "$@" || rc=$?
    ;;
  events)
    run_pgbench
    start_perf
    "$load" events --port-a "$port_a" --port-b "$port_b" --pid-a "$pid_a" --pid-b "$pid_b" \
      --clients "$components" --ceiling "$ceiling" "${load_args[@]}" \
      --json "$out/events-$stamp.json" "$@" || rc=$?
    if [[ $rc == 0 ]]; then
      psql -Atq "$DATABASE_URL" -c "SELECT 'history rows written by the instances: ' || count(*)
        FROM spark.events WHERE instance LIKE 'bench-%'"
    fi
    ;;
esac
if [[ -n $perf_pid ]]; then
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" 2>/dev/null || true
  perf_pid=""
  log "perf report -i $out/perf-*-$stamp.data --no-children"
fi
log "results in $out (*-$stamp.json); instance logs in $out/sparkd-*-$stamp.log"
exit "$rc"
