#!/usr/bin/env bash
# Scale run: enqueue + N workers copying 100k/300k/1M small objects between two nginx servers (and RGW at a smaller count), one CSV row per count.
set -euo pipefail
# A CA bundle in the environment (this machine sets one) makes rclone, which
# seeds RGW, refuse its HTTP transport; every endpoint here is plain HTTP.
unset AWS_CA_BUNDLE

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
# shellcheck source=bench/lib_nginx.sh
source "$BENCH/lib_nginx.sh"

usage() {
  cat <<EOF
Usage: bench/scale_run.sh [OPTIONS]

For each object count: flushes Redis, writes COUNT random objects of SIZE
straight into nginx's root with their manifest (sizes and MD5s), enqueues it
(timed), runs WORKERS worker processes with --exit-when-empty, each under
/usr/bin/time, samples Redis used_memory every 0.5 s, and checks the MD5 of
every copied object. Then, unless --rgw-count 0, the same against Ceph RGW
(bucket to bucket of one radosgw, addressed as 127.0.0.1 and localhost so the
engine streams the bytes instead of a server-side copy) at a count that RGW
can be seeded with in minutes. Appends one row per run to OUT/scale.csv.

Options:
  --counts LIST     comma-separated object counts (default 100000,300000,1000000)
  --size BYTES      bytes per object (default 1024)
  --workers N       worker processes (default 4)
  --concurrency N   --concurrency of each worker (default 16)
  --rgw-count N     objects of the RGW run, 0 for none (default 30000)
  --smoke           2,000 objects, nginx only: checks the harness runs (CI)
  --build-dir DIR   where blobferry is (default $ROOT/build)
  --out DIR         results folder (default $BENCH/out)
  -h, --help        this help

Environment: WORKER_FLAGS extra flags for every worker (say
"--transfers 256"); REDIS_URL an existing Redis to use instead of starting one
(its database is FLUSHDB'd before every count); TMPDIR where the objects are
written (a 1M run needs ~9 GB: 4 KiB blocks, source and target).

Exit codes: 0 every object copied intact, 1 a run lost or changed objects,
2 usage or setup error.
EOF
}

COUNTS="100000,300000,1000000"
SIZE=1024
WORKERS=4
CONCURRENCY=16
RGW_COUNT=30000
BUILD_DIR="$ROOT/build"
OUT="$BENCH/out"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --counts) COUNTS="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --rgw-count) RGW_COUNT="$2"; shift 2 ;;
    --smoke) COUNTS=2000 RGW_COUNT=0; shift ;;
    --build-dir) BUILD_DIR="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "scale: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "scale: $*" >&2; }
die() { log "$*"; exit 2; }

