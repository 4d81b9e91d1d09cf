#!/usr/bin/env bash
# The official openai npm client (pinned in tests/openai/package-lock.json) against lanes-server's HTTP
# front. Installs the client into the build tree with `npm ci`; skips visibly (exit 77) when node or npm
# is missing or the npm registry is unreachable.
set -euo pipefail
bin=$1
src=$(cd "$(dirname "$0")/openai" && pwd)
dir=$bin/openai-client
command -v node > /dev/null && command -v npm > /dev/null || { echo "SKIP: node/npm not installed"; exit 77; }
mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$src/client_test.mjs" "$dir/"
if [ ! -f "$dir/node_modules/openai/package.json" ] ||
   ! cmp -s "$src/package-lock.json" "$dir/.installed-lock"; then
  if ! (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error); then
    echo "SKIP: npm ci failed (registry unreachable?)"; exit 77
  fi
  cp "$src/package-lock.json" "$dir/.installed-lock"
fi
log=$(mktemp)
. "$(dirname "$0")/server_lib.sh"
trap 'stop_server; rm -f "$log"' EXIT
start_server "$bin" "$log" --preset tiny --chat-template chatml
node "$dir/client_test.mjs" "$server_port"
