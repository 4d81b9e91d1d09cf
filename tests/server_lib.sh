# Sourced by the shell tests: starts lanes-server in the background and learns its port.
# start_server BIN LOG ARGS...: runs BIN/lanes-server --port 0 ARGS... with stderr in LOG, sets
# $server_pid and $server_port once it logs "listening on"; fails the test (exit 1, the log shown)
# if it exits or does not listen within 30 s. stop_server: SIGTERM and wait (fine when none runs).
server_pid=
server_port=
start_server() {
  local bin=$1 log=$2
  shift 2
  "$bin/lanes-server" --port 0 "$@" 2> "$log" &
  server_pid=$!
  server_port=
  for _ in $(seq 300); do
    server_port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$server_port" ] && return 0
    kill -0 "$server_pid" 2> /dev/null || break
    sleep 0.1
  done
  cat "$log" >&2
  echo "FAIL: lanes-server did not start listening" >&2
  exit 1
}
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2> /dev/null
  wait "$server_pid" 2> /dev/null
  server_pid=
}
