#!/usr/bin/env bash
# Every document the repository cites exists: each relative Markdown link
# in README.md and docs/*.md, and each docs/NAME.md (or bare NAME.md) that
# a source file, script or document names in its text. A citation of a
# document that is not in the repository fails the test, naming it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
missing=0
# Markdown links: ](target) with no scheme, the #fragment dropped.
while IFS=: read -r file target; do
  path=${target%%#*}
  [[ -z $path ]] && continue
  base=$(dirname "$file")
  if [[ ! -e $base/$path && ! -e $path ]]; then
    echo "doc_links: $file links to $target, which does not exist" >&2
    missing=1
  fi
done < <(grep -oE '\]\([^) :]+\)' README.md docs/*.md /dev/null | sed -E 's/\]\((.*)\)$/\1/' |
  grep -v '^[a-z]*:' || true)
# Names of documents in text: docs/NAME.md, or NAME.md alone.
while IFS=: read -r file name; do
  if [[ ! -e docs/$(basename "$name") && ! -e $name ]]; then
    echo "doc_links: $file cites $name, which does not exist" >&2
    missing=1
  fi
done < <(grep -rhoE --include='*.c' --include='*.h' --include='*.js' --include='*.sh' \
  --include='*.md' --include='*.sql' --include='*.txt' --exclude-dir=node_modules \
  -e '(docs/)?[a-z][a-z0-9_-]*\.md' --with-filename \
  README.md docs service apps web tests scripts bench sql migrations CMakeLists.txt |
  grep -vE ':README\.md$' | sort -u || true)
exit $missing
