#!/usr/bin/env bash
# Cross-compiles the kernel tests for aarch64 and runs them under qemu, so the NEON tables ("neon",
# and "neon-dot" on the dot-product extension) are checked against the scalar reference on an x86
# machine. A missing cross compiler, C library or qemu is a
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

# qemu's default CPU ("max") has the dot-product extension, so both NEON tables run there; a core
# without it (Cortex-A53) must get "neon" alone from the run-time check, and still pass.
run() { # cpu test table...: runs test under qemu -cpu cpu; each table must have said "ok"
    local cpu=$1 t=$2 log="$out/$2.$1.log"
    shift 2
    "$qemu" -cpu "$cpu" "$out/$t" | tee "$log"
    for table in "$@"; do
        grep -qx "$table: ok" "$log" ||
            { echo "FAIL: the $table table did not run ($t, $cpu)"; exit 1; }
    done
}
for t in test_eng_kern_neon test_eng_kern_q_neon; do
    run max "$t" neon neon-dot
done
run cortex-a53 test_eng_kern_q_neon neon
grep -qx 'neon-dot: not available here' "$out/test_eng_kern_q_neon.cortex-a53.log" ||
    { echo "FAIL: neon-dot offered on a CPU without dotprod"; exit 1; }