[[ "$COUNTS" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--counts takes positive numbers separated by commas, not: $COUNTS"
for option in SIZE WORKERS CONCURRENCY; do
  [[ "${!option}" =~ ^[1-9][0-9]*$ ]] || die "--${option,,} takes a positive number, not: ${!option}"
done
[[ "$RGW_COUNT" =~ ^[0-9]+$ ]] || die "--rgw-count takes a number (0 for no RGW run), not: $RGW_COUNT"
BIN="$BUILD_DIR/blobferry"
[[ -x "$BIN" ]] || die "no $BIN: build it (cmake --build $BUILD_DIR --target blobferry) or pass --build-dir"
[[ -x /usr/bin/time ]] || die "no /usr/bin/time: apt-get install time"

# --- stack -----------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/blobferry-scale.XXXXXX")"
DIR="$WORK/nginx"
NGINX_PID=""
WORKER_PIDS=()
SAMPLER_PID=""
STACK=0

stop_sampler() {
  stop_child "$SAMPLER_PID"
  SAMPLER_PID=""
}

cleanup() {
  local status=$? child
  for child in "${WORKER_PIDS[@]}"; do  # GNU time's pids: the worker is its child
    pkill -TERM -P "$child" 2>/dev/null || true
  done
  stop_sampler
  stop_nginx
  [[ "$STACK" -eq 0 ]] || bash "$ROOT/ops/dev-stack.sh" down --dir "$WORK/stack" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Redis (unless REDIS_URL is given) and RGW from the dev stack, as bench/run.sh does.
start_stack() {
  local only=()
  [[ -n "${REDIS_URL:-}" ]] || only+=(redis)
  [[ "$RGW_COUNT" -eq 0 ]] || only+=(rgw)
  [[ ${#only[@]} -gt 0 ]] || return 0
  chmod 755 "$WORK"
  STACK=1
  local IFS=,
  bash "$ROOT/ops/dev-stack.sh" up --dir "$WORK/stack" --only "${only[*]}" --owner-pid $$ >"$WORK/stack.env" ||
    die "dev stack (${only[*]}) did not start"
  set -a
  # shellcheck disable=SC1091
  source "$WORK/stack.env"
  set +a
}

# --- one run ---------------------------------------------------------------

redis() { redis-cli -u "$REDIS_URL" "$@"; }

# Redis's used_memory every 0.5 s into FILE until stopped: the peak of a run.
start_sampler() {
  local file="$1"
  (while true; do redis_memory >>"$file" 2>/dev/null || true; sleep 0.5; done) &
  SAMPLER_PID=$!
}

# CPU ticks of the server processes serving the run (nginx, or radosgw and its OSD).
server_ticks() {
  local pid ticks=0
  for pid in $SERVER_PIDS; do ticks=$((ticks + $(cpu_ticks "$pid"))); done
  echo "$ticks"
}

# Copies set NAME (COUNT objects, manifest $DIR/NAME.csv, already seeded) from
# FROM to TO; INTACT is the function that counts the objects that arrived intact.
measure() {
  local backend="$1" name="$2" count="$3" from="$4" to="$5" intact="$6" migration="scale-$2"
  local memory0 memory1 e0 e1 calls0 calls1 cpu0 cpu1 ticks0 ticks1 start end i pid status=0 copied
  local user=0 sys=0 rss=0 u s r load
  redis FLUSHDB >/dev/null
  memory0="$(redis_memory)"
  : >"$WORK/memory"
  start_sampler "$WORK/memory"
  e0="$(date +%s.%N)"
  enqueue_set "$name" "$count" "$migration" "$from" "$to" || die "enqueue of $name failed"
  e1="$(date +%s.%N)"
  memory1="$(redis_memory)"
  log "$backend $count: enqueued in $(echo "$e1 - $e0" | bc) s, Redis $(((memory1 - memory0) / count)) bytes per queued job"
  calls0="$(redis_calls)" cpu0="$(redis_cpu)" ticks0="$(server_ticks)" start="$(date +%s.%N)"
  WORKER_PIDS=()
  for ((i = 1; i <= WORKERS; i++)); do
    # shellcheck disable=SC2086  # WORKER_FLAGS is a list of flags
    BLOBFERRY_STORAGE_CONFIG="$DIR/storage.yml" /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.worker$i" \
      "$BIN" worker --migration "$migration" --concurrency "$CONCURRENCY" --exit-when-empty --log-level warn \
      ${WORKER_FLAGS:-} >>"$WORK/worker$i.log" 2>&1 &
    WORKER_PIDS+=($!)
  done
  for pid in "${WORKER_PIDS[@]}"; do wait "$pid" || status=$?; done
  WORKER_PIDS=()
  # load1 now: the MD5 check below (a minute at 1M, one core) would be in it later.
  end="$(date +%s.%N)" calls1="$(redis_calls)" cpu1="$(redis_cpu)" ticks1="$(server_ticks)" load="$(cut -d' ' -f1 /proc/loadavg)"
  stop_sampler
  if [[ "$status" -ne 0 ]]; then
    log "a worker exited with status $status; its log's last lines:"
    tail -n 5 "$WORK"/worker*.log | sed 's/^/  | /' >&2
  fi
  for ((i = 1; i <= WORKERS; i++)); do
    read -r _ u s r < <(tail -n 1 "$WORK/time.worker$i")
    user="$(echo "$user + $u" | bc)" sys="$(echo "$sys + $s" | bc)" rss=$((r > rss ? r : rss))
  done
  copied="$("$intact" "$name")"
  # Peak: the sampled maximum, and the two readings around the enqueue.
  local peak
  peak="$(sort -n "$WORK/memory" | tail -n 1)"
  peak=$((${peak:-0} > memory1 ? ${peak:-0} : memory1))
  awk -v b="$backend" -v c="$count" -v got="$copied" -v wall="$(echo "$end - $start" | bc)" -v w="$WORKERS" \
    -v conc="$CONCURRENCY" -v cpu="$(echo "$user + $sys" | bc)" -v rss="$rss" -v rcpu="$(echo "$cpu1 - $cpu0" | bc)" \
    -v calls="$((calls1 - calls0))" -v peak="$peak" -v queued="$((memory1 - memory0))" \
    -v ewall="$(echo "$e1 - $e0" | bc)" -v ticks="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" \
    -v load="$load" -v when="$(date -u +%FT%TZ)" 'BEGIN {
      printf "%s,%s,%d,%d,%d,%d,%.1f,%.0f,%.1f,%.1f,%.1f,%.2f,%.1f,%.1f,%.0f,%.1f,%s\n", when, b, c, got, w, conc,
        wall, c / wall, cpu * 1e6 / c, rss / 1024, rcpu * 1e6 / c, calls / c, peak / 1048576, queued / c,
        c / ewall, ticks / hz * 1e6 / c, load
    }' | tee -a "$CSV"
  [[ "$copied" -eq "$count" ]] || { log "$backend $count: $copied of $count objects arrived intact"; FAILED=$((FAILED + 1)); }
}

# --- nginx -----------------------------------------------------------------

run_nginx() {
  local count name
  find_nginx
  start_nginx
  write_services
  SERVER_PIDS="$NGINX_PID"
  for count in ${COUNTS//,/ }; do
    name="n$count"
    log "nginx $count: seeding $count x $SIZE bytes (load $(cut -d' ' -f1-3 /proc/loadavg))"
    seed_set "$name" "$count" "$SIZE"
    measure nginx "$name" "$count" nginx_source nginx_target copied_intact
    rm -rf "$DIR/www/src/$name" "$DIR/www/dst/$name"
  done
  stop_nginx
}

# --- RGW -------------------------------------------------------------------

# rclone's remote "rgw" (credentials from the environment, never on a command line).
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_RGW_TYPE=s3 RCLONE_CONFIG_RGW_PROVIDER=Ceph RCLONE_CONFIG_RGW_REGION=us-east-1

# How many objects of set NAME are in rgw-target with the source's MD5 (0 when
# any differs): one listing, since RGW's ETag of a single PUT is its MD5.
rgw_copied_intact() {
  local name="$1"
  rclone md5sum "rgw:rgw-target/$name" >"$WORK/rgw-sums" 2>>"$WORK/rclone.log" || { echo 0; return 0; }
  awk -F, -v n="$name" 'NR == FNR { want[$1] = $3; next } { if (want[n "/" $2] == $1) good++; else bad++ }
    END { print (bad ? 0 : good + 0) }' "$DIR/$name.csv" FS=' ' "$WORK/rgw-sums"
}

# Service NAME: BUCKET of the one radosgw at ENDPOINT.
rgw_service() {
  cat <<EOF
$1:
  service: S3
  access_key_id: <%= ENV.fetch("RGW_ACCESS_KEY_ID") %>
  secret_access_key: <%= ENV.fetch("RGW_SECRET_ACCESS_KEY") %>
  region: us-east-1
  bucket: $2
  endpoint: $3
  force_path_style: true
EOF
}

# Source and target buckets of one radosgw; the target addressed as localhost
# so the engine does not see one server and copy server-side.
write_rgw_services() {
  rgw_service rgw_scale_source rgw-source "$RGW_ENDPOINT" >>"$DIR/storage.yml"
  rgw_service rgw_scale_target rgw-target "${RGW_ENDPOINT/127.0.0.1/localhost}" >>"$DIR/storage.yml"
}

run_rgw() {
  local count="$RGW_COUNT" name="r$RGW_COUNT" started
  export RCLONE_CONFIG_RGW_ENDPOINT="$RGW_ENDPOINT" RCLONE_CONFIG_RGW_ACCESS_KEY_ID="$RGW_ACCESS_KEY_ID"
  export RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY="$RGW_SECRET_ACCESS_KEY"
  mkdir -p "$DIR"
  [[ -s "$DIR/storage.yml" ]] || : >"$DIR/storage.yml"
  write_rgw_services
  SERVER_PIDS="$(awk '$1 == "rgw" || $1 == "rgw-osd" { printf "%s ", $2 }' "$WORK/stack/pids")"
  log "rgw $count: seeding $count x $SIZE bytes by rclone (load $(cut -d' ' -f1-3 /proc/loadavg))"
  seed_set "$name" "$count" "$SIZE"
  started="$(date +%s)"
  rclone copy "$DIR/www/src/$name" "rgw:rgw-source/$name" --transfers 32 --s3-no-check-bucket \
    --no-check-dest 2>>"$WORK/rclone.log" || die "seeding RGW failed: $(tail -n 2 "$WORK/rclone.log")"
  log "rgw $count: seeded in $(($(date +%s) - started)) s"
  rm -rf "$DIR/www/src/$name"
  measure rgw "$name" "$count" rgw_scale_source rgw_scale_target rgw_copied_intact
}

# --- main ------------------------------------------------------------------

mkdir -p "$OUT" "$DIR"
CSV="$OUT/scale.csv"
[[ -s "$CSV" ]] || echo "timestamp,backend,objects,copied_intact,workers,concurrency,wall_s,objects_per_s,worker_cpu_us_per_object,worker_peak_rss_MiB,redis_cpu_us_per_job,redis_commands_per_job,redis_peak_MiB,redis_bytes_per_queued_job,enqueue_jobs_per_s,server_cpu_us_per_object,load1" >"$CSV"
FAILED=0
start_stack
log "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); blobferry $("$BIN" --version 2>/dev/null || echo '?'); worker flags: ${WORKER_FLAGS:-none}"
run_nginx
[[ "$RGW_COUNT" -eq 0 ]] || run_rgw
if [[ "$FAILED" -gt 0 ]]; then
  log "$FAILED run(s) did not copy every object intact (see $CSV, copied_intact)"
  exit 1
fi
column -t -s, "$CSV" >&2
log "rows appended to $CSV"
