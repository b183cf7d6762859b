#!/usr/bin/env bash
# floor_relay, as bench/run.sh floor runs it, small: spark_load's fanout
# against it must see every delivery exactly once, and its CPU figures.
#
#   bench/floor_check.sh PATH/TO/floor_relay PATH/TO/spark_load
set -euo pipefail

relay=$1 load=$2
coproc floor { exec "$relay" 0 0; }
# shellcheck disable=SC2154 # floor_PID is set by coproc
trap 'kill "$floor_PID" 2>/dev/null || true' EXIT
read -r -t 10 -u "${floor[0]}" pid_a pid_b port_a port_b || {
  echo "floor_relay did not start" >&2
  exit 1
}
out=$("$load" fanout --port-a "$port_a" --port-b "$port_b" --pid-a "$pid_a" --pid-b "$pid_b" \
  --clients 40 --rate 20 --warmup 0.5 --duration 1 --timeout 30 --quiet)
echo "$out"
grep -q "deliveries 800 of 800 (.*); missing 0; duplicates 0" <<<"$out" || {
  echo "floor_check: not every delivery arrived exactly once" >&2
  exit 1
}
grep -q "CPU over the measured window" <<<"$out" || {
  echo "floor_check: no CPU figures for the relay's processes" >&2
  exit 1
}
