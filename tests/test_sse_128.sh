#!/usr/bin/env bash
# 128 concurrent SSE streams against lanes-run's outputs, and a mid-stream close (tests/openai/sse_128.mjs).
set -euo pipefail
bin=$1
command -v node > /dev/null || { echo "SKIP: node not installed"; exit 77; }
src=$(cd "$(dirname "$0")/openai" && pwd)
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2> /dev/null; wait 2> /dev/null; rm -rf "$tmp"' EXIT
n=48
for i in $(seq 0 15); do echo "Story $i: once upon a time, in a land far away, number $((i * 7))"; done > "$tmp/prompts"
"$bin/lanes-run" --preset 15m --prompts "$tmp/prompts" -n $n --ignore-eos --json 2> /dev/null > "$tmp/ref.jsonl"
"$bin/lanes-server" --preset 15m --port 0 --lanes 128 2> "$tmp/log" &
pid=$!
port=
for _ in $(seq 300); do
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/log"; echo "FAIL: server did not listen"; exit 1; }
node "$src/sse_128.mjs" "$port" "$tmp/prompts" "$tmp/ref.jsonl" $n
