#!/usr/bin/env bash
# Browser tests of spark.js and the demo pages (tests/e2e/*.test.js): headless
# Chromium from the system (/usr/bin/chromium), driven by playwright-core,
# against two sparkd instances and a fresh PostgreSQL database.
#
#   tests/e2e/run.sh SPARKD TEST_DIFF [SUITE...]
#
# SPARKD is the sparkd binary, TEST_DIFF the unit suite build/tests/test_diff
# (it writes the diff vectors). SUITE names test files to run (e.g. "diff
# chat" runs diff.test.js and chat.test.js); without, every suite runs.
# DATABASE_URL must name a PostgreSQL server as a superuser: a database
# spark_e2e_* is created on it, migrated, and dropped at the end.
#
# Screenshots and the instances' logs go to tests/e2e/artifacts/ (or
# $SPARK_E2E_ARTIFACTS). The exit status is non-zero if anything fails,
# including the set-up; nothing is skipped.
set -euo pipefail

die() {
  echo "run.sh: $*" >&2
  exit 1
}

(($# >= 2)) || die "usage: run.sh SPARKD TEST_DIFF [SUITE...]"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
sparkd=$(realpath -- "$1")
test_diff=$(realpath -- "$2")
shift 2
[[ -x $sparkd ]] || die "$sparkd is not an executable (sparkd)"
[[ -x $test_diff ]] || die "$test_diff is not an executable (test_diff)"
[[ -n ${DATABASE_URL:-} ]] || die "DATABASE_URL must name the test PostgreSQL (a superuser)"
chromium=${SPARK_E2E_CHROMIUM:-/usr/bin/chromium}
[[ -x $chromium ]] || die "$chromium not found: install Debian's chromium package (no browser is downloaded)"
command -v node >/dev/null || die "node not found"
command -v curl >/dev/null || die "curl not found"
command -v psql >/dev/null || die "psql not found"

suites=()
if (($# == 0)); then
  for f in "$here"/*.test.js; do suites+=("$f"); done
else
  for s in "$@"; do
    f=$here/${s%.test.js}.test.js
    [[ -f $f ]] || die "no suite $s ($f)"
    suites+=("$f")
  done
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
bash "$here/deps.sh" || die "npm could not install playwright-core"

artifacts=${SPARK_E2E_ARTIFACTS:-$here/artifacts}
mkdir -p "$artifacts"
artifacts=$(cd "$artifacts" && pwd)
rm -rf "${artifacts:?}"/*
run=$artifacts/run
mkdir -p "$run"

# A copy of sparkd: a rebuild during the run must not change the binary that
# the tests restart or mint tokens with.
cp -- "$sparkd" "$run/sparkd"
sparkd=$run/sparkd

# The test database: DATABASE_URL's server, a database of our own.
db_name=spark_e2e_$$_$RANDOM
with_db() {
  local url=$1 name=$2
  if [[ $url =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
    printf '%s/%s%s\n' "${BASH_REMATCH[1]}" "$name" "${BASH_REMATCH[4]}"
  else
    printf '%s dbname=%s\n' "$url" "$name" # key=value conninfo: the last dbname wins
  fi
}
test_db=$(with_db "$DATABASE_URL" "$db_name")

cleanup() {
  local rc=$?
  set +e
  for name in a b; do
    SPARKD=$sparkd SPARK_E2E_DB=$test_db SPARK_E2E_RUN=$run SPARK_E2E_ROOT=$root \
      bash "$here/instance.sh" stop "$name" || rc=1
  done
  if [[ -n ${db_created:-} ]]; then
    psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null ||
      echo "run.sh: could not drop database $db_name" >&2
  fi
  echo "run.sh: artifacts (screenshots, logs) in $artifacts"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "CREATE DATABASE $db_name" >/dev/null ||
  die "cannot create a database on DATABASE_URL's server"
db_created=1
(cd "$root" && DATABASE_URL=$test_db SPARK_MIGRATIONS_DIR=$root/migrations SPARK_SQL_DIR=$root/sql \
  "$sparkd" migrate >"$run/migrate.log" 2>&1) || {
  cat "$run/migrate.log" >&2
  die "sparkd migrate failed"
}

# Tokens: the instances verify, the tests mint (sparkd token).
keys=$("$sparkd" keygen) || die "sparkd keygen failed"
SPARK_SIGNING_KEY=$(sed -n 's/^SPARK_SIGNING_KEY=//p' <<<"$keys")
SPARK_VERIFY_KEYS=$(sed -n 's/^SPARK_VERIFY_KEYS=//p' <<<"$keys")
[[ -n $SPARK_SIGNING_KEY && -n $SPARK_VERIFY_KEYS ]] || die "sparkd keygen printed no keys"
export SPARK_SIGNING_KEY SPARK_VERIFY_KEYS

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
port_a=$(free_port)
port_b=$(free_port)
while [[ $port_b == "$port_a" ]]; do port_b=$(free_port); done

export SPARKD=$sparkd SPARK_E2E_DB=$test_db SPARK_E2E_RUN=$run SPARK_E2E_ROOT=$root
export SPARK_E2E_ARTIFACTS=$artifacts SPARK_E2E_CHROMIUM=$chromium
export SPARK_E2E_PORT_A=$port_a SPARK_E2E_PORT_B=$port_b
export SPARK_E2E_A=http://127.0.0.1:$port_a SPARK_E2E_B=http://127.0.0.1:$port_b
bash "$here/instance.sh" start a "$port_a"
bash "$here/instance.sh" start b "$port_b"
echo "run.sh: instances a ($SPARK_E2E_A) and b ($SPARK_E2E_B) on database $db_name"

# The diff vectors of the unit suite, for the applier test.
export SPARK_E2E_DIFF_VECTORS=$run/diff-vectors.json
SPARK_DIFF_VECTORS=$SPARK_E2E_DIFF_VECTORS "$test_diff" >"$run/test_diff.log" 2>&1 || {
  cat "$run/test_diff.log" >&2
  die "test_diff failed"
}
[[ -s $SPARK_E2E_DIFF_VECTORS ]] || die "test_diff wrote no vectors to $SPARK_E2E_DIFF_VECTORS"

# One file at a time: a suite may stop and restart an instance.
cd "$here"
node --test --test-concurrency=1 "${suites[@]}"
