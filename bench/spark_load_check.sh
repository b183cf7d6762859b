#!/usr/bin/env bash
# spark_load's accounting against a chat room that misbehaves on purpose
# (bench/faulty_room.py: one delivery dropped, one duplicated, fragments
# with pings between them, a message a byte at a time, a 2 MB message, a
# member closed with 4001), once with its own WebSocket client and once
# with lws's: both must report the same, and report what went wrong.
#
#   bench/spark_load_check.sh PATH/TO/spark_load
set -euo pipefail

load=$1
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=tests/support/check.sh
source "$here/../tests/support/check.sh"

declare -A report
for client in own lws; do
  log=$(mktemp)
  coproc room { exec python3 "$here/faulty_room.py" "$log"; }
  read -r -t 10 -u "${room[0]}" _ port_a port_b || {
    echo "faulty_room.py did not start" >&2
    exit 1
  }
  out=$(SPARK_TOKEN=check-token "$load" fanout --port-a "$port_a" --port-b "$port_b" \
    --clients 6 --rate 20 --warmup 0.5 --duration 1 --concurrency 1 --settle 5 \
    --timeout 30 --client "$client" --quiet) || true
  eval "exec ${room[1]}>&-" # stdin closed: the room exits
  # shellcheck disable=SC2154 # room_PID is set by coproc
  wait "$room_PID" 2>/dev/null || true
  room_log=$(cat "$log")
  rm -f "$log"
  check "$client: the dropped delivery is missing, the repeated one a duplicate" \
    "deliveries 99 of 100 (99/s); missing 1; duplicates 1" "$out"
  check "$client: the member closed before it was live is not counted" \
    "6 asked, 6 opened, 5 ready, 0 failed, 1 closed by the server" "$out"
  check "$client: its close code" "close code 4001: 1" "$out"
  check "$client: each message's first and last delivery, one of each a message" "20 20" \
    "$(awk '/^  (first|last) of each message /{printf "%s%s", sep, $5; sep=" "}' <<<"$out")"
  check "$client: the first deliveries come no later than the last" "ok" \
    "$(awk '/^  first of each message /{split($0, f)} /^  last of each message /{split($0, l)}
            END{print (f[6] <= l[6] && f[9] <= l[9]) ? "ok" : "first " f[6] " last " l[6]}' <<<"$out")"
  check "$client: every member answered both pings" "5 5" \
    "$(grep -c '^pong from [0-4] hi$' <<<"$room_log") $(grep -c '^pong from [0-4] $' <<<"$room_log")"
  check "$client: sent its token" "upgrade 5 authorization" "$room_log"
  report[$client]=$(grep -E "messages measured|frames:" <<<"$out")
done
check "both clients counted the same frames and bytes" "${report[own]}" "${report[lws]}"
((failures == 0)) || {
  echo "$failures check(s) failed" >&2
  exit 1
}
