#!/usr/bin/env bash
# Local development nats-server: bash nats.sh start|stop|status|restart|logs
# Runs `nats-server -c nats-server.conf` from the repo root; state lives in ./data/. The binary is
# $NATS_SERVER_BIN when set, else the system's (installed when missing). Do not move a store back
# from nats-server 2.10+ to 2.9: after the same ./data went back and forth between 2.9.10 and
# 2.15.1, 2.15.1 found a bucket's state inconsistent and stopped storing to it.
# Or a 3-node cluster in its place: bash nats.sh cluster start|stop|status [node] (see cmd_cluster).
set -euo pipefail
cd "$(dirname "$0")"

CONF=nats-server.conf
ACCOUNTS_CONF=nats-accounts.conf
DATA=data
PID_FILE=$DATA/nats-server.pid
# The users' passwords (nats-accounts.conf), generated on the first start; git-ignored.
CREDENTIALS=$DATA/credentials.env
USERS=(admin sys agent worker publisher math sensor leaf route)
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
  echo "       bash nats.sh cluster start|stop|status [1|2|3]" >&2
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

# Prints the pid of the server whose pid file is $1 (default: the single server's), or fails
# (removing a stale pid file).
running_pid() {
  local file=${1:-$PID_FILE} pid
  [[ -f $file ]] || return 1
  pid=$(cat "$file" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then
    echo "$pid"
    return 0
  fi
  rm -f "$file"
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

# Sets NATS_SERVER to $NATS_SERVER_BIN when set, else to the system's binary, installing the
# package when possible.
find_or_install_server() {
  if [[ -n ${NATS_SERVER_BIN:-} ]]; then
    NATS_SERVER=$NATS_SERVER_BIN
    [[ -x $NATS_SERVER ]] || die "NATS_SERVER_BIN: no nats-server at $NATS_SERVER"
    return 0
  fi
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
    # Debian's package starts a system-wide nats-server on 4222 at once and at every boot: this
    # project runs its own (installed for it just now, so its service is not wanted).
    if command -v systemctl >/dev/null && systemctl is-enabled --quiet nats-server 2>/dev/null; then
      say "disabling the nats-server system service the package started (this project runs its own)"
      "${sudo[@]}" systemctl disable --now nats-server >/dev/null 2>&1 || true
    fi
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
    # Written readable by its owner only from the start (the umask), never world-readable.
    (
      umask 077
      printf '%s\n' "$rest" | sed '/^$/d' >"$CREDENTIALS.new" && mv "$CREDENTIALS.new" "$CREDENTIALS"
    )
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

user_note() {
  case $1 in
    sys) echo "   (account SYS)" ;;
    route) echo "   (the cluster's routes: bash nats.sh cluster)" ;;
  esac
}

print_credentials() {
  [[ -f $CREDENTIALS ]] || return 0
  echo "users (account APP unless noted; connections without credentials are 'browser'):"
  local user var value
  for user in "${USERS[@]}"; do
    var=$(password_var "$user")
    value=$(sed -n "s/^$var=//p" "$CREDENTIALS" | head -n1)
    printf '  %-10s %s%s\n' "$user" "${value:-(none yet)}" "$(user_note "$user")"
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

# Fails, naming the owners, if one of the ports $@ is taken.
check_ports_free() {
  local port busy=0 owner
  for port in "$@"; do
    if port_in_use "$port"; then
      owner=$(port_owner "$port" || true)
      say "port $HOST:$port is already in use by another process${owner:+: $owner}" >&2
      if command -v systemctl >/dev/null && systemctl is-active --quiet nats-server 2>/dev/null; then
        say "  the system's nats-server service is running (Debian's package starts one): sudo systemctl disable --now nats-server" >&2
      fi
      busy=1
    fi
  done
  [[ $busy -eq 0 ]] || die "not starting; stop that process first (ports $* are needed)"
}

# Starts nats-server -c $1 in the background (pid file $2, log $3), in a session of its own: a
# Ctrl-C in the terminal that ran `nats.sh start` (or `./run.sh`) reaches its process group, and
# nats-server (which handles SIGINT itself, nohup or not) would exit with it. (The child of a
# non-interactive shell leads no group, so setsid does not fork and $! stays its pid.)
launch_server() {
  nohup setsid "$NATS_SERVER" -c "$1" </dev/null >"$3" 2>&1 &
  echo "$!" >"$2"
}

# Waits until the server of config $1 (pid file $2, log $3) answers $4, its /healthz; stops it and
# fails with the end of its log when it exits or stays unhealthy.
await_healthy() {
  local conf=$1 pid_file=$2 log=$3 health=$4 pid
  pid=$(cat "$pid_file")
  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! proc_alive "$pid"; then
      rm -f "$pid_file"
      say "nats-server ($conf) exited during startup; last log lines:" >&2
      tail -n 20 "$log" >&2 || true
      exit 1
    fi
    if curl -fsS --max-time 1 "$health" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  say "nats-server ($conf) did not become healthy within ${START_TIMEOUT}s; last log lines:" >&2
  tail -n 20 "$log" >&2 || true
  stop_server "$pid_file" >/dev/null
  exit 1
}

# Stops the server of pid file $1 (SIGTERM, SIGKILL after STOP_TIMEOUT).
stop_server() {
  local pid_file=$1 pid
  if ! pid=$(running_pid "$pid_file"); then
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
  rm -f "$pid_file"
  say "stopped (pid $pid)"
}

cmd_start() {
  local pid
  if pid=$(running_pid); then
    say "already $(status_line "$pid")"
    return 0
  fi
  # ./run.sh starts the server; with the cluster running in its place, the app uses the cluster.
  if cluster_running; then
    say "the cluster runs in the single server's place (node 1 on its ports): bash nats.sh cluster status"
    return 0
  fi
  find_or_install_server
  check_ports_free $CLIENT_PORT $WS_PORT $HTTP_PORT $LEAF_PORT $MQTT_PORT
  ensure_credentials
  export_credentials
  adopt_default_account_streams
  launch_server "$CONF" "$PID_FILE" "$LOG_FILE"
  await_healthy "$CONF" "$PID_FILE" "$LOG_FILE" "$HEALTH_URL"
  say "$(status_line "$(cat "$PID_FILE")")"
}

cmd_stop() {
  if ! running_pid >/dev/null && cluster_running; then
    say "the single server is not running; the cluster is (bash nats.sh cluster stop)"
    return 0
  fi
  stop_server "$PID_FILE"
}

# --- a 3-node cluster ----------------------------------------------------------------------------
# bash nats.sh cluster start|stop|status [node]: three nats-servers on 127.0.0.1, routed to each
# other, JetStream on each (store data/cluster/n<i>/), with the single server's accounts
# (nats-accounts.conf) and passwords. Node 1 takes the single server's ports, so ./run.sh and every
# client find it where they always do; node i takes each of them + i - 1 (client 4222/4223/4224,
# websocket 8080/8081/8082, monitoring 8222/8223/8224, leaf nodes 7422/7423/7424, mqtt
# 1883/1884/1885) and routes on 6222/6223/6224. Clients learn the other nodes from the INFO of the
# one they reach (connect_urls), leaf nodes from its leafnode_urls. The cluster keeps its own
# streams and buckets, apart from the single server's: the app creates them there with 3 replicas.
CLUSTER_NAME=via
CLUSTER_NODES=3
CLUSTER_DIR=$DATA/cluster
ROUTE_PORT=6222

# nats-server#4320: before 2.9.21 a clustered stream could accept two compare-and-sets made at
# the same revision (a KV update or a lease could be lost).
CLUSTER_MIN_VERSION=2.9.21
CURRENT_SERVER=.tools/nats-server-current/nats-server

# Sets NATS_SERVER for the cluster: $NATS_SERVER_BIN, else the current release that
# scripts/setup.sh installs into .tools/, else the system's (with a warning when too old).
find_cluster_server() {
  if [[ -z ${NATS_SERVER_BIN:-} && -x $CURRENT_SERVER ]]; then
    NATS_SERVER=$CURRENT_SERVER
  else
    find_or_install_server
  fi
  local version
  version=$("$NATS_SERVER" --version 2>/dev/null | sed -n 's/^nats-server: v//p' || true)
  if [[ $(printf '%s\n%s\n' "$CLUSTER_MIN_VERSION" "${version:-0}" | sort -V | head -n1) != "$CLUSTER_MIN_VERSION" ]]; then
    say "warning: nats-server ${version:-?} ($NATS_SERVER) may accept two compare-and-sets at the same revision in a cluster (nats-server#4320, fixed in $CLUSTER_MIN_VERSION): bash scripts/setup.sh installs the current release into .tools/" >&2
  fi
}

node_dir() { echo "$CLUSTER_DIR/n$1"; }
node_pid_file() { echo "$CLUSTER_DIR/n$1/nats-server.pid"; }
node_port() { echo $(($1 + $2 - 1)); } # node_port <node 1's port> <node>

cluster_running() {
  local i
  for ((i = 1; i <= CLUSTER_NODES; i++)); do
    running_pid "$(node_pid_file "$i")" >/dev/null && return 0
  done
  return 1
}

# Node $1's configuration, written on every start from this one template (mode 600: the route
# urls hold the route password).
write_node_conf() {
  local i=$1 dir routes="" j
  dir=$(node_dir "$i")
  # export_credentials has set it.
  for ((j = 1; j <= CLUSTER_NODES; j++)); do
    routes+="    nats-route://route:${NATS_ROUTE_PASSWORD:?}@$HOST:$(node_port $ROUTE_PORT "$j")"$'\n'
  done
  mkdir -p "$dir"
  (
    umask 077
    cat >"$dir/nats.conf" <<EOF
# Node $i of the development cluster, written by nats.sh at every cluster start: edit nats.sh.
server_name: $CLUSTER_NAME-n$i
host: $HOST
port: $(node_port $CLIENT_PORT "$i")
http: $HOST:$(node_port $HTTP_PORT "$i")
websocket {
  host: $HOST
  port: $(node_port $WS_PORT "$i")
  no_tls: true
}
mqtt {
  host: $HOST
  port: $(node_port $MQTT_PORT "$i")
}
jetstream {
  store_dir: "$dir"
}
cluster {
  name: $CLUSTER_NAME
  host: $HOST
  port: $(node_port $ROUTE_PORT "$i")
  # Routes carry every account's messages: only the nodes, with the route password, may connect.
  authorization {
    user: route
    password: \$NATS_ROUTE_PASSWORD
  }
  routes: [
$routes  ]
}
leafnodes {
  host: $HOST
  port: $(node_port $LEAF_PORT "$i")
  authorization {
    user: leaf
    password: \$NATS_LEAF_PASSWORD
    account: APP
  }
}
include ../../../$ACCOUNTS_CONF
EOF
  )
  chmod 600 "$dir/nats.conf"
}

node_ports() {
  local i=$1 base
  for base in $CLIENT_PORT $WS_PORT $HTTP_PORT $LEAF_PORT $MQTT_PORT $ROUTE_PORT; do
    printf '%s ' "$(node_port "$base" "$i")"
  done
}

node_status_line() {
  local i=$1 pid
  if pid=$(running_pid "$(node_pid_file "$i")"); then
    echo "node $i ($CLUSTER_NAME-n$i): running (pid $pid, $(ps -o args= -p "$pid" | cut -d' ' -f1)) — client $HOST:$(node_port $CLIENT_PORT "$i"), websocket ws://$HOST:$(node_port $WS_PORT "$i"), monitoring http://$HOST:$(node_port $HTTP_PORT "$i"), leafnodes $HOST:$(node_port $LEAF_PORT "$i"), mqtt $HOST:$(node_port $MQTT_PORT "$i"), routes $HOST:$(node_port $ROUTE_PORT "$i")"
  else
    echo "node $i ($CLUSTER_NAME-n$i): not running"
  fi
}

# Starts the nodes $@ that are not running, then waits for them: a node is healthy once JetStream
# has a meta leader, which takes two nodes.
cluster_start_nodes() {
  local i dir started=()
  for i in "$@"; do
    running_pid "$(node_pid_file "$i")" >/dev/null && continue
    # shellcheck disable=SC2046 # a list of ports
    check_ports_free $(node_ports "$i")
    write_node_conf "$i"
    dir=$(node_dir "$i")
    launch_server "$dir/nats.conf" "$(node_pid_file "$i")" "$dir/nats-server.log"
    started+=("$i")
  done
  # ${a[@]+…}: an empty array is "unbound" to bash 3.2 under set -u.
  for i in ${started[@]+"${started[@]}"}; do
    dir=$(node_dir "$i")
    await_healthy "$dir/nats.conf" "$(node_pid_file "$i")" "$dir/nats-server.log" \
      "http://$HOST:$(node_port $HTTP_PORT "$i")/healthz"
  done
  for i in "$@"; do node_status_line "$i"; done
}

# bash nats.sh cluster start|stop|status [node]
cmd_cluster() {
  local action=$1 node=${2:-} nodes=() i pid up=0
  if [[ -n $node ]]; then
    [[ $node =~ ^[0-9]+$ ]] && ((node >= 1 && node <= CLUSTER_NODES)) ||
      die "no node $node: the cluster has nodes 1 to $CLUSTER_NODES"
    nodes=("$node")
  else
    for ((i = 1; i <= CLUSTER_NODES; i++)); do nodes+=("$i"); done
  fi
  case $action in
    start)
      if pid=$(running_pid); then
        die "the single server has node 1's ports (pid $pid); stop it first: bash nats.sh stop"
      fi
      for ((i = 1; i <= CLUSTER_NODES; i++)); do
        if [[ " ${nodes[*]} " == *" $i "* ]] || running_pid "$(node_pid_file "$i")" >/dev/null; then
          up=$((up + 1))
        fi
      done
      # JetStream needs a meta leader, elected by a majority of the nodes.
      ((up * 2 > CLUSTER_NODES)) ||
        die "node $node alone would have no JetStream (a majority of the $CLUSTER_NODES nodes must run): bash nats.sh cluster start"
      find_cluster_server
      ensure_credentials
      export_credentials
      cluster_start_nodes "${nodes[@]}"
      # As start: a start's output ends up in terminals' scrollback and CI logs; status prints them.
      say "passwords in $CREDENTIALS (bash nats.sh cluster status prints them)"
      ;;
    stop)
      for i in "${nodes[@]}"; do
        printf 'node %s: ' "$i"
        stop_server "$(node_pid_file "$i")"
      done
      ;;
    status)
      for i in "${nodes[@]}"; do
        node_status_line "$i"
        if running_pid "$(node_pid_file "$i")" >/dev/null; then up=$((up + 1)); fi
      done
      ((up > 0)) || exit 3
      [[ -n $node ]] || print_credentials
      ;;
    *) usage ;;
  esac
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    status_line "$pid"
    print_credentials
  elif cluster_running; then
    echo "not running; the cluster runs in its place:"
    cmd_cluster status
  else
    echo "not running"
    exit 3
  fi
}

cmd_logs() {
  [[ -f $LOG_FILE ]] || die "no log yet ($LOG_FILE); run: bash nats.sh start"
  exec tail -f "$LOG_FILE"
}

if [[ ${1:-} == cluster ]]; then
  [[ $# -ge 2 && $# -le 3 ]] || usage
  cmd_cluster "$2" "${3:-}"
  exit 0
fi
[[ $# -eq 1 ]] || usage
case $1 in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_stop && cmd_start ;;
  logs) cmd_logs ;;
  *) usage ;;
esac
