#!/usr/bin/env bash
# Manages a private PostgreSQL cluster kept in one directory.
#
#   scripts/pg.sh init|start|stop|status|url|reset DIR [PORT]
#
#   init    create the cluster in DIR/data if it does not exist yet
#   start   init if needed, start the server, create the database "spark"
#   stop    stop the server (fast shutdown); nothing to do if it is not running
#   status  exit 0 if the server is running, 3 if not
#   url     print the libpq URI of the "spark" database (over the unix socket)
#   reset   drop and re-create the "spark" database (the server must run)
#
# PORT (default 54329) is remembered in DIR/port; the unix socket directory in
# DIR/socketdir (DIR/run, or a short directory under /tmp when DIR/run is too
# long for a socket path). The server listens on 127.0.0.1 and that socket,
# with trust authentication: it is meant for development and tests only.
#
# PostgreSQL refuses to run as root: when run as root, every server command
# runs as the "postgres" user, which must own DIR.
set -euo pipefail

readonly default_port=54329
readonly db_name=spark

prog=${0##*/}

die() {
  echo "$prog: $*" >&2
  exit 1
}

usage() {
  echo "usage: $prog init|start|stop|status|url|reset DIR [PORT]" >&2
  exit 2
}

(($# >= 2 && $# <= 3)) || usage
cmd=$1
case $cmd in
  init | start | stop | status | url | reset) ;;
  *) usage ;;
esac
[[ -n $2 ]] || usage
port_arg=${3:-}
if [[ -n $port_arg ]] && ! [[ $port_arg =~ ^[0-9]{1,5}$ && $port_arg -ge 1 && $port_arg -le 65535 ]]; then
  echo "$prog: PORT must be a number from 1 to 65535, got '$port_arg'" >&2
  exit 2
fi

# Settings from the caller's environment must not redirect our commands.
unset PGDATA PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSERVICEFILE \
  PGPASSWORD PGPASSFILE PGOPTIONS PGSSLMODE PGTZ PGCLIENTENCODING

# Absolute path of DIR (it may not exist yet).
dir=$(realpath -m -- "$2")
data=$dir/data

as_root=false
((EUID == 0)) && as_root=true

find_bindir() {
  local candidate
  if command -v pg_config >/dev/null 2>&1; then
    candidate=$(pg_config --bindir 2>/dev/null || true)
    if [[ -n $candidate && -x $candidate/initdb && -x $candidate/pg_ctl ]]; then
      echo "$candidate"
      return
    fi
  fi
  candidate=/usr/lib/postgresql/15/bin
  if [[ -x $candidate/initdb && -x $candidate/pg_ctl ]]; then
    echo "$candidate"
    return
  fi
  die "PostgreSQL server binaries (initdb, pg_ctl) not found; run scripts/setup.sh"
}

# Runs a command as the user that owns the cluster.
as_owner() {
  if $as_root; then
    # cwd may be unreadable for postgres (e.g. /root): run from DIR.
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Creates DIR if needed. When root: makes it belong to "postgres" and checks
# that this user can reach it.
prepare_dir() {
  if ! $as_root; then
    mkdir -p -- "$dir"
    [[ -w $dir && -x $dir ]] || die "$dir is not writable by $(id -un)"
    return
  fi
  command -v runuser >/dev/null 2>&1 || die "runuser not found (package util-linux)"
  id -u postgres >/dev/null 2>&1 || die "user 'postgres' does not exist; run scripts/setup.sh"

  mkdir -p -- "$dir"
  if [[ $(stat -c %U -- "$dir") != postgres ]]; then
    [[ -z $(ls -A -- "$dir") ]] ||
      die "$dir must be owned by the postgres user (PostgreSQL refuses to run as root): chown -R postgres: $dir"
    chown postgres: -- "$dir"
    chmod 700 -- "$dir"
  fi
  if ! runuser -u postgres -- test -w "$dir" -a -x "$dir"; then
    local path="" part
    local -a parts
    IFS=/ read -r -a parts <<<"${dir#/}"
    for part in "${parts[@]}"; do
      path+=/$part
      runuser -u postgres -- test -x "$path" ||
        die "the postgres user cannot enter $path (needed to reach $dir); PostgreSQL refuses to run as root, so use a directory postgres can reach (e.g. under /tmp) or run: chmod o+x $path"
    done
    die "the postgres user cannot write to $dir"
  fi
}

# Writes a small file in DIR, owned like DIR.
write_file() {
  printf '%s\n' "$2" >"$dir/$1"
  if $as_root; then chown postgres: -- "$dir/$1"; fi
}

read_file() {
  local value
  [[ -r $dir/$1 ]] || return 1
  read -r value <"$dir/$1" || [[ -n $value ]]
  printf '%s\n' "$value"
}

current_port() {
  if [[ -n $port_arg ]]; then
    echo "$port_arg"
  else
    read_file port 2>/dev/null || echo "$default_port"
  fi
}

# The socket file is "<socketdir>/.s.PGSQL.<port>" and must fit in
# sun_path (108 bytes with its NUL): keep a margin.
choose_socketdir() {
  local run=$dir/run hash
  if ((${#run} + 16 <= 100)); then
    echo "$run"
  else
    hash=$(printf '%s' "$dir" | sha256sum)
    echo "/tmp/spark-pg-${hash:0:12}"
  fi
}

ensure_socketdir() {
  local sockdir=$1 owner
  owner=$(id -un)
  if $as_root; then owner=postgres; fi
  if [[ ! -d $sockdir ]]; then
    mkdir -p -- "$sockdir"
    if $as_root; then chown postgres: -- "$sockdir"; fi
    chmod 700 -- "$sockdir"
  fi
  [[ $(stat -c %U -- "$sockdir") == "$owner" ]] ||
    die "socket directory $sockdir exists but is not owned by $owner; remove it"
}

is_running() {
  [[ -f $data/PG_VERSION ]] || return 1
  as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# Writes the settings the server needs into DIR/data/spark.conf, included
# from postgresql.conf, and remembers port and socket directory.
configure() {
  local port sockdir
  port=$(current_port)
  sockdir=$(choose_socketdir)
  ensure_socketdir "$sockdir"
  as_owner tee "$data/spark.conf" >/dev/null <<CONF
# Written by scripts/pg.sh; rewritten on every init/start.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
CONF
  if ! grep -q "^include_if_exists = 'spark.conf'" "$data/postgresql.conf"; then
    printf "\n# Private cluster settings (scripts/pg.sh)\ninclude_if_exists = 'spark.conf'\n" |
      as_owner tee -a "$data/postgresql.conf" >/dev/null
  fi
  write_file port "$port"
  write_file socketdir "$sockdir"
}

# Refuses to change the port of a running server.
check_running_port() {
  local running_port
  running_port=$(read_file port 2>/dev/null) || return 0
  if [[ -n $port_arg && $port_arg != "$running_port" ]]; then
    die "PostgreSQL in $dir is running on port $running_port; stop it before changing the port to $port_arg"
  fi
}

do_init() {
  prepare_dir
  if is_running; then
    check_running_port
    return
  fi
  if [[ ! -f $data/PG_VERSION ]]; then
    local -a locale_opt=(--no-locale)
    if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then
      locale_opt=(--locale=C.UTF-8)
    fi
    local out
    if ! out=$(as_owner "$bindir/initdb" -D "$data" -A trust -U postgres -E UTF8 \
      "${locale_opt[@]}" --no-instructions --no-sync 2>&1); then
      printf '%s\n' "$out" >&2
      die "initdb failed for $data"
    fi
  fi
  configure
}

psql_cmd() {
  local sockdir port
  sockdir=$(read_file socketdir) || die "no cluster in $dir (run: $prog init $dir)"
  port=$(read_file port) || die "no cluster in $dir (run: $prog init $dir)"
  as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"
}

ensure_database() {
  local exists
  exists=$(psql_cmd -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db_name'")
  if [[ $exists != 1 ]]; then
    psql_cmd -d postgres -c "CREATE DATABASE $db_name" >/dev/null
  fi
}

do_start() {
  do_init
  if ! is_running; then
    local out
    if ! out=$(as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/log" -w -t 60 -s start 2>&1); then
      [[ -z $out ]] || printf '%s\n' "$out" >&2
      echo "$prog: PostgreSQL failed to start; the end of $dir/log:" >&2
      tail -n 20 -- "$dir/log" >&2 || true
      exit 1
    fi
  fi
  ensure_database
  echo "PostgreSQL $(cat "$data/PG_VERSION") running: data $data, port $(read_file port), socket $(read_file socketdir)"
}

do_status() {
  if is_running; then
    echo "running: data $data, port $(read_file port), socket $(read_file socketdir)"
  else
    echo "not running: $data"
    exit 3
  fi
}

do_stop() {
  if is_running; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 -s stop >/dev/null
  fi
}

# Percent-encodes a URI query value.
uri_encode() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9/._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c"; out+=$c ;;
    esac
  done
  printf '%s' "$out"
}

do_url() {
  local sockdir port
  sockdir=$(read_file socketdir) || die "no cluster in $dir (run: $prog init $dir)"
  port=$(read_file port) || die "no cluster in $dir (run: $prog init $dir)"
  printf 'postgresql:///%s?host=%s&port=%s&user=postgres\n' "$db_name" "$(uri_encode "$sockdir")" "$port"
}

do_reset() {
  is_running || die "PostgreSQL is not running in $dir (run: $prog start $dir)"
  psql_cmd -d postgres -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null
  psql_cmd -d postgres -c "CREATE DATABASE $db_name" >/dev/null
}

case $cmd in
  url) do_url ;;
  *)
    bindir=$(find_bindir)
    case $cmd in
      init) do_init ;;
      start) do_start ;;
      stop) do_stop ;;
      status) do_status ;;
      reset) do_reset ;;
    esac
    ;;
esac
