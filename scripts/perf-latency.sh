#!/usr/bin/env bash
# Per-stream latency from the server's USDT probes (provider "lanes").
#   scripts/perf-latency.sh [-b BUILD_DIR] [-n STREAMS] [-t TOKENS] [-r ROUNDS] [-o OUT_DIR] [-- SERVER ARGS...]
# Registers the sdt_lanes:* probes with perf, runs lanes-server under `perf record -e 'sdt_lanes:*'`,
# drives it with lanes-loadgen (STREAMS concurrent streams, ROUNDS requests each, TOKENS max tokens;
# its own table is printed too), stops it with SIGTERM, then turns
# `perf script` into a per-stream table: TTFT (the server reads the request line -> first token; request_admit's third argument
# gives the wait before the engine took it) and inter-token
# latency (gaps between token_emit probes). Needs root or perf_event_paranoid <= 1 and tracefs.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build streams=32 tokens=64 rounds=1 out=out/perf-latency
while getopts "b:n:t:r:o:" o; do
  case $o in b) build=$OPTARG ;; n) streams=$OPTARG ;; t) tokens=$OPTARG ;; r) rounds=$OPTARG ;; o) out=$OPTARG ;;
    *) sed -n 2,7p "$0"; exit 2 ;; esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
bin=$(realpath "$build/lanes-server")
mkdir -p "$out"

# perf needs the probes registered (once per binary build): buildid-cache, then probe --add.
perf probe -q -d 'sdt_lanes:*' 2>/dev/null || true
perf buildid-cache --add "$bin"
perf probe -q -x "$bin" --add 'sdt_lanes:*'
trap 'perf probe -q -d "sdt_lanes:*" 2>/dev/null || true' EXIT

perf record -q -e 'sdt_lanes:*' -o "$out/perf.data" -- "$bin" --port 0 "$@" 2>"$out/server.log" &
perf_pid=$!
port=
for _ in $(seq 300); do
  port=$(grep -o 'listening on [^ ]*' "$out/server.log" | sed 's/.*://' || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "server did not start; see $out/server.log" >&2; exit 1; }

# The load comes from lanes-loadgen, so its client-side TTFT/ITL percentiles (loadgen.json and the
# table below) and the probes' server-side ones describe the same requests.
"$build/lanes-loadgen" --port "$port" --streams "$streams" --requests "$rounds" \
  --max-tokens "$tokens" --json "$out/loadgen.json" --no-progress
kill -TERM "$(pgrep -P "$perf_pid" -f lanes-server)"
wait "$perf_pid" || true

perf script -i "$out/perf.data" -F time,event,trace 2>/dev/null > "$out/trace.txt"
python3 - "$out/trace.txt" <<'PY'
import re, statistics, sys
ev = re.compile(r'^\s*([0-9.]+):\s+sdt_lanes:(\w+):.*?((?:arg\d+=\S+\s*)*)$')
admit, first, toks, steps = {}, {}, {}, []
for line in open(sys.argv[1]):
    m = ev.match(line)
    if not m: continue
    t, name = float(m.group(1)) * 1e3, m.group(2)
    args = [int(a.split("=")[1], 0) for a in m.group(3).split()]
    if name == "request_admit": admit[args[0]] = t - args[2] / 1e3   # back to the line's arrival
    elif name == "first_token": first[args[0]] = t
    elif name == "token_emit": toks.setdefault(args[0], []).append(t)
    elif name == "step_begin": steps.append((t, args[1]))
print(f"{'req':>5} {'ttft_ms':>9} {'itl_avg':>8} {'itl_p50':>8} {'itl_max':>8} {'tokens':>6}")
rows = []
itls_all = []
for r in sorted(toks):
    ts = toks[r]
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    itls_all += gaps
    ttft = first.get(r, ts[0]) - admit.get(r, ts[0])
    avg = statistics.mean(gaps) if gaps else 0
    p50 = statistics.median(gaps) if gaps else 0
    rows.append(ttft)
    print(f"{r:>5} {ttft:9.2f} {avg:8.2f} {p50:8.2f} {max(gaps, default=0):8.2f} {len(ts):>6}")
if itls_all:
    q = statistics.quantiles(itls_all, n=100)
    print(f"all: {len(toks)} streams, ITL p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms, max {max(itls_all):.2f} ms; "
          f"TTFT p50 {statistics.median(rows):.2f} ms, max {max(rows):.2f} ms; {len(steps)} steps, {statistics.mean(c for _, c in steps):.1f} columns/step")
PY
