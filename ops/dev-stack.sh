#!/usr/bin/env bash
# Starts, describes and stops the local dev stack: Redis, PostgreSQL, two S3 servers and, on request, Ceph RGW on free loopback ports.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SCRIPT")/.." && pwd)"
S3RVER="${S3RVER:-$ROOT/.deps/node_modules/.bin/s3rver}"
START_TIMEOUT="${DEV_STACK_START_TIMEOUT:-60}"  # seconds for one server to answer
STOP_TIMEOUT="${DEV_STACK_STOP_TIMEOUT:-15}"    # seconds before SIGTERM becomes SIGKILL
PORT_ATTEMPTS=5                                 # parallel stacks may take a port between check and bind
RGW_MEMSTORE_BYTES="${DEV_STACK_RGW_MEMSTORE_BYTES:-3221225472}"  # RAM cap of RGW's object store (3 GiB)
# Fixed test-only credentials of the RGW user (never a real secret).
RGW_ACCESS_KEY_ID="BLOBFERRYRGWTEST"
RGW_SECRET_ACCESS_KEY="BLOBFERRYRGWTESTSECRET"
RGW_BUCKETS=(rgw-source rgw-target)

usage() {
  cat <<EOF
Usage: ops/dev-stack.sh COMMAND [OPTIONS]

Runs blobferry's dev and test servers on free ports of 127.0.0.1:
Redis, PostgreSQL 15 (database "blobferry", trust auth) and two s3rver
instances (buckets "source" and "target", key and secret S3RVER); on request
(--only ...,rgw) also Ceph's RADOS Gateway, a real S3 implementation: one
ceph-mon, one ceph-osd keeping objects in RAM (memstore) and radosgw, with
buckets "rgw-source" and "rgw-target" and the fixed test-only key
$RGW_ACCESS_KEY_ID / secret $RGW_SECRET_ACCESS_KEY.

Commands:
  up     start the stack (or, when DIR's stack is already running, just print
         its environment) and print KEY=VALUE lines on stdout
  env    print the environment of the stack in DIR again
  down   stop exactly the processes recorded in DIR/pids
  service-down NAME
         stop one server of DIR's running stack (redis, postgres, s3-source,
         s3-target or rgw) the way down does, keeping its data (rgw: only
         radosgw stops; its monitor and OSD, which hold the data, keep running)
  service-up NAME
         start that server again on the port and with the data and options it
         had (tests restart a service in place; clients keep their URLs)

Options:
  --dir DIR          where data, logs, pids, env and storage.yml live
                     (default: $ROOT/.stack)
  --only LIST        comma-separated subset of redis,postgres,s3,rgw
                     (default: redis,postgres,s3; rgw is opt-in)
  --redis-aof        give Redis append-only-file persistence (appendfsync everysec)
  --owner-pid PID    stop the stack by itself once process PID has exited
                     (test fixtures pass their own pid so a crash leaks nothing)
  -h, --help         show this help

Files in DIR: pids ("name pid" per line), env (KEY=VALUE per line),
storage.yml (services source, target, rgw_source, rgw_target and local in
Rails' format), logs/, rgw/ (ceph.conf, monitor and OSD data, admin sockets).

Environment printed: REDIS_URL, DATABASE_URL, PGHOST, PGPORT, PGUSER,
PGDATABASE, S3_SOURCE_ENDPOINT, S3_TARGET_ENDPOINT, S3_SOURCE_DIR,
S3_TARGET_DIR, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, RGW_ENDPOINT,
RGW_ACCESS_KEY_ID, RGW_SECRET_ACCESS_KEY, BLOBFERRY_STORAGE_CONFIG,
STACK_DIR (only those of the servers started).

Environment read: DEV_STACK_START_TIMEOUT (seconds for one server to answer,
default 60), DEV_STACK_STOP_TIMEOUT (seconds before SIGKILL, default 15),
DEV_STACK_RGW_MEMSTORE_BYTES (RAM cap of RGW's objects, default 3 GiB),
S3RVER, PG_BIN.

Example:
  eval "\$(ops/dev-stack.sh up | sed 's/^/export /')"
  ops/dev-stack.sh down

Progress goes to stderr. Exit codes: 0 done, 2 usage error or a server that
failed to start (its log tail is printed, and what was started is stopped).
EOF
}

log() { echo "dev-stack: $*" >&2; }
die_usage() {
  log "$*"
  log "see ops/dev-stack.sh --help"
  exit 2
}

# --- processes -------------------------------------------------------------

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# PostgreSQL refuses to run as root, so as root its commands run as `postgres`.
as_postgres() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# A zombie (exited, not yet reaped by whoever adopted it) counts as gone.
is_alive() {
  local pid="$1" stat
  kill -0 "$pid" 2>/dev/null || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  [[ "${stat%% *}" != "Z" ]]
}

# Guards against pid reuse: only signal a process that still is what we started.
is_ours() {
  local name="$1" pid="$2" cmdline
  is_alive "$pid" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  case "$name" in
    redis) [[ "$cmdline" == *redis-server* ]] ;;
    postgres) [[ "$cmdline" == *postgres* && "$cmdline" == *"$DIR"* ]] ;;
    s3-*) [[ "$cmdline" == *s3rver* && "$cmdline" == *"$DIR"* ]] ;;
    rgw-mon) [[ "$cmdline" == *ceph-mon* && "$cmdline" == *"$DIR"* ]] ;;
    rgw-osd) [[ "$cmdline" == *ceph-osd* && "$cmdline" == *"$DIR"* ]] ;;
    rgw) [[ "$cmdline" == *radosgw* && "$cmdline" == *"$DIR"* ]] ;;
    watcher) [[ "$cmdline" == *dev-stack.sh* ]] ;;
    *) return 1 ;;
  esac
}

