#!/usr/bin/env bash
# Installs what lanes needs on Debian 12 (run as root). Idempotent: skips apt entirely when every
# package is already there. With --no-install-recommends apt installs only what is named or
# depended on, so every package the build and the tests use is named here.
#   scripts/deps.sh          build and the main job: compiler, CMake, libraries, gnuplot
#   scripts/deps.sh --test   also what only the test suite uses: clang with its libFuzzer runtime
#                            (scripts/fuzz.sh), the aarch64 cross compiler with its C library and
#                            qemu-user (NEON kernels under qemu-aarch64, older x86 CPUs under
#                            qemu-x86_64), curl, jq, socat and nc for the HTTP and protocol tests,
#                            prometheus (promtool and a real scrape) and node with npm (the openai
#                            client test); the sanitizer runtimes come with gcc
#   scripts/deps.sh --perf   also perf and python3 for scripts/perf-latency.sh
set -euo pipefail
pkgs=(build-essential cmake pkg-config libuv1-dev libopenblas-dev libcjson-dev liburcu-dev
      libpcre2-dev libhttp-parser-dev systemtap-sdt-dev gnuplot-nox)
for arg in "$@"; do
  case $arg in
    --test)
      pkgs+=(curl jq socat netcat-openbsd prometheus clang libclang-rt-14-dev gcc-aarch64-linux-gnu
             libc6-dev-arm64-cross qemu-user)
      # node and npm for the openai client test: Debian's, unless a node (with its npm) is there
      command -v node > /dev/null || pkgs+=(nodejs)
      command -v npm > /dev/null || pkgs+=(npm) ;;
    --perf) pkgs+=(linux-perf python3) ;;
    *) echo "usage: scripts/deps.sh [--test] [--perf]" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
