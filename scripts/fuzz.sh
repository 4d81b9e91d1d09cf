#!/usr/bin/env bash
# Builds the request-line parser fuzzer with clang (libFuzzer + ASan + UBSan) and runs it briefly,
# starting from the committed corpus (tests/corpus/io_proto, which ctest also replays).
# Usage: scripts/fuzz.sh [seconds, default 20]. Exits 77 (skip) when clang is missing.
# Everything it writes stays under build-fuzz/: the working corpus (a copy of the seeds plus what
# the fuzzer finds) and crash-*/leak-*/timeout-* artifacts. Commit a crash by adding it to the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
if ! command -v clang >/dev/null; then echo "fuzz: clang not found, skipping" >&2; exit 77; fi
out=build-fuzz
mkdir -p "$out/corpus" "$out/artifacts"
clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Iengine -Iio io/fuzz_io_proto.c io/proto.c engine/base/lanes_err.c engine/base/lanes_utf8.c \
  $(pkg-config --cflags --libs libcjson) -lm -o "$out/fuzz_io_proto"
cp tests/corpus/io_proto/* "$out/corpus/"
rc=0
"$out/fuzz_io_proto" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" >"$out/fuzz.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$out/fuzz.log" >&2
  echo "fuzz: failed (exit $rc); inputs in $out/artifacts/" >&2
  exit "$rc"
fi
tail -n 12 "$out/fuzz.log"