wait_gone() {
  local pid="$1" seconds="$2" deadline=$((SECONDS + $2))
  while is_alive "$pid"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

stop_process() {
  local name="$1" pid="$2"
  is_ours "$name" "$pid" || return 0
  log "stopping $name (pid $pid)"
  if [[ "$name" == postgres ]]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$DIR/postgres" stop -m fast -w -t "$STOP_TIMEOUT" \
      >>"$DIR/logs/postgres.log" 2>&1 || true
    wait_gone "$pid" 2 && return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" "$STOP_TIMEOUT" && return 0
  log "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 5 || log "$name (pid $pid) is still there after SIGKILL"
}

# Removes the line of name from DIR/pids (a service stopped on its own).
forget_pid() {
  local name="$1"
  [[ -f "$DIR/pids" ]] || return 0
  grep -v "^$name " "$DIR/pids" >"$DIR/pids.tmp" || true
  mv "$DIR/pids.tmp" "$DIR/pids"
}

recorded_pid() {
  local name="$1"
  [[ -f "$DIR/pids" ]] || return 0
  awk -v name="$name" '$1 == name { print $2 }' "$DIR/pids" | tail -n 1
}

# Stops in reverse start order; the watcher running `down` itself is skipped.
stop_recorded() {
  [[ -f "$DIR/pids" ]] || return 0
  local lines=() line name pid i
  mapfile -t lines <"$DIR/pids"
  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    line="${lines[i]}"
    name="${line%% *}"
    pid="${line##* }"
    [[ "$pid" =~ ^[0-9]+$ && "$pid" != "$$" ]] || continue
    stop_process "$name" "$pid"
  done
  rm -f "$DIR/pids" "$DIR/env"
}

record_pid() { echo "$1 $2" >>"$DIR/pids"; }

stack_is_running() {
  [[ -s "$DIR/pids" && -f "$DIR/env" ]] || return 1
  local name pid
  while read -r name pid; do
    is_ours "$name" "$pid" || return 1
  done <"$DIR/pids"
}

# --- ports -----------------------------------------------------------------

USED_PORTS=" "

port_is_free() {
  local port="$1"
  if command -v ss >/dev/null 2>&1; then
    [[ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]
  else
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# Sets PORT. Random rather than sequential so stacks started side by side
# rarely collide; not in a subshell, so USED_PORTS remembers this run's picks.
pick_port() {
  local candidate tries
  if [[ -n "$FIXED_PORT" ]]; then  # service-up: the port the service had
    PORT="$FIXED_PORT"
    return 0
  fi
  for ((tries = 0; tries < 500; tries++)); do
    candidate=$((20000 + (RANDOM * 32768 + RANDOM) % 41000))
    [[ "$USED_PORTS" == *" $candidate "* ]] && continue
    if port_is_free "$candidate"; then
      USED_PORTS+="$candidate "
      PORT="$candidate"
      return 0
    fi
  done
  log "found no free port in 20000-60999"
  return 1
}

# Another stack may have won the port; the answer must come from our process.
listens_on() {
  local pid="$1" port="$2"
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$port" 2>/dev/null | grep -q "pid=$pid,"
}

# Polls `check ARGS…` until it succeeds (0), pid dies (1) or time runs out (2).
wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  shift
  while true; do
    "$@" && return 0
    is_alive "$pid" || return 1
    ((SECONDS < deadline)) || return 2
    sleep 0.1
  done
}

# Starts a server on a free port, and on another one when it exits at once
# (a parallel stack may take the port between check and bind). $1: the
# service (pid file and messages); $2: its log; $3: what the message says when
# it runs but never answers; $4: a function that starts it in the background
# on port $PORT and sets LAUNCHED_PID; $5 and on: its readiness check, called
# with the pid and the port after the arguments given. Leaves its port in PORT.
start_on_free_port() {
  local name="$1" logfile="$2" unanswered="$3" launch="$4" ready="$5" attempt status
  shift 5
  for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
    pick_port || fail_start "$name" "$logfile" "no free port"
    log "starting $name on 127.0.0.1:$PORT"
    "$launch"
    status=0
    wait_ready "$LAUNCHED_PID" "$ready" "$@" "$LAUNCHED_PID" "$PORT" || status=$?
    if [[ "$status" -eq 0 ]]; then
      record_pid "$name" "$LAUNCHED_PID"
      return 0
    fi
    if [[ "$status" -eq 2 ]]; then
      record_pid "$name" "$LAUNCHED_PID"
      fail_start "$name" "$logfile" "$unanswered on port $PORT within ${START_TIMEOUT}s"
    fi
    log "$name exited at once (port $PORT taken?); retrying on another port"
  done
  fail_start "$name" "$logfile" "exited on $PORT_ATTEMPTS ports"
}

# --- failures --------------------------------------------------------------

fail_start() {
  local name="$1" logfile="$2" why="$3"
  log "$name failed to start: $why"
  if [[ -f "$logfile" ]]; then
    log "last lines of $logfile:"
    tail -n 20 "$logfile" | sed 's/^/  | /' >&2
  fi
  # service-up leaves the rest of a running stack alone.
  [[ "$COMMAND" == up ]] && stop_recorded
  exit 2
}

on_interrupt() {
  log "interrupted; stopping what was started"
  stop_recorded
  exit 130
}

# --- servers ---------------------------------------------------------------

find_pg_bin() {
  local candidate
  for candidate in "${PG_BIN:-}" /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)" \
    $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) \
    "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"; do
    if [[ -n "$candidate" && -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

redis_answers() {
  local pid="$1" port="$2"
  [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]] && listens_on "$pid" "$port"
}

start_redis() {
  local logfile="$DIR/logs/redis.log"
  local persistence=(--appendonly no)
  [[ "$REDIS_AOF" -eq 1 ]] && persistence=(--appendonly yes --appendfsync everysec)
  mkdir -p "$DIR/redis"
  start_on_free_port redis "$logfile" "no answer to PING" launch_redis redis_answers
  REDIS_PORT="$PORT"
}

# For start_on_free_port, with start_redis's locals.
launch_redis() {
  redis-server --port "$PORT" --bind 127.0.0.1 --save "" "${persistence[@]}" \
    --dir "$DIR/redis" --daemonize no --logfile "" </dev/null >>"$logfile" 2>&1 &
  LAUNCHED_PID=$!
}

init_postgres() {
  local data="$DIR/postgres" logfile="$DIR/logs/postgres.log"
  mkdir -p "$data" "$DIR/pgsocket"
  touch "$logfile"
  if is_root; then
    chown postgres: "$data" "$DIR/pgsocket" "$logfile"
    if ! runuser -u postgres -- test -x "$DIR"; then
      fail_start postgres "$logfile" "user postgres cannot enter $DIR (chmod 755 it and its parents)"
    fi
  fi
  [[ -f "$data/PG_VERSION" ]] && return 0
  log "initdb $data"
  as_postgres "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    >>"$logfile" 2>&1 || fail_start postgres "$logfile" "initdb failed"
  # A throwaway test database: durability is traded for speed.
  cat >>"$data/postgresql.conf" <<EOF

# dev-stack.sh: loopback only, socket in the stack folder, no durability
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR/pgsocket'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

postgres_answers() {
  local pid="$1" port="$2"
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && listens_on "$pid" "$port"
}

postmaster_pid() {
  head -n 1 "$DIR/postgres/postmaster.pid" 2>/dev/null || true
}

start_postgres() {
  local logfile="$DIR/logs/postgres.log" attempt port pid status
  [[ -n "$PG_BIN" ]] || fail_start postgres /dev/null "no PostgreSQL binaries (initdb, pg_ctl) found"
  init_postgres
  for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
    pick_port || fail_start postgres "$logfile" "no free port"
    port="$PORT"
    log "starting postgres on 127.0.0.1:$port"
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$DIR/postgres" -l "$logfile" -o "-p $port" -w -t "$START_TIMEOUT" \
      start </dev/null >>"$logfile" 2>&1; then
      pid="$(postmaster_pid)"
      if [[ -n "$pid" ]] && is_alive "$pid"; then
        record_pid postgres "$pid"
        fail_start postgres "$logfile" "not ready on port $port within ${START_TIMEOUT}s"
      fi
      log "postgres did not start (port $port taken?); retrying on another port"
      continue
    fi
    pid="$(postmaster_pid)"
    record_pid postgres "$pid"
    status=0
    wait_ready "$pid" postgres_answers "$pid" "$port" || status=$?
    [[ "$status" -eq 0 ]] || fail_start postgres "$logfile" "pg_isready fails on port $port"
    create_database "$port" "$logfile"
    PG_PORT="$port"
    return 0
  done
  fail_start postgres "$logfile" "could not start on $PORT_ATTEMPTS ports"
}

create_database() {
  local port="$1" logfile="$2" exists
  exists="$("$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'blobferry'" 2>>"$logfile")" ||
    fail_start postgres "$logfile" "psql cannot query port $port"
  [[ "$exists" == 1 ]] && return 0
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres blobferry >>"$logfile" 2>&1 ||
    fail_start postgres "$logfile" "createdb blobferry failed"
}

s3rver_answers() {
  local pid="$1" port="$2" bucket="$3" code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' -I "http://127.0.0.1:$port/$bucket" 2>/dev/null)" || return 1
  [[ "$code" == 200 ]] && listens_on "$pid" "$port"
}

# One s3rver per bucket: "source" and "target" behave like two accounts.
start_s3rver() {
  local bucket="$1" logfile="$DIR/logs/s3-$1.log" data="$DIR/s3-$1"
  [[ -x "$S3RVER" ]] || fail_start "s3-$bucket" /dev/null "$S3RVER is missing (run ops/install-deps.sh)"
  mkdir -p "$data"
  start_on_free_port "s3-$bucket" "$logfile" "bucket $bucket not answering" launch_s3rver s3rver_answers_for "$bucket"
  S3_PORTS[$bucket]="$PORT"
}

# For start_on_free_port, with start_s3rver's locals.
launch_s3rver() {
  NODE_OPTIONS="--openssl-legacy-provider${NODE_OPTIONS:+ $NODE_OPTIONS}" \
    "$S3RVER" --directory "$data" --port "$PORT" --address 127.0.0.1 --configure-bucket "$bucket" \
    </dev/null >>"$logfile" 2>&1 &
  LAUNCHED_PID=$!
}

s3rver_answers_for() {
  local bucket="$1" pid="$2" port="$3"
  s3rver_answers "$pid" "$port" "$bucket"
}

# s3rver writes an object's files in place, not atomically: a stop in the
# middle of a PUT can leave an empty metadata file, after which every listing
# of the bucket (its readiness check too) answers 500. That PUT never
# completed (S3 would have stored nothing), so its files go before a restart.
repair_s3rver_data() {
  local data="$1" meta base
  while IFS= read -r -d '' meta; do
    base="${meta%._S3rver_metadata.json}"
    log "removing the files of a PUT the stop interrupted: $base"
    rm -f -- "$meta" "$base._S3rver_object" "$base._S3rver_object.md5"
  done < <(find "$data" -name '*._S3rver_metadata.json' -size 0 -print0)
}

# --- Ceph RADOS Gateway (opt-in) --------------------------------------------
# One monitor, one OSD on memstore (objects in RAM, capped by
# memstore_device_bytes) and radosgw with the beast frontend, all on
# loopback, with every file under DIR/rgw and DIR/logs and a fresh fsid, so
# stacks run side by side. No ceph-mgr: nothing here needs one.

RGW_CONF_DIR=""

# Not for servers: `ceph_tool server &` would make $! the pid of a subshell.
ceph_tool() {
  local tool="$1"
  shift
  "$tool" -c "$RGW_CONF_DIR/ceph.conf" "$@"
}

# The monitor's address is in ceph.conf, so a new monitor port means a new file.
write_ceph_conf() {
  local mon_port="$1" fsid="$2" dir="$RGW_CONF_DIR"
  cat >"$dir/ceph.conf.tmp" <<EOF
# Written by ops/dev-stack.sh: a throwaway single-node cluster for tests.
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$mon_port]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_ipv6 = false
# No cephx: with auth none every messenger mode must be crc, or radosgw hangs
# at start ("get_initial_auth_request returned -13").
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_cluster_mode = crc
ms_service_mode = crc
ms_client_mode = crc
ms_mon_cluster_mode = crc
ms_mon_service_mode = crc
ms_mon_client_mode = crc
keyring = /dev/null
# Every file in the stack folder.
run_dir = $dir/run
admin_socket = $dir/run/\$cluster-\$name.asok
pid_file = $dir/run/\$cluster-\$name.pid
crash_dir = $dir/crash
mon_data = $dir/mon/\$id
osd_data = $dir/osd/\$id
rgw_data = $dir/radosgw
log_file = $DIR/logs/ceph-\$name.log
mon_cluster_log_file = $DIR/logs/ceph-cluster.log
log_max_recent = 500
# One OSD, objects in RAM, pools of one copy.
osd_objectstore = memstore
memstore_device_bytes = $RGW_MEMSTORE_BYTES
osd_memory_target = 268435456
osd_op_num_shards = 2
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 2
mon_data_avail_crit = 1
client_mount_timeout = $START_TIMEOUT
rgw_thread_pool_size = 32
EOF
  mv "$dir/ceph.conf.tmp" "$dir/ceph.conf"
}

ceph_mon_answers() {
  local pid="$1" port="$2"
  listens_on "$pid" "$port" && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

start_ceph_mon() {
  local logfile="$DIR/logs/ceph-mon.a.log" fsid
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  start_on_free_port rgw-mon "$logfile" "not listening" launch_ceph_mon ceph_mon_answers
}

# For start_on_free_port, with start_ceph_mon's locals: a fresh monitor store
# for each port tried, since the port is written into its map.
launch_ceph_mon() {
  rm -rf "$RGW_CONF_DIR/mon" "$RGW_CONF_DIR/monmap"
  mkdir -p "$RGW_CONF_DIR/mon/a"
  write_ceph_conf "$PORT" "$fsid"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$PORT]" "$RGW_CONF_DIR/monmap" \
    >>"$logfile" 2>&1 || fail_start rgw-mon "$logfile" "monmaptool failed"
  ceph_tool ceph-mon --mkfs -i a --monmap "$RGW_CONF_DIR/monmap" >>"$logfile" 2>&1 ||
    fail_start rgw-mon "$logfile" "ceph-mon --mkfs failed"
  ceph-mon -c "$RGW_CONF_DIR/ceph.conf" -f -i a </dev/null >>"$logfile" 2>&1 &
  LAUNCHED_PID=$!
}

# The OSD picks its own ports (ms_bind_port_min..max, 6800-7300, loopback
# only) and moves to the next one when another stack's OSD has it.
start_ceph_osd() {
  local logfile="$DIR/logs/ceph-osd.0.log" uuid id pid
  uuid="$(cat /proc/sys/kernel/random/uuid)"
  id="$(ceph_tool ceph --connect-timeout "$START_TIMEOUT" osd new "$uuid" 2>>"$logfile")" ||
    fail_start rgw-osd "$logfile" "the monitor did not register an OSD (ceph osd new)"
  [[ "$id" == 0 ]] || fail_start rgw-osd "$logfile" "expected OSD id 0, the monitor gave: $id"
  mkdir -p "$RGW_CONF_DIR/osd/0"
  log "starting ceph-osd (memstore, at most $RGW_MEMSTORE_BYTES bytes)"
  ceph_tool ceph-osd -i 0 --mkfs --osd-uuid "$uuid" >>"$logfile" 2>&1 ||
    fail_start rgw-osd "$logfile" "ceph-osd --mkfs failed"
  ceph-osd -c "$RGW_CONF_DIR/ceph.conf" -f -i 0 </dev/null >>"$logfile" 2>&1 &
  pid=$!
  record_pid rgw-osd "$pid"
  # radosgw creates its pools at start and waits for this OSD: its readiness
  # check covers the OSD's too.
}

# The anonymous bucket list, answered by our radosgw.
rgw_answers() {
  local pid="$1" port="$2" code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null)" || return 1
  [[ "$code" == 200 ]] && listens_on "$pid" "$port"
}

# radosgw waits forever for a dead monitor or OSD, so its wait checks them.
rgw_cluster_alive() {
  local name pid
  for name in rgw-mon rgw-osd; do
    pid="$(recorded_pid "$name")"
    [[ -n "$pid" ]] && is_ours "$name" "$pid" || return 1
  done
}

start_radosgw() {
  local logfile="$DIR/logs/ceph-client.rgw.log"
  start_on_free_port rgw "$logfile" "no answer to GET /" launch_radosgw rgw_ready
  RGW_PORT="$PORT"
}

# For start_on_free_port, with start_radosgw's locals.
launch_radosgw() {
  radosgw -c "$RGW_CONF_DIR/ceph.conf" -f -n client.rgw --rgw_frontends "beast endpoint=127.0.0.1:$PORT" \
    </dev/null >>"$logfile" 2>&1 &
  LAUNCHED_PID=$!
}

# rgw_answers, failing at once rather than at the timeout when radosgw's
# cluster is gone (for start_on_free_port, with start_radosgw's locals).
rgw_ready() {
  rgw_answers "$@" && return 0
  if ! rgw_cluster_alive; then
    record_pid rgw "$1"
    fail_start rgw "$logfile" "its ceph-mon or ceph-osd is not running (see $DIR/logs/ceph-mon.a.log and ceph-osd.0.log)"
  fi
  return 1
}

# curl 7.88 signs the empty payload's hash without sending it, and radosgw
# then assumes UNSIGNED-PAYLOAD: saying so outright makes both agree.
rgw_curl() {
  curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user "$RGW_ACCESS_KEY_ID:$RGW_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

create_rgw_user_and_buckets() {
  local logfile="$DIR/logs/ceph-client.admin.log" answer="$DIR/logs/rgw-create-bucket.log" bucket code
  log "creating the RGW user $RGW_ACCESS_KEY_ID and buckets ${RGW_BUCKETS[*]}"
  ceph_tool radosgw-admin user create --uid blobferry --display-name "blobferry dev stack" \
    --access-key "$RGW_ACCESS_KEY_ID" --secret-key "$RGW_SECRET_ACCESS_KEY" >/dev/null 2>>"$logfile" ||
    fail_start rgw "$logfile" "radosgw-admin user create failed"
  for bucket in "${RGW_BUCKETS[@]}"; do
    code="$(rgw_curl -o "$answer" -w '%{http_code}' -X PUT "http://127.0.0.1:$RGW_PORT/$bucket")" ||
      code="nothing (curl exit $?)"
    [[ "$code" == 200 ]] || fail_start rgw "$answer" "PUT /$bucket answered $code"
  done
}

start_rgw() {
  local tool
  for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
    command -v "$tool" >/dev/null 2>&1 ||
      fail_start rgw /dev/null "$tool is missing (run ops/install-deps.sh: Debian's ceph-mon, ceph-osd, radosgw, ceph-common)"
  done
  RGW_CONF_DIR="$DIR/rgw"
  rm -rf "$RGW_CONF_DIR"  # a fresh cluster each time
  mkdir -p "$RGW_CONF_DIR/run" "$RGW_CONF_DIR/crash" "$RGW_CONF_DIR/radosgw"
  start_ceph_mon
  start_ceph_osd
  start_radosgw
  create_rgw_user_and_buckets
}

# Outlives `up`, and runs `down` once the owner has gone without doing so.
start_watcher() {
  local owner="$1"
  (
    trap - INT TERM EXIT
    while is_alive "$owner" && [[ -f "$DIR/pids" ]]; do sleep 1; done
    if [[ -f "$DIR/pids" ]]; then exec bash "$SCRIPT" down --dir "$DIR"; fi
  ) </dev/null >>"$DIR/logs/watcher.log" 2>&1 &
  record_pid watcher "$!"
}

# --- outputs ---------------------------------------------------------------

write_env() {
  local env="$DIR/env.tmp"
  : >"$env"
  if [[ -n "$REDIS_PORT" ]]; then
    echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0" >>"$env"
  fi
  if [[ -n "$PG_PORT" ]]; then
    cat >>"$env" <<EOF
DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/blobferry
PGHOST=127.0.0.1
PGPORT=$PG_PORT
PGUSER=postgres
PGDATABASE=blobferry
EOF
  fi
  if [[ -n "${S3_PORTS[source]:-}" ]]; then
    cat >>"$env" <<EOF
S3_SOURCE_ENDPOINT=http://127.0.0.1:${S3_PORTS[source]}
S3_TARGET_ENDPOINT=http://127.0.0.1:${S3_PORTS[target]}
S3_SOURCE_DIR=$DIR/s3-source
S3_TARGET_DIR=$DIR/s3-target
AWS_ACCESS_KEY_ID=S3RVER
AWS_SECRET_ACCESS_KEY=S3RVER
EOF
  fi
  if [[ -n "$RGW_PORT" ]]; then
    cat >>"$env" <<EOF
RGW_ENDPOINT=http://127.0.0.1:$RGW_PORT
RGW_ACCESS_KEY_ID=$RGW_ACCESS_KEY_ID
RGW_SECRET_ACCESS_KEY=$RGW_SECRET_ACCESS_KEY
EOF
  fi
  cat >>"$env" <<EOF
BLOBFERRY_STORAGE_CONFIG=$DIR/storage.yml
STACK_DIR=$DIR
EOF
  mv "$env" "$DIR/env"
}

s3_service_yaml() {
  local name="$1" port="$2"
  cat <<EOF
$name:
  service: S3
  access_key_id: <%= ENV.fetch("AWS_ACCESS_KEY_ID", "S3RVER") %>
  secret_access_key: <%= ENV.fetch("AWS_SECRET_ACCESS_KEY", "S3RVER") %>
  region: us-east-1
  bucket: $name
  endpoint: http://127.0.0.1:$port
  force_path_style: true

EOF
}

# Service rgw_source uses bucket rgw-source of the one radosgw, and so on.
rgw_service_yaml() {
  local name="$1" port="$2"
  cat <<EOF
$name:
  service: S3
  access_key_id: <%= ENV.fetch("RGW_ACCESS_KEY_ID", "$RGW_ACCESS_KEY_ID") %>
  secret_access_key: <%= ENV.fetch("RGW_SECRET_ACCESS_KEY", "$RGW_SECRET_ACCESS_KEY") %>
  region: us-east-1
  bucket: ${name//_/-}
  endpoint: http://127.0.0.1:$port
  force_path_style: true

EOF
}

write_storage_yml() {
  mkdir -p "$DIR/disk"
  {
    echo "# Written by ops/dev-stack.sh: the dev stack's services, as a Rails app's config/storage.yml."
    if [[ -n "${S3_PORTS[source]:-}" ]]; then
      s3_service_yaml source "${S3_PORTS[source]}"
      s3_service_yaml target "${S3_PORTS[target]}"
    fi
    if [[ -n "$RGW_PORT" ]]; then
      rgw_service_yaml rgw_source "$RGW_PORT"
      rgw_service_yaml rgw_target "$RGW_PORT"
    fi
    cat <<EOF
local:
  service: Disk
  root: $DIR/disk
EOF
  } >"$DIR/storage.yml"
}

# --- commands --------------------------------------------------------------

cmd_up() {
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  if stack_is_running; then
    log "stack in $DIR is already running"
    cat "$DIR/env"
    return 0
  fi
  stop_recorded  # leftovers of a stack that half died
  mkdir -p "$DIR/logs"
  trap on_interrupt INT TERM
  REDIS_PORT="" PG_PORT="" RGW_PORT=""
  declare -gA S3_PORTS=()
  [[ ",$ONLY," == *,redis,* ]] && start_redis
  [[ ",$ONLY," == *,postgres,* ]] && start_postgres
  if [[ ",$ONLY," == *,s3,* ]]; then
    start_s3rver source
    start_s3rver target
  fi
  [[ ",$ONLY," == *,rgw,* ]] && start_rgw
  [[ -n "$OWNER_PID" ]] && start_watcher "$OWNER_PID"
  echo "REDIS_AOF=$REDIS_AOF" >"$DIR/options"
  write_storage_yml
  write_env
  trap - INT TERM
  log "stack running in $DIR"
  cat "$DIR/env"
}

cmd_env() {
  [[ -f "$DIR/env" ]] || die_usage "no stack in $DIR (run: ops/dev-stack.sh up --dir $DIR)"
  cat "$DIR/env"
}

cmd_down() {
  if [[ ! -d "$DIR" ]]; then
    log "no stack in $DIR"
    return 0
  fi
  DIR="$(cd "$DIR" && pwd)"
  mkdir -p "$DIR/logs"
  stop_recorded
  log "stack in $DIR stopped"
}

# The port NAME listens on, from the env file of the running stack.
service_port() {
  local name="$1" value
  case "$name" in
    redis) value="$(grep '^REDIS_URL=' "$DIR/env")"; value="${value##*:}"; value="${value%%/*}" ;;
    postgres) value="$(grep '^PGPORT=' "$DIR/env")"; value="${value#PGPORT=}" ;;
    s3-source) value="$(grep '^S3_SOURCE_ENDPOINT=' "$DIR/env")"; value="${value##*:}" ;;
    s3-target) value="$(grep '^S3_TARGET_ENDPOINT=' "$DIR/env")"; value="${value##*:}" ;;
    rgw) value="$(grep '^RGW_ENDPOINT=' "$DIR/env" || true)"; value="${value##*:}" ;;
  esac
  echo "$value"
}

