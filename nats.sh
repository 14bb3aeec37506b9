#!/usr/bin/env bash
# Local development nats-server: bash nats.sh start|stop|status|restart|logs
# Runs `nats-server -c nats-server.conf` from the repo root; state lives in ./data/.
set -euo pipefail
cd "$(dirname "$0")"

CONF=nats-server.conf
DATA=data
PID_FILE=$DATA/nats-server.pid
# The users' passwords (nats-accounts.conf), generated on the first start; git-ignored.
CREDENTIALS=$DATA/credentials.env
USERS=(admin sys agent worker publisher math sensor leaf)
LOG_FILE=$DATA/nats-server.log
# Keep in sync with nats-server.conf.
HOST=127.0.0.1
CLIENT_PORT=4222
WS_PORT=8080
HTTP_PORT=8222
LEAF_PORT=7422
MQTT_PORT=1883
HEALTH_URL="http://$HOST:$HTTP_PORT/healthz"
START_TIMEOUT=20 # seconds
STOP_TIMEOUT=10  # seconds

say() { printf 'nats.sh: %s\n' "$*"; }
die() { printf 'nats.sh: %s\n' "$*" >&2; exit 1; }

usage() {
  echo "usage: bash nats.sh start|stop|status|restart|logs" >&2
  exit 2
}

# True if process $1 exists and is not a zombie (the parent that reaps it may be gone).
proc_alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}

# True if $1 is a live nats-server process (guards against a reused pid).
alive() {
  local comm
  proc_alive "$1" || return 1
  comm=$(ps -o comm= -p "$1" 2>/dev/null) || return 1
  [[ $comm == *nats-server* ]]
}

# Prints the pid of our running server, or fails (removing a stale pid file).
running_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then
    echo "$pid"
    return 0
  fi
  rm -f "$PID_FILE"
  return 1
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

port_owner() {
  if command -v ss >/dev/null; then
    ss -ltnpH "sport = :$1" 2>/dev/null | awk '{print $4, $6}' | head -n1
  elif command -v lsof >/dev/null; then
    lsof -nP -iTCP:"$1" -sTCP:LISTEN 2>/dev/null | awk 'NR==2 {print $1, "pid=" $2}'
  fi
}

install_hint() {
  if [[ $(uname -s) == Darwin ]]; then
    echo "brew install nats-server"
  elif command -v apt-get >/dev/null; then
    echo "sudo apt-get install -y nats-server"
  else
    echo "go install github.com/nats-io/nats-server/v2@v2.9.10"
  fi
}

# Sets NATS_SERVER to the binary, installing the package when possible.
find_or_install_server() {
  local p
  for p in "$(command -v nats-server || true)" /usr/sbin/nats-server /usr/local/bin/nats-server /opt/homebrew/bin/nats-server; do
    if [[ -n $p && -x $p ]]; then NATS_SERVER=$p; return 0; fi
  done
  if command -v apt-get >/dev/null; then
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
      command -v sudo >/dev/null || die "nats-server is not installed; run: $(install_hint)"
      sudo=(sudo)
    fi
    say "installing nats-server (apt-get)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >/dev/null ||
      { "${sudo[@]}" apt-get update -q >/dev/null &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >/dev/null; } ||
      die "could not install nats-server; run: $(install_hint)"
  elif [[ $(uname -s) == Darwin ]] && command -v brew >/dev/null; then
    say "installing nats-server (brew)"
    brew install nats-server
  else
    die "nats-server is not installed; run: $(install_hint)"
  fi
  for p in "$(command -v nats-server || true)" /usr/sbin/nats-server /usr/local/bin/nats-server /opt/homebrew/bin/nats-server; do
    if [[ -n $p && -x $p ]]; then NATS_SERVER=$p; return 0; fi
  done
  die "nats-server installed but not found on PATH"
}

status_line() {
  echo "running (pid $1) — client $HOST:$CLIENT_PORT, websocket ws://$HOST:$WS_PORT, monitoring http://$HOST:$HTTP_PORT, leafnodes $HOST:$LEAF_PORT, mqtt mqtt://$HOST:$MQTT_PORT (and ws://$HOST:$WS_PORT/mqtt)"
}

