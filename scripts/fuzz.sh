#!/usr/bin/env bash
# Fuzzes the parsers of untrusted bytes (docs/fuzzing.md): configures
# build-fuzz/ with clang and SPARK_FUZZ=ON, builds the libFuzzer targets of
# tests/fuzz/, and runs each for SECONDS (default 60) on a scratch copy of
# its seed corpus in tests/fuzz/corpus/NAME/ (the repository's seeds are
# never written to). Fails when a target crashes, leaks, times out or
# breaks an invariant; the reproducer is kept and its path printed.
#
# Usage: scripts/fuzz.sh [SECONDS]
# Environment: SPARK_FUZZ_TARGETS="frame json ..." runs only those targets;
# SPARK_BUILD_JOBS sets the build parallelism (default: number of CPUs).
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd -- "$root"

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: scripts/fuzz.sh [SECONDS]" >&2
  exit 2
fi
jobs=${SPARK_BUILD_JOBS:-$(nproc)}
if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: clang not found (apt-get install clang)" >&2
  exit 1
fi

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSPARK_FUZZ=ON -DSPARK_WERROR=ON >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz_all

if [[ -n ${SPARK_FUZZ_TARGETS:-} ]]; then
  read -r -a targets <<<"$SPARK_FUZZ_TARGETS"
else
  targets=()
  for src in tests/fuzz/fuzz_*.c; do
    name=${src##*/fuzz_}
    targets+=("${name%.c}")
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/spark-fuzz.XXXXXX")
keep=0
cleanup() {
  if ((keep == 0)); then rm -rf -- "$work"; fi
}
trap cleanup EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
total=0
summary=()
for name in "${targets[@]}"; do
  bin=build-fuzz/tests/fuzz/fuzz_$name
  if [[ ! -x $bin ]]; then
    echo "fuzz: no target fuzz_$name" >&2
    failed+=("$name")
    continue
  fi
  corpus=$work/corpus/$name
  mkdir -p -- "$corpus" "$work/artifacts/$name"
  if [[ -d tests/fuzz/corpus/$name ]]; then
    cp -- tests/fuzz/corpus/"$name"/* "$corpus"/
  fi
  log=$work/$name.log
  printf '==== fuzz_%s (%ss)\n' "$name" "$seconds"
  rc=0
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$name/" \
    "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log" | tail -n 1)
  execs=${execs:-0}
  total=$((total + execs))
  if ((rc != 0)); then
    keep=1
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*invariant broken|.*runtime error)' "$log" | head -n 5 || true
    echo "fuzz_$name FAILED (exit $rc) after $execs executions; log: $log"
    ls -1 "$work/artifacts/$name"/* 2>/dev/null | sed 's/^/  reproducer: /' || true
    failed+=("$name")
  else
    echo "fuzz_$name: $execs executions, no crash"
  fi
  summary+=("$name=$execs")
done

echo
if ((${#failed[@]} > 0)); then
  echo "fuzz: FAILED: ${failed[*]} (${summary[*]}; ${seconds}s each)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, $total executions, no crash (${summary[*]}; ${seconds}s each)"
