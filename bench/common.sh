# shellcheck shell=bash
# Helpers shared by bench/run.sh and bench/notify_scale.sh (sourced).

# The same server, another database: libpq takes the last dbname given.
with_db() {
  local url=$1 db=$2
  if [[ $url == postgres://* || $url == postgresql://* ]]; then
    if [[ $url == *\?* ]]; then echo "$url&dbname=$db"; else echo "$url?dbname=$db"; fi
  else
    echo "$url dbname=$db"
  fi
}

# Drops the benchmark's database (FORCE: a consumer may still be attached).
drop_db() {
  local admin_url=$1 db=$2
  psql -q "$admin_url" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
    echo "bench: could not drop database $db" >&2
}
