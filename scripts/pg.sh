#!/usr/bin/env bash
# Manages a private PostgreSQL cluster kept in one directory.
#
#   scripts/pg.sh init|start|stop|status|reset DIR [PORT]
#   scripts/pg.sh url DIR [tcp|tls|socket|nopass]
#   scripts/pg.sh password DIR
#
#   init      create the cluster in DIR/data if it does not exist yet, with
#             its password and TLS certificates
#   start     init if needed, start the server, create the database "spark"
#             (a running server whose settings are out of date, e.g. one
#             made by an older version of this script, is restarted)
#   stop      stop the server (fast shutdown); nothing to do if it is not running
#   status    exit 0 if the server is running, 3 if not
#   url       print a libpq URI of the "spark" database:
#               tcp (default)  postgresql://postgres:PASSWORD@127.0.0.1:PORT/spark
#               tls            postgresql://postgres:PASSWORD@localhost:PORT/spark
#                              ?sslmode=verify-full&sslrootcert=DIR/ca.crt
#               socket         over the unix socket (no password needed)
#               nopass         the tcp URI without the password (for PGPASSWORD
#                              or PGPASSFILE)
#   password  print the password of the "postgres" role
#   reset     drop and re-create the "spark" database (the server must run)
#
# The server listens on 127.0.0.1, on ::1 when the machine has an IPv6
# loopback, and on its unix socket, as users reach PostgreSQL: TCP needs the
# password (scram-sha-256) and offers TLS; the unix socket, where the scripts'
# own psql connects, trusts its local users (the socket directory is private).
# It is meant for development and tests only.
#
# Files in DIR: data/ (the cluster), port (PORT, default 54329, remembered),
# socketdir (DIR/run, or a short directory under /tmp when DIR/run is too
# long for a socket path), password (random, made at init, mode 600), ca.crt
# and ca.key (a self-signed CA made at init) and server.crt and server.key
# (the server's certificate for localhost, 127.0.0.1 and ::1, signed by that
# CA). A missing or expiring password or certificate is made again at start,
# which also brings a cluster made before they existed up to date.
#
# PostgreSQL refuses to run as root: when run as root, every server command
# runs as the "postgres" user, which must own DIR (and owns its files).
set -euo pipefail

readonly default_port=54329
readonly db_name=spark

prog=${0##*/}

die() {
  echo "$prog: $*" >&2
  exit 1
}

usage() {
  echo "usage: $prog init|start|stop|status|reset DIR [PORT]" >&2
  echo "       $prog url DIR [tcp|tls|socket|nopass]" >&2
  echo "       $prog password DIR" >&2
  exit 2
}

(($# >= 2 && $# <= 3)) || usage
cmd=$1
port_arg=""
url_form=tcp
case $cmd in
  init | start | stop | status | reset) port_arg=${3:-} ;;
  url) url_form=${3:-tcp} ;;
  password) (($# == 2)) || usage ;;
  *) usage ;;
esac
[[ -n $2 ]] || usage
if [[ -n $port_arg ]] && ! [[ $port_arg =~ ^[0-9]{1,5}$ && $port_arg -ge 1 && $port_arg -le 65535 ]]; then
  echo "$prog: PORT must be a number from 1 to 65535, got '$port_arg'" >&2
  exit 2
fi
case $url_form in
  tcp | tls | socket | nopass) ;;
  *)
    echo "$prog: the form of url must be tcp, tls, socket or nopass, got '$url_form'" >&2
    exit 2
    ;;
esac

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

