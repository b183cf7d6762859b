#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds programs against
# the installed library through pkg-config, as a user would, and runs them:
# one that links libspark alone serves none of sparkd's demos (no index,
# pages or sign-in: 404), and one that declares its own page and routes
# with the public headers gets them served. Neither needs a database: the
# servers point at a closed port, which pages answer with 503.
set -euo pipefail
build=$1
app_cflags=${2:-}
prefix=$(mktemp -d "${TMPDIR:-/tmp}/spark-install.XXXXXX")
trap 'rm -rf -- "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/sparkd include/spark/spark.h include/spark/page.h include/spark/route.h \
         share/spark/migrations/0001_schema.sql share/spark/web/js/spark.js; do
  [[ -e $prefix/$f ]] || { echo "install_test: $f was not installed" >&2; exit 1; }
done
# The installed sparkd finds its library in the prefix it was installed to.
out=$(env -u LD_LIBRARY_PATH "$prefix/bin/sparkd" --version 2>&1) || {
  echo "install_test: the installed sparkd does not run: $out" >&2
  exit 1
}
pc=$(dirname "$(find "$prefix" -name spark.pc | head -n 1)")
[[ -n $pc ]] || { echo "install_test: spark.pc was not installed" >&2; exit 1; }

[[ ! -e $prefix/share/spark/web/index.html ]] || {
  echo "install_test: the runtime's web root has the demos' index" >&2
  exit 1
}

cat >"$prefix/app.c" <<'C'
#include <spark/spark.h>
int main(int argc, char **argv) { return spark_main(argc, argv); }
C
# A poll with a page, a JSON route, and a sign-in of its own.
cat >"$prefix/mine.c" <<'C'
#include <spark/component.h>
#include <spark/page.h>
#include <spark/route.h>
#include <string.h>

static void render(spark_html *h, const spark_view *v) {
    P(h) { spark_textf(h, "%lld votes", spark_state_int(v, "votes", 0)); }
}
SPARK_COMPONENT(poll, .render = render);
SPARK_PAGE(poll, .route = "/poll/:id", .component = "poll:{id}", .title = "Poll {id}");

static void hello(spark_request *req) {
    char who[64];
    const char *body = spark_request_query(req, "who", who, sizeof who) ? "{}" : "{\"hi\":1}";
    spark_respond(req, 200, "application/json", body, strlen(body));
}
SPARK_ROUTE(hello, .method = SPARK_GET, .path = "/hello", .handler = hello);

static void sign_in(spark_request *req) {
    char name[64];
    const char *scopes[] = {"component:poll:*"};
    if (spark_request_form(req, "name", name, sizeof name) ||
        spark_respond_sign_in(req, "u-1", name, scopes, 1, "/poll/lunch"))
        spark_respond(req, 400, "text/plain", "no\n", 3);
}
SPARK_ROUTE(sign_in, .method = SPARK_POST, .path = "/login", .handler = sign_in, .sign_in = true);

int main(int argc, char **argv) { return spark_main(argc, argv); }
C
libdir=$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir spark)
for prog in app mine; do
  # shellcheck disable=SC2046,SC2086 # flags are meant to split # app_cflags holds zero or more flags
  cc $app_cflags -std=c11 "$prefix/$prog.c" -o "$prefix/$prog" \
    $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs spark) -Wl,-rpath,"$libdir"
done
# A user's program names itself.
out=$("$prefix/app" --version)
[[ $out == "app $(PKG_CONFIG_PATH=$pc pkg-config --modversion spark)" ]] || {
  echo "install_test: unexpected output: $out" >&2
  exit 1
}

# Serving: sign-in on (keys and SPARK_DEMO_LOGIN=1), as sparkd's demo runs.
eval "$("$prefix/app" keygen | sed 's/^/export /')"
export SPARK_DEMO_LOGIN=1 SPARK_AUTH=on SPARK_LOG_LEVEL=error
export DATABASE_URL="postgresql://spark@127.0.0.1:1/spark?connect_timeout=1"
server=
trap 'rm -rf -- "$prefix"; [[ -z $server ]] || kill "$server" 2>/dev/null || true' EXIT
fail() {
  echo "install_test: $*" >&2
  exit 1
}

# serve PROGRAM: starts it on a free port (in $port) and waits for it.
serve() {
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    "$prefix/$1" serve --port "$port" --host 127.0.0.1 --web-root "$prefix/share/spark/web" \
      --shutdown-timeout 1 2>>"$prefix/$1.log" &
    server=$!
    for _ in $(seq 50); do
      curl -fs -o /dev/null "http://127.0.0.1:$port/js/spark.js" && return 0
      kill -0 "$server" 2>/dev/null || break
      sleep 0.1
    done
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  done
  fail "$1 would not serve: $(cat "$prefix/$1.log")"
}

stop() {
  kill "$server"
  wait "$server" || fail "$1 exited with $? on SIGTERM: $(cat "$prefix/$1.log")"
  server=
}

# expect STATUS METHOD PATH [CURL ARGS...]: the response's status; its
# headers and body are left in $prefix/resp.
expect() {
  local want=$1 method=$2 path=$3 got
  shift 3
  got=$(curl -s -o "$prefix/resp" -D "$prefix/resp.h" -w '%{http_code}' -X "$method" "$@" \
    "http://127.0.0.1:$port$path")
  [[ $got == "$want" ]] || fail "$method $path answered $got, expected $want: $(cat "$prefix/resp")"
}

serve app
for path in / /counter/home /todo/groceries /chat/lobby /my-app /login /logout; do
  expect 404 GET "$path"
done
expect 405 POST /login -H "Origin: http://127.0.0.1:$port" --data 'name=Ada'
stop app

serve mine
expect 404 GET /
expect 200 GET '/hello?who=me'
grep -qx '{"hi":1}' "$prefix/resp" || fail "/hello did not read its query"
# Pages: signed out, to sign-in; another poll's scope, 403; an id too long, 404.
expect 303 GET /poll/lunch
grep -qi '^location: /login?next=/poll/lunch' "$prefix/resp.h" || fail "no sign-in redirect"
other=$("$prefix/mine" token --sub u-2 --name Bo --scope component:poll:other)
expect 403 GET /poll/lunch -H "Authorization: Bearer $other"
expect 404 GET "/poll/$(printf 'x%.0s' $(seq 251))" -H "Authorization: Bearer $other"
# Sign-in: refused from another site; from ours, a cookie that opens the
# page (503 only because no database answers).
expect 403 POST /login -H 'Origin: http://evil.example' --data 'name=Ada'
expect 303 POST /login -H "Origin: http://127.0.0.1:$port" --data 'name=Ada+L'
grep -qi '^set-cookie: spark_session=.*HttpOnly; SameSite=Lax' "$prefix/resp.h" ||
  fail "no session cookie: $(cat "$prefix/resp.h")"
grep -qi '^location: /poll/lunch' "$prefix/resp.h" || fail "sign-in did not go on to the page"
cookie=$(sed -n 's/^set-cookie: \(spark_session=[^;]*\).*/\1/ip' "$prefix/resp.h")
expect 503 GET /poll/lunch -H "Cookie: $cookie"
stop mine
echo "install_test: installed, found by pkg-config, linked: $out; libspark alone serves no demo"
