#!/usr/bin/env bash
# Installs dependencies (the test set too), builds, and runs the whole ctest suite: a Release
# build, a short libFuzzer run of the request parser, the suite again under ASan+UBSan, and the
# tests with threads (label tsan) under ThreadSanitizer. Exits non-zero on the first failure; a
# test that cannot run here (no clang, no cross compiler) is a failure too, since deps.sh --test
# installs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
# The request-line parser and the GGUF reader under libFuzzer for a few seconds.
bash scripts/fuzz.sh "${LANES_FUZZ_SECONDS:-20}"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLANES_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
   ctest --output-on-failure -j"$jobs" -LE no-asan)
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DLANES_SANITIZE=thread >/dev/null
cmake --build build-tsan -j"$jobs"
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
   ctest --output-on-failure -j"$jobs" -L tsan)
