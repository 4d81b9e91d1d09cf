#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole ctest suite: a Release build, a short libFuzzer
# run of the request parser, then the suite again under ASan+UBSan. Exits non-zero on the first
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
# The request-line parser under libFuzzer for a few seconds (skipped without clang).
rc=0; bash scripts/fuzz.sh "${LANES_FUZZ_SECONDS:-20}" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLANES_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
   ctest --output-on-failure -j"$jobs" -LE no-asan)
