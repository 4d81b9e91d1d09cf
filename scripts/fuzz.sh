#!/usr/bin/env bash
# Builds the request-line parser fuzzer with clang (libFuzzer + ASan + UBSan) and runs it briefly.
# Usage: scripts/fuzz.sh [seconds, default 20]. Exits 77 (skip) when clang is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
if ! command -v clang >/dev/null; then echo "fuzz: clang not found, skipping" >&2; exit 77; fi
out=build-fuzz
mkdir -p "$out/corpus"
clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iengine -Iio \
  io/fuzz_io_proto.c io/proto.c engine/base/lanes_err.c engine/base/lanes_utf8.c $(pkg-config --cflags --libs libcjson) -lm \
  -o "$out/fuzz_io_proto"
# Seeds: one line of each kind the protocol knows.
printf '%s' '{"id":"a1","prompt":"Once upon a time","max_tokens":64,"temperature":0,"top_k":0,"top_p":1,"seed":7}' > "$out/corpus/gen"
printf '%s' '{"op":"cancel","id":"a1"}' > "$out/corpus/cancel"
printf '%s' '{"op":"stats","id":3}' > "$out/corpus/stats"
printf '%s' 'hello there' > "$out/corpus/plain"
"$out/fuzz_io_proto" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 "$out/corpus" 2>&1 | tail -n 12
