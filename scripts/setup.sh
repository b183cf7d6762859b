#!/usr/bin/env bash
# Installs the Debian 12 packages Spark needs to build, test and run its demo.
# Fast and silent when everything is already installed; idempotent.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libpq-dev libwebsockets-dev libjson-c-dev libsodium-dev check
  postgresql postgresql-contrib
  docker-compose chromium nodejs npm
  curl ca-certificates openssl valgrind clang clang-format cppcheck
)

# One dpkg-query call reports the status of every package it knows.
declare -A status=()
while IFS=$'\t' read -r name state; do
  status[$name]=$state
done < <(dpkg-query -W -f='${Package}\t${Status}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for pkg in "${packages[@]}"; do
  case $pkg in
    # Node.js may come from elsewhere (NodeSource, nvm, a tarball); any
    # node/npm on PATH will do, and installing Debian's would conflict.
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  [[ ${status[$pkg]:-} == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get/dpkg not found; this script targets Debian 12." >&2
  echo "setup: install these packages (or their equivalents): ${missing[*]}" >&2
  exit 1
fi

sudo_cmd=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "setup: not root and sudo is not available; as root, run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

echo "setup: installing ${missing[*]}" >&2
apt_env=(env DEBIAN_FRONTEND=noninteractive)
"${sudo_cmd[@]}" "${apt_env[@]}" apt-get update -q
"${sudo_cmd[@]}" "${apt_env[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
