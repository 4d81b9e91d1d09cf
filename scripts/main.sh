#!/usr/bin/env bash
# The main job: installs dependencies, builds, starts lanes-server on the built-in synthetic model,
# runs a lanes-loadgen sweep over 1..128 concurrent streams, prints the results table, writes
# out/sweep.json, out/sweep.csv and out/sweep.png, and stops the server.
# Environment: MODEL (a .gguf file, or a llama2.c checkpoint with TOKENIZER), STREAMS, REQUESTS,
# MAX_TOKENS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
mkdir -p out

model_args=()
if [ -n "${MODEL:-}" ]; then model_args=(-m "$MODEL"); fi
if [ -n "${TOKENIZER:-}" ]; then model_args+=(-z "$TOKENIZER"); fi
build/lanes-server "${model_args[@]}" --port 0 --lanes 128 2> out/server.log &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT

port=
for _ in $(seq 1 600); do   # the synthetic model is built in memory at start: a second or two
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' out/server.log | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || { cat out/server.log >&2; echo "main: server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { cat out/server.log >&2; echo "main: server did not start" >&2; exit 1; }

build/lanes-loadgen --port "$port" --streams "${STREAMS:-1,2,4,8,16,32,64,128}" \
  --requests "${REQUESTS:-2}" --max-tokens "${MAX_TOKENS:-128}" \
  --json out/sweep.json --csv out/sweep.csv --plot out/sweep.png
kill -TERM "$server"
wait "$server"
trap - EXIT
echo "main: results in out/sweep.json, out/sweep.csv, out/sweep.png; server log in out/server.log"
