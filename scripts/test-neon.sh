#!/usr/bin/env bash
# Cross-compiles the kernel test for aarch64 and runs it under qemu, so the NEON table is checked
# against the scalar reference on an x86 machine. A missing cross compiler, C library or qemu is a
# failure, not a skip: the NEON table would go untested. `bash scripts/deps.sh --test` installs them.
# Usage: scripts/test-neon.sh [build-dir]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU_AARCH64:-qemu-aarch64}
for tool in "$cc" "$qemu"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: $tool not found (bash scripts/deps.sh --test installs it)"
        exit 1
    fi
done
if ! echo '#include <stdio.h>' | "$cc" -E -x c - >/dev/null 2>&1; then
    echo "FAIL: $cc has no C library headers (install libc6-dev-arm64-cross: bash scripts/deps.sh --test)"
    exit 1
fi

out=${1:-$(mktemp -d)}
mkdir -p "$out"
# The same language and warning flags as the CMake build; static, so qemu needs no sysroot. The
# x86 kernel files must compile to NULL getters here.
"$cc" -std=c11 -D_GNU_SOURCE -O2 -static -ffp-contract=off -DLANES_NO_OPENBLAS \
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror \
    -I"$root/engine" -I"$root/tests" \
    "$root/tests/test_eng_kern.c" \
    "$root"/engine/kern/{kern,scalar,quant,neon,sse,avx2}.c "$root/engine/base/lanes_log.c" \
    -lm -o "$out/test_eng_kern_neon"
"$cc" -std=c11 -D_GNU_SOURCE -O2 -static -ffp-contract=off \
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror \
    -I"$root/engine" -I"$root/tests" \
    "$root/tests/test_eng_kern_q.c" \
    "$root"/engine/kern/{kern,scalar,quant,neon,sse,avx2}.c "$root/engine/base/lanes_log.c" \
    -lm -o "$out/test_eng_kern_q_neon"

for t in test_eng_kern_neon test_eng_kern_q_neon; do
    log="$out/$t.log"
    "$qemu" "$out/$t" | tee "$log"
    grep -qx 'neon: ok' "$log" || { echo "FAIL: the neon table did not run ($t)"; exit 1; }
done
