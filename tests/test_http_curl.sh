#!/usr/bin/env bash
# Real curl against lanes-server's HTTP front: every endpoint, streamed (-N) and not, keep-alive
# (two URLs in one curl call), a chunked upload, Expect: 100-continue and the error statuses.
# The greedy completion equals the line protocol's on the same port. Usage: test_http_curl.sh BUILD
set -euo pipefail
bin=${1:?usage: test_http_curl.sh BUILD_DIR}
for tool in curl jq; do
  command -v $tool >/dev/null || { echo "$tool not installed (scripts/deps.sh --test): skipped"; exit 77; }
done
tmp=$(mktemp -d)
. "$(dirname "$0")/server_lib.sh"
trap 'stop_server; rm -rf "$tmp"' EXIT
start_server "$bin" "$tmp/log" --preset tiny --threads 1 --chat-template chatml --max-body 2048
port=$server_port
u=http://127.0.0.1:$port
fail() { echo "FAIL: $*" >&2; exit 1; }
# status WANT CURL_ARGS...: the body lands in $tmp/body
status() {
  local want=$1; shift
  local got
  got=$(curl -sS -o "$tmp/body" -w '%{http_code}' "$@")
  [ "$got" = "$want" ] || fail "curl $* -> $got, want $want: $(cat "$tmp/body")"
}
# The error body's shape, and its message containing $1.
error_has() {
  jq -e '.error | has("message") and has("type") and has("param") and has("code")' "$tmp/body" \
    >/dev/null || fail "not an OpenAI error: $(cat "$tmp/body")"
  grep -q -- "$1" "$tmp/body" || fail "error lacks '$1': $(cat "$tmp/body")"
}

status 200 "$u/health"
[ "$(cat "$tmp/body")" = '{"status":"ok"}' ] || fail "health body: $(cat "$tmp/body")"
status 200 "$u/v1/models"
[ "$(jq -r '.data[0].id' "$tmp/body")" = synthetic ] || fail "models: $(cat "$tmp/body")"
status 200 "$u/metrics"
grep -q '^vllm:num_requests_running' "$tmp/body" || fail "metrics: $(head -5 "$tmp/body")"

# The line protocol's greedy answer on the same port (bash's /dev/tcp), then the same over HTTP.
exec 3<>"/dev/tcp/127.0.0.1/$port"
echo '{"prompt":"Hello, wörld","max_tokens":16}' >&3
ref=
while read -r line <&3; do
  ev=$(jq -r .event <<<"$line")
  [ "$ev" = token ] && ref+=$(jq -j .text <<<"$line")
  [ "$ev" = done ] && break
done
exec 3<&-
req='{"prompt":"Hello, wörld","max_tokens":16,"temperature":0}'
status 200 "$u/v1/completions" -H 'Content-Type: application/json' -d "$req"
[ "$(jq -j '.choices[0].text' "$tmp/body")" = "$ref" ] || fail "completion differs from the line protocol"
[ "$(jq -r '.usage.completion_tokens' "$tmp/body")" = 16 ] || fail "usage: $(cat "$tmp/body")"

# echo: the prompt comes back byte for byte before the text
status 200 "$u/v1/completions" -d '{"prompt":"Hello, wörld","max_tokens":16,"temperature":0,"echo":true}'
[ "$(jq -j '.choices[0].text' "$tmp/body")" = "Hello, wörld$ref" ] || fail "echo: $(cat "$tmp/body")"

# Streamed with curl -N: data: lines, [DONE] last, the texts add up to the same answer.
curl -sS -N "$u/v1/completions" -d "${req%\}},\"stream\":true}" >"$tmp/sse"
[ "$(grep -c '^data: ' "$tmp/sse")" -ge 3 ] || fail "stream: $(cat "$tmp/sse")"
[ "$(grep '^data: ' "$tmp/sse" | tail -1)" = 'data: [DONE]' ] || fail "no [DONE] last"
got=$(grep '^data: {' "$tmp/sse" | sed 's/^data: //' | jq -j '.choices[0].text')
[ "$got" = "$ref" ] || fail "streamed text differs: '$got' vs '$ref'"

# Chat, whole and streamed (role first, then content, then finish_reason).
chat='{"messages":[{"role":"user","content":"hi"}],"max_tokens":6,"temperature":0}'
status 200 "$u/v1/chat/completions" -d "$chat"
[ "$(jq -r '.choices[0].message.role' "$tmp/body")" = assistant ] || fail "chat: $(cat "$tmp/body")"
whole=$(jq -j '.choices[0].message.content' "$tmp/body")
curl -sS -N "$u/v1/chat/completions" -d "${chat%\}},\"stream\":true}" >"$tmp/sse"
grep '^data: {' "$tmp/sse" | head -1 | grep -q '"role":"assistant"' || fail "chat stream: no role first"
got=$(grep '^data: {' "$tmp/sse" | sed 's/^data: //' | jq -j '.choices[0].delta.content // ""')
[ "$got" = "$whole" ] || fail "chat stream differs: '$got' vs '$whole'"
grep '^data: {' "$tmp/sse" | tail -1 | sed 's/^data: //' |
  jq -e '.choices[0].finish_reason == "length"' >/dev/null || fail "chat stream: no finish_reason last"

# Keep-alive: two URLs in one curl call use one connection.
curl -sS -v "$u/health" "$u/v1/models" -o /dev/null -o /dev/null 2>"$tmp/verbose"
grep -q 'Re-using existing connection' "$tmp/verbose" || fail "no keep-alive: $(cat "$tmp/verbose")"

# A chunked upload, and Expect: 100-continue.
status 200 "$u/v1/completions" -H 'Transfer-Encoding: chunked' -d "$req"
[ "$(jq -j '.choices[0].text' "$tmp/body")" = "$ref" ] || fail "chunked upload: $(cat "$tmp/body")"
curl -sS -v -H 'Expect: 100-continue' "$u/v1/completions" -d "$req" -o "$tmp/body" 2>"$tmp/verbose"
grep -q '< HTTP/1.1 100 Continue' "$tmp/verbose" || fail "no 100 Continue: $(cat "$tmp/verbose")"
[ "$(jq -j '.choices[0].text' "$tmp/body")" = "$ref" ] || fail "after 100: $(cat "$tmp/body")"

# Errors.
status 404 "$u/nowhere"; error_has "no such endpoint"
status 405 -X DELETE "$u/health"; error_has "not allowed"
curl -sS -D - -o /dev/null "$u/v1/completions" | grep -qi '^Allow: POST' || fail "405 without Allow"
status 400 "$u/v1/completions" -d '{"prompt":'; error_has ""
status 400 "$u/v1/completions" -d '{"prompt":"x","suffix":"y"}'; error_has suffix
head -c 3000 /dev/zero | tr '\0' a >"$tmp/big"
status 413 "$u/v1/completions" --data-binary @"$tmp/big"; error_has max-body
status 413 "$u/v1/completions" -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/big"
status 431 "$u/health" -H "X-Pad: $(head -c 17000 /dev/zero | tr '\0' b)"
echo "http_curl: ok"
