#!/usr/bin/env bash
# Runs every test: builds a normal tree (build/, GCC) and a sanitizer tree
# (build-asan/, ASan + UBSan), starts a fresh private PostgreSQL cluster and
# runs the CTest suites of both trees against it. Two Release trees,
# build-release/ (GCC) and build-clang/ (clang), prove that optimised builds
# stay warning-free; the clang tree runs its unit suites. build/ also runs
# the unit suites under valgrind's memcheck (memcheck.*). Every tree builds
# with -Werror (SPARK_WERROR=ON), which user builds leave off.
#
# Last, scripts/compose-test.sh runs docker-compose.yml for real on podman
# (about 4 minutes cold, 1-2 warm): it needs root, or sudo without a
# password, and says so and skips where it has neither.
#
# Environment: SPARK_TEST_SKIP_ASAN=1 skips the sanitizer tree;
# SPARK_TEST_SKIP_RELEASE=1 skips the Release trees; SPARK_TEST_SKIP_FUZZ=1 skips
# the brief fuzzing run (scripts/fuzz.sh 10, build-fuzz/); SPARK_TEST_SKIP_COMPOSE=1
# skips the compose deployment; SPARK_BUILD_JOBS sets the build parallelism
# (default: number of CPUs).
# Arguments are passed to ctest (e.g. scripts/test.sh -R unit).
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd -- "$root"

jobs=${SPARK_BUILD_JOBS:-$(nproc)}
skip_asan=${SPARK_TEST_SKIP_ASAN:-0}
skip_release=${SPARK_TEST_SKIP_RELEASE:-0}
skip_compose=${SPARK_TEST_SKIP_COMPOSE:-0}
ctest_args=("$@")

stage_start=$SECONDS
stage() {
  printf '\n==== %s ====\n' "$*"
  stage_start=$SECONDS
}
stage_done() {
  printf -- '---- %s (%ds)\n' "$*" $((SECONDS - stage_start))
}

pgdir=""
cleanup() {
  if [[ -n $pgdir ]]; then
    bash scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
    local sockdir=""
    if [[ -r $pgdir/socketdir ]]; then
      read -r sockdir <"$pgdir/socketdir" || true
    fi
    if [[ $sockdir == /tmp/spark-pg-* ]]; then
      rm -rf -- "$sockdir"
    fi
    rm -rf -- "$pgdir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints a free TCP port in 20000-40000.
free_port() {
  local port _
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 20001))
    if command -v ss >/dev/null 2>&1; then
      [[ -z $(ss -Htln "sport = :$port") ]] || continue
    elif (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      continue
    fi
    echo "$port"
    return 0
  done
  echo "test: no free port found in 20000-40000" >&2
  return 1
}

stage "setup: system packages"
bash scripts/setup.sh
stage_done "setup"

stage "build: build/ (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPARK_WERROR=ON
cmake --build build -j "$jobs"
stage_done "build/"

if [[ $skip_asan != 1 ]]; then
  stage "build: build-asan/ (Debug, ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSPARK_SANITIZE=ON -DSPARK_WERROR=ON
  cmake --build build-asan -j "$jobs"
  stage_done "build-asan/"
fi

# Users build Release with whatever compiler they have: everything, tests
# included, must compile without a warning at -O3 (where GCC's flow-based
# warnings see the most) under GCC and clang; the clang tree runs its unit
# suites too.
if [[ $skip_release != 1 ]]; then
  stage "build: build-release/ (GCC, Release) and build-clang/ (clang, Release)"
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSPARK_WERROR=ON
  cmake --build build-release -j "$jobs"
  cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release -DSPARK_WERROR=ON
  cmake --build build-clang -j "$jobs"
  ctest --test-dir build-clang --output-on-failure -R '^unit[.]'
  stage_done "build-release/ and build-clang/"
fi

