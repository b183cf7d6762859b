#!/usr/bin/env bash
# Starts, kills or stops one sparkd instance of the browser tests.
#
#   instance.sh start NAME PORT   start in the background, wait until healthy
#   instance.sh kill NAME         SIGKILL, wait until it is gone
#   instance.sh stop NAME         SIGTERM, wait (10 s), then SIGKILL
#
# Reads SPARKD, SPARK_E2E_DB (the database URL), SPARK_E2E_RUN (pid files and
# logs) and SPARK_E2E_ROOT (the source tree) from the environment, as run.sh
# exports them; SPARK_SIGNING_KEY and SPARK_VERIFY_KEYS pass through.
set -euo pipefail

die() {
  echo "instance.sh: $*" >&2
  exit 1
}

[[ -n ${SPARKD:-} && -n ${SPARK_E2E_DB:-} && -n ${SPARK_E2E_RUN:-} && -n ${SPARK_E2E_ROOT:-} ]] ||
  die "SPARKD, SPARK_E2E_DB, SPARK_E2E_RUN and SPARK_E2E_ROOT must be set (run.sh sets them)"

cmd=${1:-}
name=${2:-}
[[ $name =~ ^[a-z0-9]+$ ]] || die "usage: instance.sh start NAME PORT | kill NAME | stop NAME"
pidfile=$SPARK_E2E_RUN/$name.pid

# Waits for the process to exit: tail --pid returns when it does.
await_exit() {
  local pid=$1 secs=$2
  timeout "$secs" tail --pid="$pid" -f /dev/null 2>/dev/null
}

case $cmd in
  start)
    port=${3:-}
    [[ $port =~ ^[0-9]+$ ]] || die "start needs a port"
    if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      die "instance $name is already running (pid $(cat "$pidfile"))"
    fi
    echo "--- start $(date -u +%FT%T.%3NZ) on port $port" >>"$SPARK_E2E_RUN/$name.log"
    (
      cd "$SPARK_E2E_ROOT"
      export DATABASE_URL=$SPARK_E2E_DB SPARK_LOG_LEVEL=${SPARK_LOG_LEVEL:-debug} SPARK_DEMO_LOGIN=1
      exec "$SPARKD" serve --port "$port" --host 127.0.0.1 --instance "$name" \
        --web-root "$SPARK_E2E_ROOT/web" --shutdown-timeout 5 </dev/null >>"$SPARK_E2E_RUN/$name.log" 2>&1
    ) &
    echo $! >"$pidfile"
    pid=$!
    # Healthy means the database and the listener are up (GET /healthz 200).
    deadline=$((SECONDS + 20))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/healthz" || true) == 200 ]]; do
      kill -0 "$pid" 2>/dev/null || {
        tail -n 30 "$SPARK_E2E_RUN/$name.log" >&2
        die "instance $name exited during startup (log: $SPARK_E2E_RUN/$name.log)"
      }
      ((SECONDS < deadline)) || {
        tail -n 30 "$SPARK_E2E_RUN/$name.log" >&2
        die "instance $name not healthy after 20 s (log: $SPARK_E2E_RUN/$name.log)"
      }
      sleep 0.05
    done
    ;;
  kill | stop)
    [[ -f $pidfile ]] || exit 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      if [[ $cmd == kill ]]; then
        kill -KILL "$pid"
        await_exit "$pid" 10 || die "instance $name (pid $pid) did not die"
      else
        kill -TERM "$pid"
        if ! await_exit "$pid" 10; then
          echo "instance.sh: instance $name did not stop within 10 s; killing it" >&2
          kill -KILL "$pid" 2>/dev/null || true
          await_exit "$pid" 5 || true
          rm -f "$pidfile"
          exit 1
        fi
      fi
    fi
    rm -f "$pidfile"
    ;;
  *)
    die "usage: instance.sh start NAME PORT | kill NAME | stop NAME"
    ;;
esac
