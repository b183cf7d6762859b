#!/usr/bin/env bash
# The compose deployment, run for real: docker-compose.yml, unchanged, with
# Debian's podman and docker-compose, no container registry needed.
#
#   scripts/compose-test.sh          (as root, on Debian 12)
#
# Phases (each prints its duration):
#   packages  installs what is missing (podman, netavark, aardvark-dns,
#             debootstrap, docker-compose, chromium, node, npm, curl, ...)
#   podman    container limits in containers.conf; checks that podman can
#             run a container at all, and skips the test (exit 0, one line
#             saying why) only when it cannot
#   images    debian:12 from debootstrap (kept between runs), and test
#             stand-ins for postgres:15 and haproxy:2.8 (deploy/standins/)
#   up        podman's Docker API on a private socket; docker-compose up
#             --build of docker-compose.yml
#   healthy   both instances healthy and answering through the balancer
#   checks    the key pair (made by the keys service, private to uid 10001),
#             sign-in required, no token in the balancer's access log
#   browser   two users in Chromium chat and share a todo list; the instance
#             serving a socket is killed; nothing is lost (tests/compose/)
#   database  psql in the postgres container shows that state
# Everything is torn down at the end (docker-compose down -v, the API
# service stopped), whatever happened. Images stay as a cache (a run with
# nothing cached takes about 4 minutes here, a later one about 1 to 2);
# `podman system reset -f` starts from nothing again.
#
# Environment: SPARK_LB_PUBLISH (the balancer's host port, default 8080; a
# free port is picked when 8080 is taken and this is unset),
# SPARK_COMPOSE_PROJECT (default sparkcomposetest), SPARK_COMPOSE_ARTIFACTS
# (logs and screenshots, default tests/compose/artifacts), CI (set: the
# container limits are added to containers.conf even when it exists).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
project=${SPARK_COMPOSE_PROJECT:-sparkcomposetest}
artifacts=${SPARK_COMPOSE_ARTIFACTS:-$root/tests/compose/artifacts}
containers_conf=/etc/containers/containers.conf

log() { printf 'compose-test: %s\n' "$*"; }
die() {
  printf 'compose-test: FAILED: %s\n' "$*" >&2
  exit 1
}

# ---- timing -----------------------------------------------------------------

started=$EPOCHREALTIME
phase_name=""
phase_started=""
timings=()

elapsed() { # seconds since $1 (an EPOCHREALTIME), one decimal
  local now=$EPOCHREALTIME
  awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}
phase() {
  end_phase
  phase_name=$1
  phase_started=$EPOCHREALTIME
  log "== $phase_name"
}
end_phase() {
  [[ -n $phase_name ]] || return 0
  local took
  took=$(elapsed "$phase_started")
  timings+=("$(printf '%-9s %6ss' "$phase_name" "$took")")
  log "   $phase_name took ${took}s"
  phase_name=""
}
print_timings() {
  end_phase
  local t
  for t in "${timings[@]}"; do log "  $t"; done
  log "  $(printf '%-9s %6ss' total "$(elapsed "$started")")"
}

# Polls `cmd...` until it succeeds; fails naming `what` after `secs` seconds.
until_ok() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
}

# The test runs the defaults of docker-compose.yml: keys made by the keys
# service, demo login on.
unset SPARK_SIGNING_KEY SPARK_VERIFY_KEYS SPARK_DEMO_LOGIN

((EUID == 0)) || die "run as root: rootful podman, apt-get and /etc/containers need it"
[[ -r /etc/debian_version ]] || die "this script targets Debian 12"

# One run at a time: the project name and the port are shared.
exec 9>/run/lock/spark-compose-test.lock
flock -n 9 || die "another scripts/compose-test.sh is running (lock /run/lock/spark-compose-test.lock)"

