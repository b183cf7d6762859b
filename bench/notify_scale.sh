#!/usr/bin/env bash
# shellcheck disable=SC2317 # the cleanup function runs from traps
# The first limit past one machine (docs/scaling.md): the commit rate of
# sparkd's event-shaped transaction as more instances consume what it
# announces.
#
#   bench/notify_scale.sh            (or: bench/run.sh notify)
#
# pgbench runs bench/event.sql (one event per transaction: the settings, the
# component's UPDATE, its history row; the same as bench/run.sh pgbench) with
# BENCH_NOTIFY_CLIENTS clients (default 8) for BENCH_NOTIFY_SECONDS (default
# 5) at each point:
#   off       the history trigger without its pg_notify; nobody consumes
#   listen:N  the schema as it is (the trigger NOTIFYs); N connections LISTEN
#             on "spark" and read every notification (build/.../notify_sink)
#   decode:N  the trigger without pg_notify; N walsenders, each on its own
#             pgoutput slot of a publication of spark.components (id,
#             version), read every change and confirm it
# BENCH_NOTIFY_EVENTS (default 1) events per transaction: more makes each
# transaction a group write like spark.apply_batch's, one UPDATE (and one
# NOTIFY) per event, each client on components of its own.
# BENCH_NOTIFY_FLUSH_US (default 0) adds that many µs to every WAL flush of
# pgbench's sessions (commit_delay with commit_siblings = 0, so a superuser
# connection): 1000 makes this machine's 0.3 ms flush behave like a cloud
# volume's, or like a synchronous standby's round trip.
# BENCH_NOTIFY_POINTS (default "off listen:1 listen:2 listen:4 listen:8
# listen:16 listen:32 decode:1 decode:4"), each run BENCH_NOTIFY_RUNS times
# (default 3), interleaved: run 1 of every point, then run 2, ...
# Reported per point, medians over the runs: commits/s and their ratio to
# off; whether every consumer got every transaction; the lag of the slowest
# consumer when the writers stopped; CPU of pgbench (the generator), of the
# consumer process and of its PostgreSQL backends (walsenders), in % of one
# core; and how busy the whole machine was. JSON lands in
# $BENCH_OUT/notify-<time>.json.
#
# PostgreSQL: the server of DATABASE_URL (a fresh database is created and
# dropped; decode points need wal_level=logical there, and are skipped
# otherwise), or without DATABASE_URL a private cluster in
# .spark/bench-notify-pg on BENCH_PG_PORT (default 54341), set to
# wal_level=logical, started and stopped here. The consumers' CPU is read in
# /proc: PostgreSQL must run on this machine for those columns.
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=bench/common.sh
source "$root/bench/common.sh"
cd -- "$root"

