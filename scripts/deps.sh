#!/usr/bin/env bash
# Installs what lanes needs to build, test and plot on Debian 12 (run as root). Idempotent: skips
# apt entirely when every package is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libuv1-dev libopenblas-dev libcjson-dev liburcu-dev
      systemtap-sdt-dev gnuplot-nox clang libclang-rt-14-dev gcc-aarch64-linux-gnu qemu-user
      linux-perf python3)
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