mkdir -p "$artifacts"
artifacts=$(cd "$artifacts" && pwd)
rm -rf "${artifacts:?}"/*

# ---- packages ---------------------------------------------------------------

phase packages
need=(
  podman:podman runc:runc netavark:netavark aardvark-dns:aardvark-dns iptables:iptables
  debootstrap:debootstrap docker-compose:docker-compose chromium:chromium
  curl:curl node:nodejs npm:npm flock:util-linux setpriv:util-linux
)
missing=()
for pair in "${need[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  case $cmd in
    netavark | aardvark-dns) [[ -x /usr/lib/podman/$cmd ]] && continue ;;
    *) command -v "$cmd" >/dev/null 2>&1 && continue ;;
  esac
  [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done
# debootstrap checks signatures with Debian's keyring.
[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    die "apt-get could not install ${missing[*]}"
fi

# ---- podman -----------------------------------------------------------------

phase podman
# Pitfall 1: without CAP_SYS_RESOURCE, podman's default nofile limit (above
# the hard limit here) makes every container fail to start. Containers get
# the host's hard limits instead, unless a limit is configured already.
configured_ulimits() {
  grep -qsE '^[[:space:]]*default_ulimits[[:space:]]*=' "$containers_conf" \
    /etc/containers/containers.conf.d/*.conf
}
ulimits_toml() {
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [[ $nofile == unlimited ]] && nofile=1048576
  [[ $nproc == unlimited ]] && nproc=32768
  ((nproc > 32768)) && nproc=32768
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
    "$nofile" "$nofile" "$nproc" "$nproc"
}
if configured_ulimits; then
  log "containers.conf sets default_ulimits already: kept as it is"
elif [[ ! -e $containers_conf ]]; then
  log "writing $containers_conf (container limits = this host's hard limits)"
  mkdir -p "$(dirname "$containers_conf")"
  {
    echo "# Written by Spark's scripts/compose-test.sh: containers get the host's"
    echo "# hard limits (root may not raise them here)."
    ulimits_toml
  } >"$containers_conf"
elif [[ -n ${CI:-} ]]; then
  dropin=/etc/containers/containers.conf.d/50-spark-compose-test.conf
  log "CI: writing $dropin (container limits; $containers_conf is left as it is)"
  mkdir -p "$(dirname "$dropin")"
  {
    echo "# Written by Spark's scripts/compose-test.sh under CI."
    ulimits_toml
  } >"$dropin"
else
  log "note: $containers_conf exists without default_ulimits and is left as it is;"
  log "      if containers fail with 'error setting rlimit', add to it: $(ulimits_toml | tail -1)"
fi

# Service names must resolve inside the compose network: podman's netavark
# backend (with aardvark-dns) does that, the older CNI backend does not.
backend=$(podman info --format '{{.Host.NetworkBackend}}') || die "'podman info' failed"
[[ $backend == netavark ]] ||
  die "podman uses the '$backend' network backend; compose needs netavark (set network_backend = \"netavark\" under [network] in $containers_conf; existing containers must be recreated)"

# Can podman run a container at all? A root file system of one binary and
# its libraries needs no image and no registry.
probe=$(mktemp -d)
cleanup_probe() { rm -rf "$probe"; }
trap cleanup_probe EXIT
mkdir -p "$probe/rootfs"
true_bin=$(type -P true)
true_bin=$(readlink -f "$true_bin")
cp --parents -L "$true_bin" "$probe/rootfs/"
while read -r lib; do
  cp --parents -L "$lib" "$probe/rootfs/"
done < <(ldd "$true_bin" | grep -oE '/[^ )]+')
# podman's default OCI runtime first, then runc: Debian 12's crun cannot
# run containers where cgroups are mounted in hybrid mode, runc can.
podman_rt=()
for rt in default runc; do
  args=()
  [[ $rt == default ]] || args=(--runtime "$rt")
  if podman "${args[@]}" run --rm --network none --rootfs "$probe/rootfs" "$true_bin" >"$probe/$rt.out" 2>&1; then
    podman_rt=("${args[@]}")
    working_rt=$rt
    break
  fi
  log "podman run with the $rt OCI runtime failed: $(grep -v '^[[:space:]]*$' "$probe/$rt.out" | tail -1)"
done
if [[ -z ${working_rt:-} ]]; then
  why=""
  for rt in default runc; do
    why+="$rt runtime: $(grep -v '^[[:space:]]*$' "$probe/$rt.out" | tail -1); "
  done
  why=${why%; }
  # Limits are a setting, not an inability: say which one.
  if grep -qi 'rlimit' "$probe"/*.out; then
    die "containers cannot get podman's default limits ($why): add under [containers] in $containers_conf: $(ulimits_toml | tail -1)"
  fi
  # The kernel or the sandbox this runs in does not let podman run anything.
  if grep -qiE 'oci runtime|runc|crun|namespace|cgroup|permission denied|not permitted|seccomp|apparmor' "$probe"/*.out; then
    log "SKIPPED: podman cannot run containers on this machine ($why)"
    exit 0
  fi
  die "a trivial 'podman run' failed: $why"
fi
log "podman runs containers with the $working_rt OCI runtime"
podman() { command podman "${podman_rt[@]}" "$@"; }
cleanup_probe
trap - EXIT

# ---- images -----------------------------------------------------------------

phase images
# The Debian mirror that apt uses here (never a hard-coded host).
mirror_for() { # suite -> URI
  # shellcheck disable=SC2016 # $(...) is apt's own field syntax
  apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 'Created-By: Packages' |
    awk -v s="$1" '$1 == s { print $2; exit }'
}
if podman image exists docker.io/library/debian:12; then
  log "debian:12: kept from an earlier run"
else
  mirror=$(mirror_for bookworm)
  [[ -n $mirror ]] || die "apt has no source for bookworm (apt-get indextargets): cannot pick a mirror for debootstrap"
  security=$(mirror_for bookworm-security)
  log "debian:12: debootstrap bookworm from $mirror"
  rootfs=$(mktemp -d /var/tmp/spark-debian12.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$artifacts/debootstrap.log" 2>&1 || {
    tail -20 "$artifacts/debootstrap.log" >&2
    die "debootstrap failed (log: $artifacts/debootstrap.log)"
  }
  rm -f "$rootfs/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\n' "$mirror"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [[ -n $security ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\n' "$security"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$rootfs/etc/apt/sources.list.d/debian.sources"
  : >"$rootfs/etc/resolv.conf"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - localhost/debian:12 >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  podman tag localhost/debian:12 docker.io/library/debian:12 docker.io/library/debian:12-slim
fi
# Stand-ins for the registry's postgres:15 and haproxy:2.8 (podman's layer
# cache makes a rebuild instant).
for standin in postgres:15 haproxy:2.8; do
  name=${standin%%:*}
  log "$standin: stand-in from deploy/standins/$name"
  podman build -t "docker.io/library/$standin" -f "$root/deploy/standins/$name/Containerfile" \
    "$root/deploy/standins/$name" >"$artifacts/build-$name.log" 2>&1 || {
    tail -20 "$artifacts/build-$name.log" >&2
    die "building the $standin stand-in failed (log: $artifacts/build-$name.log)"
  }
done

# ---- up ---------------------------------------------------------------------

phase up
run_dir=$(mktemp -d /run/spark-compose-test.XXXXXX)
sock=$run_dir/podman.sock
service_pid=""
health_pid=""
export DOCKER_HOST=unix://$sock COMPOSE_PROJECT_NAME=$project COMPOSE_FILE=$root/docker-compose.yml
compose() { docker-compose --ansi never "$@"; }

teardown() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  end_phase
  phase_name=teardown
  phase_started=$EPOCHREALTIME
  log "== teardown"
  [[ -n $health_pid ]] && kill "$health_pid" 2>/dev/null && wait "$health_pid" 2>/dev/null
  if [[ -n $service_pid ]]; then
    if ((rc != 0)); then
      compose ps >"$artifacts/ps.txt" 2>&1
      compose logs --no-color --timestamps >"$artifacts/compose.log" 2>&1
      cat "$artifacts/ps.txt" >&2
      local svc
      for svc in postgres keys migrate sparkd1 sparkd2 lb; do
        compose logs --no-color --tail 8 "$svc" 2>&1 | grep -v '^Attaching' >&2
      done
      log "all container logs: $artifacts/compose.log"
    fi
    compose down -v --remove-orphans --timeout 5 >>"$artifacts/down.log" 2>&1 ||
      log "docker-compose down failed (see $artifacts/down.log)"
    kill "$service_pid" 2>/dev/null
    wait "$service_pid" 2>/dev/null
  fi
  # Images left dangling by rebuilds, once a week old: the build cache of
  # recent runs stays.
  podman image prune -f --filter until=168h >/dev/null 2>&1
  rm -rf "$run_dir"
  print_timings
  if ((rc == 0)); then log "PASSED"; else log "FAILED (status $rc); artifacts in $artifacts"; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# (command: $! must be podman itself, not a subshell running the function.)
command podman "${podman_rt[@]}" system service --time=0 "unix://$sock" \
  >"$artifacts/podman-service.log" 2>&1 9>&- &
service_pid=$!
until_ok 30 "podman's API on $sock" curl -fs --unix-socket "$sock" -o /dev/null http://d/_ping

# Leftovers of an interrupted run would be reused: start from nothing.
compose down -v --remove-orphans --timeout 5 >"$artifacts/down.log" 2>&1 || true

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z ${SPARK_LB_PUBLISH:-} ]]; then
  SPARK_LB_PUBLISH=8080
  if port_busy 8080; then
    SPARK_LB_PUBLISH=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    log "port 8080 is taken here: the balancer is published on $SPARK_LB_PUBLISH (SPARK_LB_PUBLISH)"
  fi
fi
port_busy "$SPARK_LB_PUBLISH" && die "port $SPARK_LB_PUBLISH is taken: set SPARK_LB_PUBLISH to a free port"
export SPARK_LB_PUBLISH
lb=http://127.0.0.1:$SPARK_LB_PUBLISH

# Pitfall 2: without systemd, podman never runs healthchecks by itself, and
# depends_on: service_healthy would wait for ever. Run them from here.
(
  while :; do
    for c in $(podman ps --filter "label=com.docker.compose.project=$project" --format '{{.Names}}'); do
      podman healthcheck run "$c" >/dev/null 2>&1 || true
    done
    sleep 2
  done
) 9>&- &
health_pid=$!

log "docker-compose up -d --build (project $project, balancer on $lb)"
compose up -d --build >"$artifacts/up.log" 2>&1 || {
  tail -30 "$artifacts/up.log" >&2
  die "docker-compose up failed (log: $artifacts/up.log)"
}

# ---- healthy ----------------------------------------------------------------

phase healthy
container_of() { compose ps -q "$1"; }
healthy() {
  local id state
  id=$(container_of "$1")
  [[ -n $id ]] || return 1
  state=$(podman inspect --format '{{.State.Health.Status}} {{.RestartCount}}' "$id" 2>/dev/null) || return 1
  # A crash loop will not end by waiting.
  ((${state#* } < 3)) || die "$1 keeps exiting (restarted ${state#* } times)"
  [[ ${state% *} == healthy ]]
}
until_ok 120 "sparkd1 to be healthy" healthy sparkd1
until_ok 60 "sparkd2 to be healthy" healthy sparkd2
# The balancer reaches both: /healthz through it names each instance.
declare -A seen=()
both_seen() {
  local body instance
  body=$(curl -fsS --max-time 3 "$lb/healthz" 2>/dev/null) || return 1
  instance=$(sed -nE 's/.*"instance":"([^"]*)".*/\1/p' <<<"$body")
  [[ -n $instance ]] && seen[$instance]=1
  [[ -n ${seen[sparkd1]:-} && -n ${seen[sparkd2]:-} ]]
}
until_ok 60 "the balancer on $lb to answer from sparkd1 and sparkd2" both_seen
log "balancer $lb answers from sparkd1 and sparkd2"