# Writes a small file in DIR, owned like DIR and readable by that owner only.
write_file() {
  local tmp=$dir/.$1.tmp
  (umask 077 && printf '%s\n' "$2" >"$tmp")
  if $as_root; then chown postgres: -- "$tmp"; fi
  mv -f -- "$tmp" "$dir/$1"
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

has_ipv6_loopback() {
  [[ -r /proc/net/if_inet6 ]] && grep -q '^0\{31\}1 ' /proc/net/if_inet6
}

# A value quoted for postgresql.conf.
conf_quote() {
  local v=${1//\'/\'\'}
  printf "'%s'" "$v"
}

# The settings the server needs, in DIR/data/spark.conf (included from
# postgresql.conf).
spark_conf() {
  local listen=127.0.0.1
  if has_ipv6_loopback; then listen+=', ::1'; fi
  cat <<CONF
# Written by scripts/pg.sh; rewritten on every init/start.
listen_addresses = '$listen'
port = $(current_port)
unix_socket_directories = $(conf_quote "$(choose_socketdir)")
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = $(conf_quote "$dir/server.crt")
ssl_key_file = $(conf_quote "$dir/server.key")
CONF
}

# Who may connect how, in DIR/data/pg_hba.conf.
hba_conf() {
  cat <<'HBA'
# Written by scripts/pg.sh; rewritten on every init/start.
# The unix socket, in a directory only the cluster's owner may enter, trusts
# its local users (the scripts' own psql). TCP needs the password, over TLS
# or not ("host" matches both).
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
HBA
}

need_openssl() {
  command -v openssl >/dev/null 2>&1 || die "openssl not found; run scripts/setup.sh"
}

# The password of the "postgres" role: random, made once.
ensure_password() {
  [[ -s $dir/password ]] && return
  local pw
  pw=$(openssl rand -hex 16) || die "openssl rand failed"
  write_file password "$pw"
}

# Runs openssl as the owner of DIR; shows its output only when it fails.
owner_openssl() {
  local out
  if ! out=$(as_owner openssl "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die "openssl $1 failed"
  fi
}

# True when DIR/NAME.crt is valid for at least a day more and DIR/NAME.key
# is its key.
cert_current() {
  local crt=$dir/$1.crt key=$dir/$1.key
  [[ -s $crt && -s $key ]] &&
    openssl x509 -noout -checkend 86400 -in "$crt" >/dev/null 2>&1 &&
    [[ $(openssl x509 -noout -pubkey -in "$crt" 2>/dev/null) == \
      "$(openssl pkey -pubout -in "$key" 2>/dev/null)" ]]
}

tls_current() {
  cert_current ca && cert_current server &&
    openssl verify -CAfile "$dir/ca.crt" "$dir/server.crt" >/dev/null 2>&1
}

# A CA of this cluster's own and the server's certificate signed by it, for
# the names a client may use: localhost, 127.0.0.1 and ::1. Made when
# missing, expiring or not matching.
ensure_tls() {
  tls_current && return
  local -a key_opts=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc)
  if ! cert_current ca; then
    rm -f -- "$dir/ca.crt" "$dir/ca.key"
    owner_openssl req -x509 -new "${key_opts[@]}" -days 3650 \
      -subj "/O=Spark private PostgreSQL/CN=CA $(openssl rand -hex 4)" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$dir/ca.key" -out "$dir/ca.crt"
  fi
  rm -f -- "$dir/server.crt" "$dir/server.key"
  owner_openssl req -x509 -new "${key_opts[@]}" -days 825 \
    -subj "/CN=localhost" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$dir/server.key" -out "$dir/server.crt"
  # PostgreSQL refuses a key that others may read.
  as_owner chmod 600 -- "$dir/ca.key" "$dir/server.key"
  as_owner chmod 644 -- "$dir/ca.crt" "$dir/server.crt"
  tls_current || die "the certificates made in $dir do not verify"
}

# Writes spark.conf and pg_hba.conf, makes what is missing (password,
# certificates, socket directory) and remembers port and socket directory.
configure() {
  local sockdir
  sockdir=$(choose_socketdir)
  ensure_socketdir "$sockdir"
  ensure_password
  ensure_tls
  spark_conf | as_owner tee "$data/spark.conf" >/dev/null
  hba_conf | as_owner tee "$data/pg_hba.conf" >/dev/null
  if ! grep -q "^include_if_exists = 'spark.conf'" "$data/postgresql.conf"; then
    printf "\n# Private cluster settings (scripts/pg.sh)\ninclude_if_exists = 'spark.conf'\n" |
      as_owner tee -a "$data/postgresql.conf" >/dev/null
  fi
  write_file port "$(current_port)"
  write_file socketdir "$sockdir"
}

# True when configure would change nothing.
settings_current() {
  [[ -s $dir/password ]] && tls_current &&
    [[ $(spark_conf) == "$(cat -- "$data/spark.conf" 2>/dev/null)" ]] &&
    [[ $(hba_conf) == "$(cat -- "$data/pg_hba.conf" 2>/dev/null)" ]] &&
    grep -q "^include_if_exists = 'spark.conf'" "$data/postgresql.conf"
}

# Refuses to change the port of a running server.
check_running_port() {
  local running_port
  running_port=$(read_file port 2>/dev/null) || return 0
  if [[ -n $port_arg && $port_arg != "$running_port" ]]; then
    die "PostgreSQL in $dir is running on port $running_port; stop it before changing the port to $port_arg"
  fi
}

# A running server is left as it is (start brings its settings up to date).
do_init() {
  need_openssl
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
    ensure_password
    local out
    if ! out=$(as_owner "$bindir/initdb" -D "$data" -U postgres --pwfile="$dir/password" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
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

# Gives the "postgres" role the password of DIR/password (a cluster made
# before it existed has none) and creates the database. The password goes
# through stdin, never a command line.
ensure_role_and_database() {
  local pw
  pw=$(read_file password) || die "no password in $dir"
  pw=${pw//\'/\'\'}
  psql_cmd -d postgres >/dev/null <<SQL
ALTER ROLE postgres PASSWORD '$pw';
SELECT 'CREATE DATABASE $db_name'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db_name')\gexec
SQL
}

do_start() {
  need_openssl
  prepare_dir
  if is_running; then
    check_running_port
    if ! settings_current; then
      echo "$prog: restarting PostgreSQL in $dir to bring its settings up to date" >&2
      do_stop
    fi
  fi
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
  ensure_role_and_database
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

# Percent-encodes a URI component; "/" is kept when $2 is "path".
uri_encode() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~-]) out+=$c ;;
      /) if [[ ${2:-} == path ]]; then out+=$c; else out+=%2F; fi ;;
      *)
        printf -v c '%%%02X' "'$c"
        out+=$c
        ;;
    esac
  done
  printf '%s' "$out"
}

no_cluster() {
  die "no cluster in $dir (run: $prog start $dir)"
}

password_of() {
  local pw
  pw=$(read_file password) || die "no password in $dir (run: $prog start $dir)"
  printf '%s\n' "$pw"
}

do_url() {
  local sockdir port pw
  sockdir=$(read_file socketdir) || no_cluster
  port=$(read_file port) || no_cluster
  case $url_form in
    socket)
      printf 'postgresql:///%s?host=%s&port=%s&user=postgres\n' "$db_name" \
        "$(uri_encode "$sockdir" path)" "$port"
      ;;
    nopass) printf 'postgresql://postgres@127.0.0.1:%s/%s\n' "$port" "$db_name" ;;
    tcp)
      pw=$(password_of)
      printf 'postgresql://postgres:%s@127.0.0.1:%s/%s\n' "$(uri_encode "$pw")" "$port" "$db_name"
      ;;
    tls)
      pw=$(password_of)
      [[ -s $dir/ca.crt ]] || die "no certificate in $dir (run: $prog start $dir)"
      printf 'postgresql://postgres:%s@localhost:%s/%s?sslmode=verify-full&sslrootcert=%s\n' \
        "$(uri_encode "$pw")" "$port" "$db_name" "$(uri_encode "$dir/ca.crt" path)"
      ;;
  esac
}

do_reset() {
  is_running || die "PostgreSQL is not running in $dir (run: $prog start $dir)"
  psql_cmd -d postgres -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null
  psql_cmd -d postgres -c "CREATE DATABASE $db_name" >/dev/null
}

case $cmd in
  url) do_url ;;
  password) password_of ;;
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