# Every libFuzzer target of tests/fuzz/ for 10 seconds (docs/fuzzing.md);
# a crash stops the run, as a failing build does.
if [[ ${SPARK_TEST_SKIP_FUZZ:-0} != 1 ]]; then
  stage "fuzz: build-fuzz/ (clang, libFuzzer + ASan + UBSan), 10 s per target"
  SPARK_BUILD_JOBS=$jobs bash scripts/fuzz.sh 10
  stage_done "fuzzing"
else
  printf '\n(SPARK_TEST_SKIP_FUZZ=1: fuzzing skipped)\n'
fi

stage "PostgreSQL: fresh private cluster"
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/spark-test-pg.XXXXXX")
if ((EUID == 0)); then
  chown postgres: -- "$pgdir"
fi
port=$(free_port)
bash scripts/pg.sh start "$pgdir" "$port"
# The suites connect as users do: over TCP with a password (DATABASE_URL),
# and where they choose, over TLS with verify-full, over the unix socket, or
# with the password given apart from the URL.
DATABASE_URL=$(bash scripts/pg.sh url "$pgdir")
SPARK_TEST_URL_TLS=$(bash scripts/pg.sh url "$pgdir" tls)
SPARK_TEST_URL_SOCKET=$(bash scripts/pg.sh url "$pgdir" socket)
SPARK_TEST_URL_NOPASS=$(bash scripts/pg.sh url "$pgdir" nopass)
SPARK_TEST_PG_PASSWORD=$(bash scripts/pg.sh password "$pgdir")
SPARK_TEST_PG_CA=$pgdir/ca.crt
SPARK_TEST_PG_CTL=$root/scripts/pg.sh
SPARK_TEST_PGDIR=$pgdir
export DATABASE_URL SPARK_TEST_URL_TLS SPARK_TEST_URL_SOCKET SPARK_TEST_URL_NOPASS \
  SPARK_TEST_PG_PASSWORD SPARK_TEST_PG_CA SPARK_TEST_PG_CTL SPARK_TEST_PGDIR
for url in DATABASE_URL SPARK_TEST_URL_TLS SPARK_TEST_URL_SOCKET SPARK_TEST_URL_NOPASS; do
  echo "$url=${!url}"
done
stage_done "PostgreSQL"

# Runs one tree's suite on an empty "spark" database (a test that stopped
# PostgreSQL and failed must not break the next suite).
failed=()
run_suite() {
  local tree=$1
  shift
  bash scripts/pg.sh start "$pgdir" >/dev/null
  bash scripts/pg.sh reset "$pgdir"
  if "$@" ctest --test-dir "$tree" --output-on-failure "${ctest_args[@]}"; then
    stage_done "tests in $tree/ passed"
  else
    stage_done "tests in $tree/ FAILED"
    failed+=("$tree")
  fi
}

stage "tests: build/"
run_suite build

if [[ $skip_asan != 1 ]]; then
  stage "tests: build-asan/ (ASan + UBSan)"
  run_suite build-asan env \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  printf '\n(SPARK_TEST_SKIP_ASAN=1: sanitizer tree skipped)\n'
fi

if [[ $skip_compose == 1 ]]; then
  printf '\n(SPARK_TEST_SKIP_COMPOSE=1: compose deployment skipped)\n'
elif ((${#ctest_args[@]} > 0)); then
  printf '\n(ctest arguments given: compose deployment skipped)\n'
else
  stage "deployment: docker-compose.yml on podman (scripts/compose-test.sh)"
  as_root=()
  if ((EUID != 0)) && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  fi
  if ((EUID != 0)) && ((${#as_root[@]} == 0)); then
    echo "compose deployment SKIPPED: it needs root (rootful podman, apt-get); run scripts/compose-test.sh as root"
  elif "${as_root[@]}" bash scripts/compose-test.sh; then
    stage_done "compose deployment passed"
  else
    stage_done "compose deployment FAILED"
    failed+=("compose")
  fi
fi

echo
if ((${#failed[@]} > 0)); then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "All tests passed."