check_service_name() {
  local name="$1"
  [[ "$name" =~ ^(redis|postgres|s3-source|s3-target|rgw)$ ]] ||
    die_usage "service-down and service-up take redis, postgres, s3-source, s3-target or rgw, not: ${name:-nothing}"
  [[ -f "$DIR/env" ]] || die_usage "no stack in $DIR (run: ops/dev-stack.sh up --dir $DIR)"
  [[ -n "$(service_port "$name")" ]] || die_usage "the stack in $DIR has no $name"
}

cmd_service_down() {
  local name="$1" pid
  DIR="$(cd "$DIR" && pwd)"
  check_service_name "$name"
  pid="$(recorded_pid "$name")"
  if [[ -z "$pid" ]]; then
    log "$name is not running"
    return 0
  fi
  stop_process "$name" "$pid"
  forget_pid "$name"
  log "$name stopped"
}

cmd_service_up() {
  local name="$1" pid
  DIR="$(cd "$DIR" && pwd)"
  check_service_name "$name"
  pid="$(recorded_pid "$name")"
  if [[ -n "$pid" ]] && is_ours "$name" "$pid"; then
    log "$name is already running (pid $pid)"
    return 0
  fi
  forget_pid "$name"
  [[ -f "$DIR/options" ]] && REDIS_AOF="$(sed -n 's/^REDIS_AOF=//p' "$DIR/options")"
  FIXED_PORT="$(service_port "$name")"
  PORT_ATTEMPTS=3  # the old process's port may linger a moment
  declare -gA S3_PORTS=()
  case "$name" in
    redis) start_redis ;;
    postgres) start_postgres ;;
    s3-source) repair_s3rver_data "$DIR/s3-source"; start_s3rver source ;;
    s3-target) repair_s3rver_data "$DIR/s3-target"; start_s3rver target ;;
    rgw)
      # Only radosgw restarts; its monitor and OSD hold the objects.
      RGW_CONF_DIR="$DIR/rgw"
      rgw_cluster_alive || die_usage "rgw's ceph-mon or ceph-osd is not running: restart the stack (down, up)"
      start_radosgw ;;
  esac
  log "$name running again on 127.0.0.1:$FIXED_PORT"
}

