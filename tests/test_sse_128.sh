#!/usr/bin/env bash
# 128 concurrent SSE streams against lanes-run's outputs, and a mid-stream close (tests/openai/sse_128.mjs).
set -euo pipefail
bin=$1
command -v node > /dev/null || { echo "SKIP: node not installed"; exit 77; }
src=$(cd "$(dirname "$0")/openai" && pwd)
tmp=$(mktemp -d)
. "$(dirname "$0")/server_lib.sh"
trap 'stop_server; rm -rf "$tmp"' EXIT
n=48
for i in $(seq 0 15); do echo "Story $i: once upon a time, in a land far away, number $((i * 7))"; done > "$tmp/prompts"
"$bin/lanes-run" --preset 15m --prompts "$tmp/prompts" -n $n --ignore-eos --json 2> /dev/null > "$tmp/ref.jsonl"
start_server "$bin" "$tmp/log" --preset 15m --lanes 128
node "$src/sse_128.mjs" "$server_port" "$tmp/prompts" "$tmp/ref.jsonl" $n
