#!/usr/bin/env bash
# Builds the three libFuzzer targets with clang (libFuzzer + ASan + UBSan) and runs each briefly:
# the request-line parser and the OpenAI body parser from their committed corpora
# (tests/corpus/io_proto and tests/corpus/io_oai, which ctest also replays), and the GGUF reader
# from a few small real model files in ../shared (skipped without them, the parsers then share
# all the time).
# Usage: scripts/fuzz.sh [seconds for all, default 20]. Exits 77 (skip) when clang is missing.
# Everything it writes stays under build-fuzz/: the working corpora (a copy of the seeds plus what
# the fuzzers find) and crash-*/leak-*/timeout-* artifacts. Commit a crash by adding it to the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
if ! command -v clang >/dev/null; then echo "fuzz: clang not found, skipping" >&2; exit 77; fi
out=build-fuzz
gguf_dir=${LANES_SHARED:-../shared}/models/gguf
gguf_seeds="stories260K.q8_0.gguf aidreams260K.q8_0.gguf stories260K.f16.gguf"
mkdir -p "$out/corpus" "$out/corpus-oai" "$out/corpus-gguf" "$out/artifacts"
cflags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
clang $cflags -Iengine -Iio io/fuzz_io_proto.c io/proto.c engine/base/lanes_err.c \
  engine/base/lanes_utf8.c $(pkg-config --cflags --libs libcjson) -lm -o "$out/fuzz_io_proto"
clang $cflags -Iengine -Iio io/fuzz_io_oai.c io/oai.c io/chat.c io/proto.c engine/base/lanes_err.c \
  engine/base/lanes_utf8.c $(pkg-config --cflags --libs libcjson) -lm -o "$out/fuzz_io_oai"
parts=2
if [ -f "$gguf_dir/stories260K.q8_0.gguf" ]; then
  clang $cflags -Iengine engine/model/fuzz_gguf.c engine/model/gguf.c engine/base/lanes_file.c \
    engine/base/lanes_log.c engine/base/lanes_err.c -o "$out/fuzz_gguf"
  for f in $gguf_seeds; do cp "$gguf_dir/$f" "$out/corpus-gguf/"; done
  parts=3
else
  echo "fuzz: $gguf_dir not found, fuzzing only the request parsers" >&2
fi
proto_secs=$(( (secs + parts - 1) / parts ))
oai_secs=$proto_secs
cp tests/corpus/io_proto/* "$out/corpus/"
cp tests/corpus/io_oai/* "$out/corpus-oai/"

# run NAME SECONDS MAX_LEN CORPUS
run() {
  local rc=0
  "$out/$1" -max_total_time="$2" -max_len="$3" -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/" "$4" >"$out/$1.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$out/$1.log" >&2
    echo "fuzz: $1 failed (exit $rc); inputs in $out/artifacts/" >&2
    exit "$rc"
  fi
  tail -n 12 "$out/$1.log"
}
run fuzz_io_proto "$proto_secs" 4096 "$out/corpus"
run fuzz_io_oai "$oai_secs" 4096 "$out/corpus-oai"
if [ -x "$out/fuzz_gguf" ] && [ "$secs" -gt $(( proto_secs + oai_secs )) ]; then
  run fuzz_gguf $(( secs - proto_secs - oai_secs )) 1048576 "$out/corpus-gguf"
fi
