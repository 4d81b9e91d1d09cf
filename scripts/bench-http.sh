#!/usr/bin/env bash
# The HTTP front's cost against the line protocol: one lanes-server, lanes-loadgen at STREAMS
# concurrent streams alternating --api lanes and --api openai for ROUNDS interleaved rounds (the host
# is shared: compare within a round), fixed output lengths, greedy on both (OpenAI's default
# temperature is 1, the line protocol's 0: sampling would cost engine time, not I/O). Prints each
# run's aggregate tok/s and the I/O thread's CPU (the server's main thread runs the libuv loop) as %
# of one core over the run.
# Environment: MODEL (default: the built-in 15m), STREAMS (128), REQUESTS (2), OUTPUT_LEN (128),
# ROUNDS (3). Needs a Release build in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${STREAMS:-128} requests=${REQUESTS:-2} olen=${OUTPUT_LEN:-128} rounds=${ROUNDS:-3}
tmp=$(mktemp -d)
model_args=()
if [ -n "${MODEL:-}" ]; then model_args=(-m "$MODEL"); fi
build/lanes-server "${model_args[@]}" --port 0 --lanes 128 2> "$tmp/server.log" &
server=$!
trap 'kill "$server" 2> /dev/null || true; rm -rf "$tmp"' EXIT
port=
for _ in $(seq 1 600); do
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$tmp/server.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/server.log" >&2; exit 1; }
tick=$(getconf CLK_TCK)
io_ticks() { awk '{print $14 + $15}' "/proc/$server/task/$server/stat"; }   # utime + stime
printf '%-6s %-7s %10s %10s %8s\n' round api tok/s wall_s io_cpu%
for r in $(seq "$rounds"); do
  for api in lanes openai; do
    t0=$(io_ticks) w0=$(date +%s.%N)
    build/lanes-loadgen --port "$port" --api "$api" --streams "$streams" --requests "$requests" \
      --output-len "$olen" --temperature 0 --json "$tmp/$api.json" --no-progress --quiet > /dev/null
    t1=$(io_ticks) w1=$(date +%s.%N)
    tok_s=$(grep -o '"tok_s": [0-9.e+]*' "$tmp/$api.json" | head -1 | awk '{print $2}')
    awk -v r="$r" -v a="$api" -v t="$tok_s" -v w0="$w0" -v w1="$w1" -v c0="$t0" -v c1="$t1" -v hz="$tick" \
      'BEGIN { printf "%-6s %-7s %10.1f %10.2f %8.2f\n", r, a, t, w1 - w0, 100 * (c1 - c0) / hz / (w1 - w0) }'
  done
done
