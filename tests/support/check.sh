# check.sh - the assertion of the shell tests: sourced, it defines
# `check NAME WANT GOT`, which passes when GOT contains WANT and otherwise
# prints both and counts the failure in $failures, so that a test reports
# every failed check before it exits non-zero.
failures=0
check() {
  local name=$1 want=$2 got=$3
  if [[ $got == *"$want"* ]]; then
    echo "ok: $name"
  else
    echo "FAILED: $name: wanted '$want' in:" >&2
    echo "$got" >&2
    failures=$((failures + 1))
  fi
}
