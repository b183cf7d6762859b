#!/usr/bin/env bash
# bench/notify_sink, the consumers of bench/notify_scale.sh, against the real
# PostgreSQL of DATABASE_URL: every connection must count every notification
# (listen) or every decoded row change (decode) and stop at the end marker.
# The decode half needs wal_level = logical on that server; where it is not,
# it says so and only the listen half runs.
#
#   tests/bench/notify_sink_test.sh PATH/TO/notify_sink
set -euo pipefail

sink=$1
[[ -n ${DATABASE_URL:-} ]] || {
  echo "DATABASE_URL is not set" >&2
  exit 1
}
sql() { psql -Atq -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }
tag=sink_test_$$
marker="'end ' || (extract(epoch FROM clock_timestamp()) * 1e6)::bigint"
# shellcheck source=tests/support/check.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../support/check.sh"

# Starts the sink on fd 3 and waits for its ready line.
start_sink() {
  exec 3< <("$sink" "$@" --timeout 20)
  sink_pid=$!
  local line
  IFS= read -r -t 20 -u 3 line || true
  [[ $line == "ready pids="* ]] || {
    echo "notify_sink was not ready: '$line'" >&2
    exit 1
  }
}

# The sink's report, once it has stopped by itself.
report() {
  local line
  IFS= read -r -t 30 -u 3 line || true
  wait "$sink_pid" 2>/dev/null || true
  exec 3<&-
  echo "$line"
}

# ---- listen: 3 connections, 5 notifications in one transaction and 2 in
# another (7 distinct payloads), then the end marker.
start_sink listen --url "$DATABASE_URL" --connections 3 --channel "$tag"
sql -c "SELECT pg_notify('$tag', 'n' || g) FROM generate_series(1, 5) g" >/dev/null
sql -c "SELECT pg_notify('$tag', 'm' || g) FROM generate_series(1, 2) g" >/dev/null
sql -c "SELECT pg_notify('$tag', $marker)" >/dev/null
out=$(report)
check "listen: every connection got all 7" "connections=3 finished=3 items_min=7 items_max=7" "$out"

# A missing end marker is a failure, not a hang: the sink stops at --timeout.
exec 3< <("$sink" listen --url "$DATABASE_URL" --connections 1 --channel "$tag" --timeout 1)
sink_pid=$!
IFS= read -r -t 20 -u 3 line || true
out=$(report)
check "listen: no end marker ends at the timeout, unfinished" "finished=0" "$out"

# ---- decode: one pgoutput slot; 3 inserts and 1 update in two transactions.
if [[ $(sql -c 'SHOW wal_level') != logical ]]; then
  echo "decode: not run (wal_level is not logical on this server)"
else
  sql >/dev/null <<SQL
CREATE TABLE public.$tag (id int PRIMARY KEY, v int);
CREATE PUBLICATION $tag FOR TABLE public.$tag;
SELECT FROM pg_create_logical_replication_slot('${tag}_1', 'pgoutput');
SQL
  cleanup_decode() {
    sql -c "SELECT pg_drop_replication_slot('${tag}_1')" >/dev/null 2>&1 || true
    sql -c "DROP PUBLICATION IF EXISTS $tag; DROP TABLE IF EXISTS public.$tag" >/dev/null 2>&1 || true
  }
  trap cleanup_decode EXIT
  start_sink decode --url "$DATABASE_URL" --connections 1 --slot "$tag" --publication "$tag"
  sql -c "INSERT INTO public.$tag SELECT g, 0 FROM generate_series(1, 3) g" >/dev/null
  sql -c "UPDATE public.$tag SET v = 1 WHERE id = 2" >/dev/null
  sql -c "SELECT FROM pg_logical_emit_message(true, 'spark_bench', $marker)" >/dev/null
  out=$(report)
  check "decode: 4 row changes" "finished=1 items_min=4 items_max=4" "$out"
  check "decode: 3 transactions" "txns=3" "$out"
  # Its walsender ends just after it: wait until the slot is free.
  for _ in $(seq 100); do
    sql -c "SELECT FROM pg_drop_replication_slot('${tag}_1')" >/dev/null 2>&1 && break
    sleep 0.05
  done
fi

if ((failures)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "notify_sink: all checks passed"