log() { echo "notify_scale: $*" >&2; }
die() {
  log "$*"
  exit 2
}
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit 0
fi
(($# == 0)) || die "no arguments (settings are environment variables; see --help)"

clients=${BENCH_NOTIFY_CLIENTS:-8}
seconds=${BENCH_NOTIFY_SECONDS:-5}
runs=${BENCH_NOTIFY_RUNS:-3}
flush_us=${BENCH_NOTIFY_FLUSH_US:-0}
events=${BENCH_NOTIFY_EVENTS:-1}
[[ $events =~ ^[0-9]+$ && $events -ge 1 && $events -le 100 ]] || die "BENCH_NOTIFY_EVENTS must be 1 to 100"
[[ $flush_us =~ ^[0-9]+$ && $flush_us -le 100000 ]] || die "BENCH_NOTIFY_FLUSH_US must be 0 to 100000"
points=${BENCH_NOTIFY_POINTS:-off listen:1 listen:2 listen:4 listen:8 listen:16 listen:32 decode:1 decode:4}
components=${BENCH_COMPONENTS:-20}
build=$root/build-release
out=${BENCH_OUT:-$build/bench-results}
pgdir=$root/.spark/bench-notify-pg
stamp=$(date +%Y%m%d-%H%M%S)
work=$(mktemp -d "${TMPDIR:-/tmp}/spark-notify.XXXXXX")
mkdir -p "$out"

pgbench_bin=$(command -v pgbench || true)
[[ -n $pgbench_bin ]] || pgbench_bin=/usr/lib/postgresql/15/bin/pgbench

started_pg=false
db_name=""
admin_url=""

# A consumer still running is cut off when its database is dropped.
cleanup() {
  trap '' INT TERM
  if [[ -n $db_name ]]; then drop_db "$admin_url" "$db_name"; fi
  if $started_pg; then bash "$root/scripts/pg.sh" stop "$pgdir" >/dev/null || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM

# ---- build -------------------------------------------------------------------
log "building sparkd (release) and notify_sink"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPARK_SANITIZE=OFF \
  -DSPARK_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target sparkd notify_sink >/dev/null
sparkd=$build/sparkd
sink=$build/bench/notify_sink

# ---- database ------------------------------------------------------------------
if [[ -z ${DATABASE_URL:-} ]]; then
  bash "$root/scripts/pg.sh" status "$pgdir" >/dev/null 2>&1 || started_pg=true
  bash "$root/scripts/pg.sh" start "$pgdir" "${BENCH_PG_PORT:-54341}" >/dev/null
  DATABASE_URL=$(bash "$root/scripts/pg.sh" url "$pgdir")
  if [[ $(psql -Atq "$DATABASE_URL" -c 'SHOW wal_level') != logical ]]; then
    log "setting wal_level = logical on the private cluster (a restart)"
    psql -q "$DATABASE_URL" -c 'ALTER SYSTEM SET wal_level = logical' >/dev/null
    bash "$root/scripts/pg.sh" stop "$pgdir" >/dev/null
    bash "$root/scripts/pg.sh" start "$pgdir" >/dev/null
  fi
fi
admin_url=$DATABASE_URL
wal_level=$(psql -Atq "$admin_url" -c 'SHOW wal_level')
db_name=spark_notify_$$
psql -q -v ON_ERROR_STOP=1 "$admin_url" -c "CREATE DATABASE \"$db_name\"" >/dev/null
DATABASE_URL=$(with_db "$admin_url" "$db_name")
export DATABASE_URL
log "database $db_name (wal_level $wal_level); migrating"
SPARK_LOG_LEVEL=warn "$sparkd" migrate >/dev/null

sql() { psql -Atq -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }

# The transaction: bench/event.sql, or a group of $events events, each
# client on components of its own (no lock waits between clients).
script=$root/bench/event.sql
if ((events > 1)); then
  script=$work/group.sql
  components=$((clients * events > components ? clients * events : components))
  {
    printf '%s\n' '\startpipeline'
    echo 'BEGIN;'
    echo "SELECT set_config('spark.event', 'increment', true), set_config('spark.event_data', '{}', true),"
    echo "       set_config('spark.actor', 'bench', true), set_config('spark.instance', 'pgbench', true);"
    for ((e = 0; e < events; e++)); do
      echo "UPDATE spark.components SET state = jsonb_set(state, '{count}', to_jsonb((state->>'count')::bigint + 1))"
      echo " WHERE id = 'counter' || chr(58) || 'bench-' || ((:client_id * $events) + $e);"
    done
    echo 'COMMIT;'
    printf '%s\n' '\endpipeline'
  } >"$script"
fi

sql >/dev/null <<SQL
INSERT INTO spark.components (id, state)
SELECT 'counter:bench-' || k, '{"count":0,"step":1}'
  FROM generate_series(0, $components - 1) k;
CREATE PUBLICATION spark_bench FOR TABLE spark.components (id, version);
SQL

# The history trigger as the migrations made it, and the same without its
# one pg_notify: the transaction is otherwise the same.
sql -c "SELECT pg_get_functiondef('spark.components_after_change()'::regprocedure)" \
  >"$work/notify.sql"
grep -v "PERFORM pg_notify('spark'" "$work/notify.sql" >"$work/quiet.sql" || true
(($(wc -l <"$work/notify.sql") == $(wc -l <"$work/quiet.sql") + 1)) ||
  die "spark.components_after_change() does not have exactly one pg_notify('spark', ...) line"
use_trigger() { sql -f "$work/$1.sql" >/dev/null; }

# ---- one run ----------------------------------------------------------------------
cpu_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }

# Prints: tps transactions complete lag_ms pgbench_cpu sink_cpu backends_cpu machine_busy
run_point() {
  local kind=${1%%:*} n=${1#*:} i
  [[ $1 == off ]] && n=0
  use_trigger "$([[ $kind == listen ]] && echo notify || echo quiet)"
  sql -c 'VACUUM spark.components' >/dev/null
  local ready=$work/sink.out
  : >"$ready"
  if [[ $kind == decode ]]; then
    for ((i = 1; i <= n; i++)); do
      sql -c "SELECT FROM pg_create_logical_replication_slot('spark_bench_$i', 'pgoutput')" >/dev/null
    done
    "$sink" decode --url "$DATABASE_URL" --connections "$n" --slot spark_bench \
      --publication spark_bench --timeout "$((seconds + 60))" >"$ready" &
  elif [[ $kind == listen ]]; then
    "$sink" listen --url "$DATABASE_URL" --connections "$n" --channel spark \
      --timeout "$((seconds + 60))" >"$ready" &
  fi
  local sink_pid=""
  [[ $kind == off ]] || sink_pid=$!
  if [[ -n $sink_pid ]]; then
    for ((i = 0; i < 300; i++)); do
      grep -q '^ready' "$ready" && break
      kill -0 "$sink_pid" 2>/dev/null || die "notify_sink exited before it was ready"
      sleep 0.05
    done
    grep -q '^ready' "$ready" || die "notify_sink was not ready after 15 s"
  fi

  local before after pgb
  before=$(cpu_busy)
  pgb=$(PGOPTIONS="-c commit_delay=$flush_us -c commit_siblings=0" \
    /usr/bin/time -f 'cpu %U %S' "$pgbench_bin" -n -M prepared -f "$script" \
    -D ncomp="$components" -c "$clients" -j "$((clients < 2 ? clients : 2))" -T "$seconds" \
    "$DATABASE_URL" 2>&1) || die "pgbench failed: $pgb"
  after=$(cpu_busy)
  local tps txns pcpu busy
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$pgb")
  txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$pgb")
  pcpu=$(awk -v s="$seconds" '/^cpu / { printf "%.1f", 100 * ($2 + $3) / s }' <<<"$pgb")
  busy=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " ");
    printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2]) }')
  [[ -n $tps && -n $txns ]] || die "could not read pgbench's result: $pgb"

  local complete=- lag=- scpu=- bcpu=-
  if [[ -n $sink_pid ]]; then
    # The end marker carries the server's clock when it was sent.
    local marker="'end ' || (extract(epoch FROM clock_timestamp()) * 1e6)::bigint" done_line
    if [[ $kind == decode ]]; then
      sql -c "SELECT FROM pg_logical_emit_message(true, 'spark_bench', $marker)" >/dev/null
    else
      sql -c "SELECT FROM pg_notify('spark', $marker)" >/dev/null
    fi
    for ((i = 0; i < 1200; i++)); do
      kill -0 "$sink_pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -TERM "$sink_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
    done_line=$(grep '^done' "$ready" || true)
    [[ -n $done_line ]] || die "notify_sink did not finish: $(cat "$ready")"
    local items_min finished
    items_min=$(sed -n 's/.* items_min=\([0-9]*\).*/\1/p' <<<"$done_line")
    finished=$(sed -n 's/.* finished=\([0-9]*\).*/\1/p' <<<"$done_line")
    complete=no
    if [[ $finished == "$n" ]] && ((items_min >= txns * events)); then complete=yes; fi
    lag=$(sed -n 's/.* lag_ms=\([0-9.-]*\).*/\1/p' <<<"$done_line")
    scpu=$(sed -n 's/.* cpu_s=\([0-9.]*\).*/\1/p' <<<"$done_line")
    scpu=$(awk -v c="$scpu" -v s="$seconds" 'BEGIN { printf "%.1f", 100 * c / s }')
    bcpu=$(sed -n 's/.* backends_cpu_s=\([0-9.-]*\).*/\1/p' <<<"$done_line")
    bcpu=$(awk -v c="$bcpu" -v s="$seconds" 'BEGIN { printf "%.1f", c < 0 ? -1 : 100 * c / s }')
  fi
  if [[ $kind == decode ]]; then
    # A walsender ends just after its client: wait until its slot is free.
    for ((i = 1; i <= n; i++)); do
      local tries=0
      until sql -c "SELECT FROM pg_drop_replication_slot('spark_bench_$i')" >/dev/null 2>&1; do
        ((++tries < 100)) || die "could not drop slot spark_bench_$i"
        sleep 0.05
      done
    done
  fi
  echo "$tps $txns $complete $lag $pcpu $scpu $bcpu $busy"
}