# ---- checks -----------------------------------------------------------------

phase checks
# The keys service made one key pair: the directory and the file belong to
# uid 10001 (0700, 0400), which can read it and no other uid can. (Both
# instances mount the same volume; the browser test signs in on one and is
# served by the other.)
# shellcheck disable=SC2016 # expanded by the container's shell
keys=$(compose exec -T sparkd1 sh -c 'cd /var/lib/spark/keys && stat -c "%u:%g %a %n" . spark.env &&
  test -r spark.env && echo readable by $(id -u)' | tr -d '\r')
expected=$'10001:10001 700 .\n10001:10001 400 spark.env\nreadable by 10001'
[[ $keys == "$expected" ]] || die "the keys in sparkd1: got
$keys
expected
$expected"
if compose exec -T --user 10002 sparkd1 cat /var/lib/spark/keys/spark.env >/dev/null 2>&1; then
  die "another uid (10002) can read the keys file"
fi
keys_log=$(compose logs --no-color keys)
grep -q 'wrote a new key pair' <<<"$keys_log" || die "the keys service did not write a key pair: $keys_log"
if grep -q 'SPARK_SIGNING_KEY=' <<<"$keys_log"; then die "the keys service logged the signing key"; fi
# Auth is on: a page needs a signed-in user (the demo login), through either instance.
for _ in 1 2 3 4; do
  code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$lb/todo/compose-check")
  [[ $code == "303 $lb/login?next=/todo/compose-check" ]] ||
    die "GET /todo/compose-check without a session answered '$code', expected a 303 to /login"
done
# Which instance answered: the balancer says so in X-Spark-Server.
server=$(curl -fsS -D - -o /dev/null "$lb/healthz" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]park-[Ss]erver: //p')
[[ $server == sparkd1 || $server == sparkd2 ]] || die "no X-Spark-Server header from the balancer (got '$server')"
# No token in the balancer's access log: a request with ?token= is logged
# with its path only.
canary=canary-$RANDOM$RANDOM
secret=secret-$RANDOM$RANDOM$RANDOM
curl -s -o /dev/null "$lb/$canary?token=$secret&x=1"
logged() {
  compose logs --no-color lb >"$run_dir/lb.log" 2>&1 && grep -F "/$canary" "$run_dir/lb.log" >"$run_dir/lb-line"
}
until_ok 10 "the balancer to log the request" logged
log "balancer log line: $(cat "$run_dir/lb-line")"
if grep -qF "$secret" "$run_dir/lb.log"; then die "the token reached the balancer's access log"; fi
grep -qE "\"GET /$canary HTTP/1.1\"\$" "$run_dir/lb-line" || die "the access log line lacks the request path"

# ---- browser ----------------------------------------------------------------

phase browser
e2e=$root/tests/e2e
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [[ ! -f $e2e/node_modules/playwright-core/package.json ]]; then
  log "installing playwright-core into tests/e2e/node_modules (npm ci; no browser download)"
  (cd "$e2e" && npm ci --no-audit --no-fund >/dev/null) || die "npm ci in tests/e2e failed"
fi
SPARK_COMPOSE_URL=$lb SPARK_COMPOSE_STATE=$artifacts/state.json SPARK_E2E_ARTIFACTS=$artifacts \
  node --test --test-concurrency=1 "$root/tests/compose/failover.test.js" ||
  die "the browser test failed (screenshots in $artifacts)"
[[ -s $artifacts/state.json ]] || die "the browser test wrote no $artifacts/state.json"

# ---- database ---------------------------------------------------------------

phase database
psql_c() { compose exec -T postgres psql -X -q -v ON_ERROR_STOP=1 -U spark -d spark "$@"; }
field() { # a field of the browser test's state.json; arrays one item a line
  node -e 'const v = require(process.argv[1])[process.argv[2]];
    console.log(Array.isArray(v) ? v.join("\n") : v)' "$artifacts/state.json" "$1"
}
todo_id=$(field component)
room=$(field room)
survivor=$(field survivor)
# What an operator sees:
psql_c -v id="$todo_id" -v room="$room" <<'SQL'
SELECT id, version, jsonb_pretty(state) AS state FROM spark.components WHERE id = :'id';
SELECT seq, actor, payload FROM spark.messages WHERE room = :'room' AND kind <> 'presence' ORDER BY seq;
SQL
# What the test checks: the component's state, the room's messages, and the
# instances that made the changes after the kill, one line each.
mapfile -t stored < <(psql_c -At -v id="$todo_id" -v room="$room" -v v="$(field killVersion)" <<'SQL'
SELECT coalesce((SELECT state::text FROM spark.components WHERE id = :'id'), '');
SELECT coalesce(jsonb_agg(payload ORDER BY seq)::text, '') FROM spark.messages
 WHERE room = :'room' AND kind <> 'presence';
SELECT coalesce(string_agg(DISTINCT instance, ','), '') FROM spark.events
 WHERE component_id = :'id' AND version > :v;
SQL
)
((${#stored[@]} == 3)) || die "psql gave ${#stored[@]} lines, not 3: ${stored[*]}"
[[ -n ${stored[0]} ]] || die "no row $todo_id in spark.components"
while IFS= read -r text; do
  grep -qF "\"$text\"" <<<"${stored[0]}" || die "todo '$text' is not in spark.components ($todo_id)"
done < <(field todos)
while IFS= read -r text; do
  grep -qF "\"$text\"" <<<"${stored[1]}" || die "message '$text' is not in spark.messages (room $room)"
done < <(field messages)
log "instances that stored the changes after the kill: ${stored[2]}"
[[ ${stored[2]} == "$survivor" ]] || die "changes after the kill were stored by '${stored[2]}', not by the survivor $survivor"
log "database holds every todo and message the browsers saw"
end_phase
