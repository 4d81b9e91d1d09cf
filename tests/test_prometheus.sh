#!/usr/bin/env bash
# A real Prometheus server scrapes lanes-server's /metrics every second during a lanes-loadgen run:
# the scrape target stays up, `promtool check metrics` accepts the exposition, and the counters
# Prometheus stored agree with the load generator's own totals. Skips (77) without prometheus.
set -euo pipefail
bin=$1
command -v prometheus > /dev/null && command -v promtool > /dev/null ||
  { echo "SKIP: prometheus/promtool not installed (Debian: prometheus)"; exit 77; }
command -v curl > /dev/null || { echo "SKIP: curl not installed"; exit 77; }
tmp=$(mktemp -d)
. "$(dirname "$0")/server_lib.sh"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null; wait "$p" 2> /dev/null; done
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# promtool parses (exit 1 on an error) and lints (exit 3). Its one lint vLLM's own /metrics fails too,
# "metric names should not contain ':'", is the price of vLLM's names; anything else fails.
check_metrics() {
  local out rc=0
  out=$(promtool check metrics < "$1" 2>&1) || rc=$?
  [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "$out" >&2; return 1; }
  ! echo "$out" | grep -v "^vllm:[^ ]* metric names should not contain ':'$" | grep -q . || { echo "$out" >&2; return 1; }
}

start_server "$bin" "$tmp/server.log" --preset tiny --lanes 8
port=$server_port

curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/m0.txt" || fail "GET /metrics failed"
check_metrics "$tmp/m0.txt" || fail "promtool rejects the idle exposition"

cat > "$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: lanes
    static_configs:
      - targets: ['127.0.0.1:$port']
YML
# Port 0 is not allowed for the web listener: ask the kernel for a free one (node is a test
# dependency anyway, for the openai client test).
pport=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
  console.log(s.address().port); s.close(); })' 2> /dev/null || echo 29090)
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$pport" > "$tmp/prom.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$pport/-/ready" > /dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$pport/-/ready" > /dev/null || { cat "$tmp/prom.log"; fail "prometheus not ready"; }

"$bin/lanes-loadgen" --port "$port" --streams 1,4,8 --requests 3 --max-tokens 24 --json "$tmp/lg.json" \
  --no-progress > "$tmp/lg.txt" || { cat "$tmp/lg.txt"; fail "loadgen failed"; }
curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/m1.txt"
check_metrics "$tmp/m1.txt" || fail "promtool rejects the exposition after load"

query() {   # PromQL -> the single sample's value
  curl -sf --get "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
    sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p'
}
# The loadgen's totals: tokens and finished requests over every point.
lg_tokens=$(grep -o '"tokens": [0-9.e+]*' "$tmp/lg.json" | awk '{s += $2} END {print s}')
lg_reqs=$(grep -o '"requests_ok": [0-9.e+]*' "$tmp/lg.json" | awk '{s += $2} END {print s}')
[ "${lg_tokens:-0}" -gt 0 ] || fail "loadgen reports no tokens: $(cat "$tmp/lg.txt")"
ok=
for _ in $(seq 100); do   # until a scrape after the run is stored
  tok=$(query 'sum(vllm:generation_tokens_total)')
  req=$(query 'sum(vllm:request_success_total)')
  if [ "${tok%.*}" = "$lg_tokens" ] && [ "${req%.*}" = "$lg_reqs" ]; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || fail "Prometheus has generation tokens ${tok:-none}, requests ${req:-none}; loadgen: $lg_tokens, $lg_reqs"
[ "$(query 'up{job="lanes"}')" = 1 ] || fail "scrape target not up"
ttft=$(query 'sum(vllm:time_to_first_token_seconds_count)')
[ "${ttft%.*}" = "$lg_reqs" ] || fail "TTFT histogram counts $ttft requests, loadgen $lg_reqs"
running=$(query 'sum(vllm:num_requests_running)')
[ "${running%.*}" = 0 ] || fail "num_requests_running $running after the run"
echo "ok: Prometheus scraped $lg_tokens tokens and $lg_reqs requests, as the load generator counted"
