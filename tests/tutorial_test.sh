#!/usr/bin/env bash
# docs/tutorial.md, followed literally: installs the build under
# $HOME/spark of a scratch home, makes a fresh database on DATABASE_URL's
# server, and runs every code block of the tutorial in order in one bash,
# from an empty directory: ```c FILE blocks are written to FILE, ```sh
# blocks run as they are. Where the tutorial has the marker
# "<!-- docs.tutorial: the browser check runs here -->", the two instances
# it started are serving, and tests/e2e/tutorial.check.js drives the poll in
# Chromium on both; around the revert, it keeps a page open on each
# instance (from "the browsers watch from here", ready once they are
# connected, to "the browsers saw it") and waits for both to show the
# reverted poll. Blocks of any other language are not run.
#
#   tests/tutorial_test.sh BUILD_DIR
#
# DATABASE_URL must name a PostgreSQL server as a superuser. The ports the
# tutorial uses (4000 and 4001) must be free.
set -euo pipefail

die() {
  echo "tutorial_test: $*" >&2
  exit 1
}

(($# == 1)) || die "usage: tutorial_test.sh BUILD_DIR"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$1" && pwd)
doc=$root/docs/tutorial.md
[[ -n ${DATABASE_URL:-} ]] || die "DATABASE_URL must name the test PostgreSQL (a superuser)"
for port in 4000 4001; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then die "port $port is taken"; fi
done

bash "$root/tests/e2e/deps.sh" || die "npm could not install playwright-core"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/spark-tutorial.XXXXXX")
db_name=spark_tutorial_$$
admin_url=$DATABASE_URL
cleanup() {
  # The tutorial's own last block stops its instances; after a failure
  # they may still run.
  pkill -f "$scratch/work/lunch-poll/lunch serve" 2>/dev/null || true
  psql -X -q "$admin_url" -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf -- "$scratch"
}
trap cleanup EXIT

# The same server, another database: swap the path of the URL.
db_url=$(node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.href)' \
  "$DATABASE_URL" "$db_name")
psql -X -q -v ON_ERROR_STOP=1 "$admin_url" -c "CREATE DATABASE $db_name" >/dev/null

export HOME=$scratch/home
mkdir -p "$HOME" "$scratch/work"
cmake --install "$build" --prefix "$HOME/spark" >/dev/null

# The script: the blocks in order, as the reader would type them.
script=$scratch/tutorial.sh
check="node $root/tests/e2e/tutorial.check.js"
awk -v check="$check" '
  /^<!-- docs\.tutorial: the browser check runs here -->$/ { print check " vote"; next }
  /^<!-- docs\.tutorial: the browsers watch from here -->$/ {
    print check " revert & watcher=$!"
    print "until [ -e \"$SPARK_TUTORIAL_READY\" ]; do kill -0 $watcher; sleep 0.1; done"
    next
  }
  /^<!-- docs\.tutorial: the browsers saw it -->$/ { print "wait $watcher"; next }
  !inblock && /^```c [^ ]+$/ { inblock = "c"; print "cat > " $2 " <<'"'"'SPARK_TUTORIAL_EOF'"'"'"; next }
  !inblock && /^```sh$/ { inblock = "sh"; next }
  !inblock && /^```/ { inblock = "other"; next }
  inblock && /^```$/ { if (inblock == "c") print "SPARK_TUTORIAL_EOF"; inblock = ""; next }
  inblock == "c" || inblock == "sh" { print }
' "$doc" >"$script"
grep -q "tutorial.check.js" "$script" || die "docs/tutorial.md has no browser check marker"
grep -q "^cat > poll.c" "$script" || die "docs/tutorial.md has no poll.c block"
grep -q "^wait \$watcher" "$script" || die "docs/tutorial.md does not watch the revert"

cd "$scratch/work"
export DATABASE_URL=$db_url
export SPARK_TUTORIAL_READY=$scratch/browsers-ready
export SPARK_E2E_ARTIFACTS=${SPARK_E2E_ARTIFACTS:-$root/tests/e2e/artifacts}
echo "tutorial_test: running $(grep -c '' "$script") lines from docs/tutorial.md in $scratch/work"
bash -euo pipefail "$script"
echo "tutorial_test: every block of docs/tutorial.md ran"