# ---- the points -----------------------------------------------------------------------
declare -A results
for point in $points; do
  case $point in
    off | listen:[0-9]* | decode:[0-9]*) ;;
    *) die "unknown point '$point' (off, listen:N, decode:N)" ;;
  esac
  if [[ $point == decode:* && $wal_level != logical ]]; then
    log "skipping $point: wal_level is $wal_level on this server, not logical"
    continue
  fi
  results[$point]=""
done
log "$clients pgbench clients, $events event(s) per transaction, ${seconds} s per run, $runs runs per point (interleaved), +$flush_us µs per flush"
for ((r = 1; r <= runs; r++)); do
  for point in $points; do
    [[ -v results[$point] ]] || continue
    line=$(run_point "$point")
    log "run $r $point: $line"
    results[$point]+="$line"$'\n'
  done
done

# ---- report -------------------------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
col() { awk -v c="$2" 'NF { print $c }' <<<"${results[$1]}"; }

base=""
[[ -v results[off] ]] && base=$(col off 1 | median)
printf '\n%d pgbench clients, %d event(s) per transaction, %s s per run, +%s µs per WAL flush, medians of %d runs; CPU in %% of one core\n' \
  "$clients" "$events" "$seconds" "$flush_us" "$runs"
printf '%-10s %10s %8s %9s %9s %8s %8s %9s %8s\n' point commits/s ratio complete lag_ms \
  pgbench sink backends machine