main() {
  local command="" only="redis,postgres,s3" part
  DIR="$ROOT/.stack"
  REDIS_AOF=0
  OWNER_PID=""
  FIXED_PORT=""
  local service=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --dir) [[ $# -ge 2 ]] || die_usage "--dir needs a folder"; DIR="$2"; shift 2 ;;
      --dir=*) DIR="${1#--dir=}"; shift ;;
      --only) [[ $# -ge 2 ]] || die_usage "--only needs a list"; only="$2"; shift 2 ;;
      --only=*) only="${1#--only=}"; shift ;;
      --redis-aof) REDIS_AOF=1; shift ;;
      --owner-pid) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die_usage "--owner-pid needs a pid"; OWNER_PID="$2"; shift 2 ;;
      up | down | env) [[ -z "$command" ]] || die_usage "one command only"; command="$1"; shift ;;
      service-down | service-up)
        [[ -z "$command" ]] || die_usage "one command only"
        [[ $# -ge 2 ]] || die_usage "$1 needs a service name"
        command="$1"; service="$2"; shift 2 ;;
      *) die_usage "unknown argument: $1" ;;
    esac
  done
  [[ -n "$DIR" ]] || die_usage "--dir must not be empty"
  for part in ${only//,/ }; do
    [[ "$part" == redis || "$part" == postgres || "$part" == s3 || "$part" == rgw ]] ||
      die_usage "--only takes redis, postgres, s3 and rgw, not: $part"
  done
  [[ ",$only,$service," != *,rgw,* || "$RGW_MEMSTORE_BYTES" =~ ^[0-9]+$ ]] ||
    die_usage "DEV_STACK_RGW_MEMSTORE_BYTES must be a number of bytes, not: $RGW_MEMSTORE_BYTES"
  ONLY="$only"
  COMMAND="$command"
  PG_BIN="$(find_pg_bin || true)"
  case "$command" in
    up) cmd_up ;;
    down) cmd_down ;;
    env) cmd_env ;;
    service-down) cmd_service_down "$service" ;;
    service-up) cmd_service_up "$service" ;;
    "") usage >&2; exit 2 ;;
  esac
}

main "$@"
