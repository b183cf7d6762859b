#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds a program against
# the installed library through pkg-config, as a user would, and runs it.
set -euo pipefail
build=$1
app_cflags=${2:-}
prefix=$(mktemp -d "${TMPDIR:-/tmp}/spark-install.XXXXXX")
trap 'rm -rf -- "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/sparkd include/spark/spark.h share/spark/migrations/0001_schema.sql \
         share/spark/web/index.html; do
  [[ -e $prefix/$f ]] || { echo "install_test: $f was not installed" >&2; exit 1; }
done
pc=$(dirname "$(find "$prefix" -name spark.pc | head -n 1)")
[[ -n $pc ]] || { echo "install_test: spark.pc was not installed" >&2; exit 1; }

cat >"$prefix/app.c" <<'C'
#include <spark/spark.h>
int main(int argc, char **argv) { return spark_main(argc, argv); }
C
# shellcheck disable=SC2046,SC2086 # flags are meant to split # app_cflags holds zero or more flags
cc $app_cflags "$prefix/app.c" -o "$prefix/app" $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs spark) \
  -Wl,-rpath,"$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir spark)"
out=$("$prefix/app" --version)
[[ $out == "sparkd $(PKG_CONFIG_PATH=$pc pkg-config --modversion spark)" ]] || {
  echo "install_test: unexpected output: $out" >&2
  exit 1
}
echo "install_test: installed, found by pkg-config, linked: $out"