json=""
for point in $points; do
  [[ -v results[$point] ]] || continue
  tps=$(col "$point" 1 | median)
  ratio=-
  [[ -n $base ]] && ratio=$(awk -v a="$tps" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
  all=$(col "$point" 1 | paste -sd/)
  complete=$(col "$point" 3 | sort -u | paste -sd/)
  lag=$(col "$point" 4 | median)
  pcpu=$(col "$point" 5 | median)
  scpu=$(col "$point" 6 | median)
  bcpu=$(col "$point" 7 | median)
  busy=$(col "$point" 8 | median)
  printf '%-10s %10.1f %8s %9s %9s %8s %8s %9s %7s%%\n' "$point" "$tps" "$ratio" "$complete" \
    "${lag:--}" "$pcpu" "${scpu:--}" "${bcpu:--}" "$busy"
  json+="${json:+,}{\"point\":\"$point\",\"tps\":$tps,\"runs\":\"$all\",\"ratio\":\"$ratio\",\"complete\":\"$complete\",\"lag_ms\":\"$lag\",\"pgbench_cpu\":$pcpu,\"sink_cpu\":\"$scpu\",\"backends_cpu\":\"$bcpu\",\"machine_busy\":$busy}"
done
printf '{"scenario":"notify","clients":%s,"seconds":%s,"runs":%s,"flush_us":%s,"events_per_tx":%s,"components":%s,"wal_level":"%s","points":[%s]}\n' \
  "$clients" "$seconds" "$runs" "$flush_us" "$events" "$components" "$wal_level" "$json" >"$out/notify-$stamp.json"
log "results in $out/notify-$stamp.json"
