#!/usr/bin/env bash
# Installs the browser tests' node dependencies (playwright-core only, from
# package-lock.json) into tests/e2e/node_modules when they are missing.
# Never a browser download: the tests drive the system's Chromium.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [[ ! -f $here/node_modules/playwright-core/package.json ]]; then
  echo "deps.sh: installing node dependencies into tests/e2e/node_modules"
  cd "$here"
  npm ci --no-audit --no-fund || npm install --no-audit --no-fund
fi
