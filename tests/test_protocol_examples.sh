#!/usr/bin/env bash
# docs/PROTOCOL.md's piped nc and socat examples, run as written (only the port is the test's): each
# ends by itself within a few seconds and prints the replies it promises. Skips (77) without nc/socat.
set -euo pipefail
bin=$1
doc=$(dirname "$0")/../docs/PROTOCOL.md
command -v nc > /dev/null && command -v socat > /dev/null ||
  { echo "SKIP: nc (netcat-openbsd) or socat not installed"; exit 77; }
tmp=$(mktemp -d)
. "$(dirname "$0")/server_lib.sh"
trap 'stop_server; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
start_server "$bin" "$tmp/log" --preset tiny
port=$server_port
# The examples block; each piped example is a line starting with "(", with its "\" continuations.
sed -n '/^## Examples/,/^```$/p' "$doc" |
  awk '/^\(/ { on = 1 } on { print } on && !/\\$/ { on = 0 }' | sed "s/7070/$port/g" > "$tmp/examples"
grep -q "nc -N" "$tmp/examples" && grep -q socat "$tmp/examples" || fail "examples not found in $doc"
n=0
while IFS= read -r cmd; do
  while [[ $cmd == *\\ ]]; do IFS= read -r more; cmd=${cmd%\\}$more; done
  n=$((n + 1))
  start=$(date +%s)
  timeout 20 bash -c "$cmd" > "$tmp/out$n" || fail "example $n failed or hung: $cmd"
  [ $(($(date +%s) - start)) -le 10 ] || fail "example $n took more than 10 s: $cmd"
  case $cmd in
    *socat*) grep -q '"event":"health","status":"ok"' "$tmp/out$n" || fail "socat example: $(cat "$tmp/out$n")" ;;
    *) [ "$(grep -c '"event":"done"' "$tmp/out$n")" -eq 2 ] || fail "nc example: $(cat "$tmp/out$n")" ;;
  esac
done < "$tmp/examples"
[ "$n" -eq 2 ] || fail "expected 2 piped examples, ran $n"
echo "ok: $n PROTOCOL.md examples ran as written"
