#!/usr/bin/env bash
# Runs the demo: builds sparkd, migrates the database and serves two
# instances that share it. Without DATABASE_URL it uses a private PostgreSQL
# cluster in .spark/pg (kept between runs). Ctrl-C stops everything.
#
# Environment: DATABASE_URL (use this database instead of the private one),
# SPARK_PORT_A / SPARK_PORT_B (instance ports, default 8080 / 8081),
# SPARK_PG_PORT (port of the private cluster, default 54329).
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd -- "$root"

port_a=${SPARK_PORT_A:-8080}
port_b=${SPARK_PORT_B:-8081}
pgdir=$root/.spark/pg

log() { echo "demo: $*" >&2; }

pids=()
names=()
started_pg=false
stopping=false

stop_instances() {
  local pid i deadline
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + 10))
  for i in "${!pids[@]}"; do
    pid=${pids[i]}
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "instance ${names[i]} did not stop within 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  pids=()
  names=()
}

cleanup() {
  trap '' INT TERM
  if ((${#pids[@]} > 0)); then
    log "stopping instances"
    stop_instances
  fi
  if $started_pg; then
    log "stopping PostgreSQL"
    bash scripts/pg.sh stop "$pgdir" || true
    started_pg=false
  fi
}
trap cleanup EXIT
# Before the instances run, a signal just ends the script (cleanup runs on
# EXIT); once they run, it is noticed by the wait loop below.
trap 'stopping=true; ((${#pids[@]} > 0)) || exit 130' INT TERM

bash scripts/setup.sh

log "building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2

if [[ -z ${DATABASE_URL:-} ]]; then
  if ! bash scripts/pg.sh status "$pgdir" >/dev/null 2>&1; then
    started_pg=true
  fi
  bash scripts/pg.sh start "$pgdir" ${SPARK_PG_PORT:+"$SPARK_PG_PORT"}
  DATABASE_URL=$(bash scripts/pg.sh url "$pgdir")
fi
export DATABASE_URL

log "migrating"
build/sparkd migrate

# Session tokens: a key pair made once for this checkout, kept out of git
# in .spark/keys.env, unless the environment brings its own.
if [[ -z ${SPARK_VERIFY_KEYS:-} ]]; then
  keys=$root/.spark/keys.env
  if [[ ! -s $keys ]]; then
    mkdir -p "$root/.spark"
    (umask 077 && build/sparkd keygen >"$keys")
  fi
  set -a
  # shellcheck source=/dev/null
  . "$keys"
  set +a
fi

export SPARK_WEB_ROOT=web SPARK_DEMO_LOGIN=1
start_instance() {
  local name=$1 port=$2
  build/sparkd serve --port "$port" --instance "$name" &
  pids+=("$!")
  names+=("$name")
}
start_instance a "$port_a"
start_instance b "$port_b"

all_alive() {
  local pid
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || return 1
  done
}

# Waits (up to 15 s) until both instances answer HTTP.
ready=false
for _ in $(seq 150); do
  if $stopping || ! all_alive; then
    break
  fi
  if curl -s -o /dev/null "http://127.0.0.1:$port_a/healthz" &&
    curl -s -o /dev/null "http://127.0.0.1:$port_b/healthz"; then
    ready=true
    break
  fi
  sleep 0.1
done

if ! $stopping && all_alive; then
  $ready || log "the instances are not answering HTTP yet"
  cat <<EOF

Spark demo: two instances sharing one database.
  instance a: http://localhost:$port_a/
  instance b: http://localhost:$port_b/
Open the same page on both (say /todo/groceries on a and on b), sign in
with any name, and watch them stay in step. Each instance also answers
/healthz and /metrics. The database, with its full history:
  psql '$DATABASE_URL'
Ctrl-C stops everything.

EOF
fi

# Polls the instances; a short interruptible sleep keeps signals prompt.
# (wait -n would miss an instance that exited before it was called.)
status=0
while ! $stopping; do
  for i in "${!pids[@]}"; do
    pid=${pids[i]}
    kill -0 "$pid" 2>/dev/null && continue
    rc=0
    wait "$pid" || rc=$?
    log "instance ${names[i]} exited with status $rc; stopping the demo"
    unset 'pids[i]' 'names[i]'
    pids=("${pids[@]}")
    names=("${names[@]}")
    status=$((rc == 0 ? 1 : rc))
    break 2
  done
  sleep 0.5 &
  wait "$!" || true
done

cleanup
exit "$status"