# Writes $CREDENTIALS once: NATS_<USER>_PASSWORD=<24 random letters and digits> per user of
# nats-accounts.conf, readable by this user only. Existing passwords are kept; a user added since
# gets one.
ensure_credentials() {
  mkdir -p "$DATA"
  local user var added=0 rest
  (
    umask 077
    touch "$CREDENTIALS"
  )
  chmod 600 "$CREDENTIALS"
  for user in "${USERS[@]}"; do
    var=$(password_var "$user")
    grep -Eq "^$var=[A-Za-z][A-Za-z0-9]*\$" "$CREDENTIALS" && continue
    # One from an older nats.sh that nats-server cannot read (a leading digit): replaced.
    rest=$(grep -v "^$var=" "$CREDENTIALS" || true)
    printf '%s\n' "$rest" | sed '/^$/d' >"$CREDENTIALS.new" && mv "$CREDENTIALS.new" "$CREDENTIALS"
    chmod 600 "$CREDENTIALS"
    # Letters and digits only, a letter first: nats-server reads an environment variable as a
    # configuration value (a leading digit makes it a number), and no quoting is needed in
    # urls or shells.
    printf '%s=%s%s\n' "$var" "$(LC_ALL=C tr -dc 'A-Za-z' </dev/urandom | head -c 1)" \
      "$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 23)" >>"$CREDENTIALS"
    added=1
  done
  ((added == 0)) || say "generated passwords in $CREDENTIALS (bash nats.sh status prints them)"
}

# NATS_<USER>_PASSWORD (tr, not ${user^^}: macOS has bash 3.2).
password_var() { printf 'NATS_%s_PASSWORD' "$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')"; }

# Exports the passwords for nats-server (nats-accounts.conf reads them as $NATS_<USER>_PASSWORD).
export_credentials() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^NATS_[A-Z0-9_]+_PASSWORD=[A-Za-z][A-Za-z0-9]*$ ]]; then
      export "${line?}"
    fi
  done <"$CREDENTIALS"
  return 0
}

print_credentials() {
  [[ -f $CREDENTIALS ]] || return 0
  echo "users (account APP unless noted; connections without credentials are 'browser'):"
  local user var value
  for user in "${USERS[@]}"; do
    var=$(password_var "$user")
    value=$(sed -n "s/^$var=//p" "$CREDENTIALS" | head -n1)
    printf '  %-10s %s%s\n' "$user" "${value:-(none yet)}" "$([[ $user == sys ]] && echo "   (account SYS)" || true)"
  done
  echo "  (from $CREDENTIALS; the app takes admin's in ⚙, /server sys's)"
}

# Before accounts, the app's streams and buckets lived in the default account ($G); they are the
# account APP's now. Moved once, so nothing stored is lost (nats-server keeps a store per account).
adopt_default_account_streams() {
  local js=$DATA/jetstream
  if [[ -d $js/\$G/streams && ! -e $js/APP ]]; then
    mv "$js/\$G" "$js/APP"
    say "moved the streams of the default account to account APP ($js/APP)"
  fi
}

cmd_start() {
  local pid
  if pid=$(running_pid); then
    say "already $(status_line "$pid")"
    return 0
  fi
  find_or_install_server

  local port busy=0 owner
  for port in $CLIENT_PORT $WS_PORT $HTTP_PORT $LEAF_PORT $MQTT_PORT; do
    if port_in_use "$port"; then
      owner=$(port_owner "$port" || true)
      say "port $HOST:$port is already in use by another process${owner:+: $owner}" >&2
      busy=1
    fi
  done
  [[ $busy -eq 0 ]] || die "not starting; stop that process first (ports $CLIENT_PORT, $WS_PORT, $HTTP_PORT, $LEAF_PORT, $MQTT_PORT are needed)"

  ensure_credentials
  export_credentials
  adopt_default_account_streams
  nohup "$NATS_SERVER" -c "$CONF" </dev/null >"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"

  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! proc_alive "$pid"; then
      rm -f "$PID_FILE"
      say "nats-server exited during startup; last log lines:" >&2
      tail -n 20 "$LOG_FILE" >&2 || true
      exit 1
    fi
    if curl -fsS --max-time 1 "$HEALTH_URL" >/dev/null 2>&1; then
      say "$(status_line "$pid")"
      return 0
    fi
    sleep 0.2
  done
  say "nats-server did not become healthy within ${START_TIMEOUT}s; last log lines:" >&2
  tail -n 20 "$LOG_FILE" >&2 || true
  cmd_stop >/dev/null
  exit 1
}

cmd_stop() {
  local pid
  if ! pid=$(running_pid); then
    say "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while proc_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if proc_alive "$pid"; then
    say "pid $pid did not exit after ${STOP_TIMEOUT}s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    status_line "$pid"
    print_credentials
  else
    echo "not running"
    exit 3
  fi
}

cmd_logs() {
  [[ -f $LOG_FILE ]] || die "no log yet ($LOG_FILE); run: bash nats.sh start"
  exec tail -f "$LOG_FILE"
}

[[ $# -eq 1 ]] || usage
case $1 in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_stop && cmd_start ;;
  logs) cmd_logs ;;
  *) usage ;;
esac
