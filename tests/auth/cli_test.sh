#!/usr/bin/env bash
# cli_test.sh SPARKD - checks `sparkd keygen` and `sparkd token` from the
# outside: what an operator types, what lands on stdout, and that every
# mistake is one line on stderr naming the flag or variable, exit 2.
# When node is installed, the token is also verified with Node's own
# Ed25519, independently of libsodium.
set -u
sparkd=${1:?usage: cli_test.sh PATH_TO_SPARKD}
failures=0
errfile=$(mktemp)
trap 'rm -f "$errfile"' EXIT

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect_error WANT_IN_STDERR COMMAND...: exit 2, nothing on stdout, and one
# stderr line that contains WANT.
expect_error() {
    local want=$1 out err rc
    shift
    out=$("$@" 2>"$errfile") && rc=0 || rc=$?
    err=$(cat "$errfile")
    [ "$rc" = 2 ] || fail "$*: exit $rc, expected 2"
    [ -z "$out" ] || fail "$*: printed \"$out\" on stdout"
    [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "$*: stderr is not one line: $err"
    case $err in *"$want"*) ;; *) fail "$*: stderr \"$err\" does not name $want" ;; esac
}

keys=$(env -u DATABASE_URL "$sparkd" keygen) || fail "keygen failed"
[ "$(printf '%s\n' "$keys" | wc -l)" = 2 ] || fail "keygen printed: $keys"
signing=$(printf '%s\n' "$keys" | sed -n 's/^SPARK_SIGNING_KEY=//p')
verify=$(printf '%s\n' "$keys" | sed -n 's/^SPARK_VERIFY_KEYS=//p')
if [ -z "$signing" ] || [ -z "$verify" ]; then fail "keygen lines: $keys"; fi
[ "${signing%%:*}" = "${verify%%:*}" ] || fail "keygen key ids differ: $keys"

token=$(SPARK_SIGNING_KEY=$signing "$sparkd" token --sub 42 --name 'Ada L' --ttl 60 \
    --scope room:lobby --scope='component:todo:*') || fail "token failed"
[ "$(printf '%s\n' "$token" | wc -l)" = 1 ] || fail "token printed more than one line"
case $token in "${signing%%:*}".*.*) ;; *) fail "token \"$token\" lacks its key id" ;; esac

export SPARK_SIGNING_KEY=$signing
expect_error --sub "$sparkd" token --name Ada
expect_error --name "$sparkd" token --sub 42
expect_error --name "$sparkd" token --sub 42 --name
expect_error --ttl "$sparkd" token --sub 42 --name Ada --ttl 0
expect_error --ttl "$sparkd" token --sub 42 --name Ada --ttl 10s
expect_error --scope "$sparkd" token --sub 42 --name Ada --scope 'room:l*'
expect_error --sub "$sparkd" token --sub "$(printf 'a\tb')" --name Ada
expect_error --bogus "$sparkd" token --sub 42 --name Ada --bogus
expect_error SPARK_SIGNING_KEY env -u SPARK_SIGNING_KEY "$sparkd" token --sub 42 --name Ada
expect_error SPARK_SIGNING_KEY env SPARK_SIGNING_KEY=nonsense "$sparkd" token --sub 42 --name Ada
expect_error SPARK_SIGNING_KEY env SPARK_SIGNING_KEY="$verify,$verify" "$sparkd" token --sub 1 \
    --name A
expect_error keygen "$sparkd" keygen --extra

if command -v node >/dev/null; then
    # shellcheck disable=SC2016 # JavaScript, not shell, expands ${kid}
    node -e '
        const c = require("crypto");
        const [token, verify] = process.argv.slice(1);
        const [kid, payload, sig] = token.split(".");
        const x = verify.slice(verify.indexOf(":") + 1);
        const key = c.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
        const claims = JSON.parse(Buffer.from(payload, "base64url"));
        const ok = kid === verify.split(":")[0] &&
            c.verify(null, Buffer.from(`${kid}.${payload}`), key, Buffer.from(sig, "base64url")) &&
            claims.sub === "42" && claims.name === "Ada L" && claims.exp - claims.iat === 60 &&
            claims.scopes.join() === "room:lobby,component:todo:*";
        process.exit(ok ? 0 : 1);' "$token" "$verify" || fail "node does not verify $token"
fi

[ "$failures" = 0 ] && echo "cli_test: all passed"
[ "$failures" = 0 ]
