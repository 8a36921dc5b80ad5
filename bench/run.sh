#!/usr/bin/env bash
# Benchmarks blobferry (embedded and distributed) against rclone on the same two S3 servers, in one run, as ratios.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"

usage() {
  cat <<EOF
Usage: bench/run.sh [OPTIONS]

Starts its own dev stack (Redis, PostgreSQL, two s3rver) in a temporary
folder, seeds the source bucket, and copies each data set with
  embedded     blobferry migrate --source listing
  distributed  blobferry enqueue --source listing + 2 workers (concurrency/2 each)
  rclone       rclone copy (S3 remotes on the same endpoints)
alternating the order every round, wiping the target between runs. Then the
control-plane figures (enqueue rate, Redis bytes per job, validate by listing
against validate by HEAD) and, unless --no-ceiling, the engine ceiling
against nginx. Prints medians and ratios blobferry/rclone, writes
OUT/results.csv, OUT/summary.txt, OUT/control.csv, OUT/ceiling.csv and
OUT/chart.png.

Options:
  --rounds N          rounds per data set (default 3)
  --sets LIST         comma-separated subset of small,large,huge (default all)
                      small = 2,000 x 32 KiB, large = 8 x 64 MiB, huge = 1 x 1 GiB
  --concurrency N     copies in flight per tool (default 16)
  --smoke             tiny data, one round, small control plane, no engine
                      ceiling, and the scale run's smoke form (2,000 objects
                      against nginx): checks the harness runs (CI), measures
                      nothing
  --no-control        skip the control-plane figures
  --no-ceiling        skip the engine ceiling (nginx)
  --control-rows N    rows of the blob table for the enqueue rate (default 1000000)
  --validate-objects N  objects on the target for validate (default 100000)
  --build-dir DIR     where the Release blobferry is (default $ROOT/build;
                      built there when missing)
  --out DIR           results folder (default $BENCH/out)
  -h, --help          this help

Exit codes: 0 every run copied everything, 1 a run was incomplete or
corrupt, 2 usage or setup error.
EOF
}

ROUNDS=3
SETS="small,large,huge"
CONCURRENCY=16
SMOKE=0
CONTROL=1
CEILING=1
CONTROL_ROWS=1000000
VALIDATE_OBJECTS=100000
BUILD_DIR="$ROOT/build"
OUT="$BENCH/out"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --sets) SETS="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --no-control) CONTROL=0; shift ;;
    --no-ceiling) CEILING=0; shift ;;
    --control-rows) CONTROL_ROWS="$2"; shift 2 ;;
    --validate-objects) VALIDATE_OBJECTS="$2"; shift 2 ;;
    --build-dir) BUILD_DIR="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ && "$CONCURRENCY" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --rounds and --concurrency take positive numbers" >&2; exit 2; }
if [[ "$SMOKE" -eq 1 ]]; then
  ROUNDS=1 CEILING=0 CONTROL_ROWS=2000 VALIDATE_OBJECTS=300
fi

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 2; }

# --- tools -----------------------------------------------------------------

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

# Installs Debian packages that are missing; the harness needs only these few.
ensure_packages() {
  local missing=() package
  for package in "$@"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)" == installed ]] || missing+=("$package")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
    die "cannot install ${missing[*]} (run as root or install them)"
}

ensure_blobferry() {
  BIN="$BUILD_DIR/blobferry"
  if [[ ! -x "$BIN" ]]; then
    log "no $BIN: building Release"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$BUILD_DIR" --target blobferry -j"$(nproc)" >&2
  fi
  local type
  type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)"
  [[ "$type" == Release || "$SMOKE" -eq 1 ]] || log "warning: $BUILD_DIR is a '$type' build; figures need Release"
}

# --- stack -----------------------------------------------------------------

WORK=""
WORKER_PIDS=()
cleanup() {
  local status=$?
  # Workers of an interrupted distributed run would outlive us, retrying a stopped Redis.
  local child
  for child in "${WORKER_PIDS[@]}"; do  # GNU time's pids: the worker is its child
    pkill -TERM -P "$child" 2>/dev/null || true
  done
  if [[ -n "$WORK" ]]; then
    bash "$ROOT/ops/dev-stack.sh" down --dir "$WORK/stack" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  exit "$status"
}

start_stack() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/blobferry-bench.XXXXXX")"
  chmod 755 "$WORK"  # PostgreSQL runs as user postgres when we are root
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  local env_file="$WORK/stack.env"
  bash "$ROOT/ops/dev-stack.sh" up --dir "$WORK/stack" --owner-pid $$ >"$env_file" || die "dev stack did not start"
  set -a
  # shellcheck disable=SC1090
  source "$env_file"
  set +a
  unset AWS_CA_BUNDLE
  export RCLONE_CONFIG_SRC_TYPE=s3 RCLONE_CONFIG_SRC_PROVIDER=Other RCLONE_CONFIG_SRC_ENDPOINT="$S3_SOURCE_ENDPOINT"
  export RCLONE_CONFIG_SRC_ACCESS_KEY_ID=S3RVER RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY=S3RVER RCLONE_CONFIG_SRC_REGION=us-east-1
  export RCLONE_CONFIG_DST_TYPE=s3 RCLONE_CONFIG_DST_PROVIDER=Other RCLONE_CONFIG_DST_ENDPOINT="$S3_TARGET_ENDPOINT"
  export RCLONE_CONFIG_DST_ACCESS_KEY_ID=S3RVER RCLONE_CONFIG_DST_SECRET_ACCESS_KEY=S3RVER RCLONE_CONFIG_DST_REGION=us-east-1
  export RCLONE_CONFIG=/dev/null
}

# --- data sets -------------------------------------------------------------

# name count bytes-per-object
set_shape() {
  local name="$1"
  if [[ "$SMOKE" -eq 1 ]]; then
    case "$name" in
      small) echo "20 32768" ;;
      large) echo "2 $((12 * 1024 * 1024))" ;;
      huge) echo "1 $((40 * 1024 * 1024))" ;;
    esac
  else
    case "$name" in
      small) echo "2000 32768" ;;
      large) echo "8 $((64 * 1024 * 1024))" ;;
      huge) echo "1 $((1024 * 1024 * 1024))" ;;
    esac
  fi
}

# s3rver keeps an object as KEY._S3rver_object (+ .md5 and _metadata.json)
# and reads the folder on every request, so writing files is a much quicker
# seed than uploading, and the target is wiped by deleting its folder.
seed_set() {
  local name="$1" count="$2" size="$3" dir="$S3_SOURCE_DIR/source/$1"
  mkdir -p "$dir"
  log "seeding $name: $count x $size bytes"
  head -c "$((count * size))" /dev/urandom |
    split -b "$size" -a 5 -d --additional-suffix=._S3rver_object - "$dir/obj-"
  (cd "$dir" && md5sum -- *._S3rver_object) | awk -v dir="$dir" '{
    file = dir "/" $2 ".md5"; printf "%s", $1 > file; close(file)
    base = $2; sub(/\._S3rver_object$/, "", base)
    meta = dir "/" base "._S3rver_metadata.json"
    printf "{\"content-type\":\"application/octet-stream\"}" > meta; close(meta)
    print base, $1
  }' >"$WORK/sums-$name"
}

wipe_target() { rm -rf "$S3_TARGET_DIR/target/$1"; }

# Every object arrived, and a sample (first, middle, last) has the source's MD5:
# a run that lost or mangled objects must not pass as a fast one.
check_target() {
  local name="$1" count="$2" dir="$S3_TARGET_DIR/target/$1" found line key md5 actual
  found="$(find "$dir" -name '*._S3rver_object' 2>/dev/null | wc -l)"
  if [[ "$found" -ne "$count" ]]; then
    log "  INCOMPLETE: $found of $count objects of $name on the target"
    return 1
  fi
  for line in 1 $(((count + 1) / 2)) "$count"; do
    read -r key md5 < <(sed -n "${line}p" "$WORK/sums-$name")
    actual="$(md5sum <"$dir/$key._S3rver_object" | cut -d' ' -f1)"
    if [[ "$actual" != "$md5" ]]; then
      log "  CORRUPT: $name/$key has MD5 $actual, source $md5"
      return 1
    fi
  done
}

# --- runs ------------------------------------------------------------------

# GNU time's "%e %U %S %M": wall, user, sys seconds and peak RSS in KiB, on
# the file's last line (a failed command's exit status comes before it).
TIME_FORMAT="%e %U %S %M"

timed() {
  local file="$1"
  shift
  /usr/bin/time -f "$TIME_FORMAT" -o "$file" "$@"
}

now() { date +%s.%N; }
sum() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }

# Sets WALL USER SYS RSS for one tool on one data set; returns the copier's status.
run_embedded() {
  local name="$1" migration="$2" t="$WORK/time.embedded" status=0
  timed "$t" "$BIN" migrate --from source --to target --source listing --prefix "$name/" \
    --concurrency "$CONCURRENCY" --migration "$migration" --no-progress --log-level warn \
    >>"$WORK/logs/embedded.log" 2>&1 || status=$?
  read -r WALL USER SYS RSS < <(tail -n 1 "$t") || true
  return "$status"
}

# enqueue first (workers started on an empty queue would exit at once), then
# two workers side by side; wall is the whole, CPU the sum, RSS the sum of
# the workers' peaks (the enqueuer has exited before they start).
run_distributed() {
  local name="$1" migration="$2" status=0 started per_worker=$(((CONCURRENCY + 1) / 2)) pids=() pid
  local u s r e_rss w_rss=0 user=0 sys=0 i
  started="$(now)"
  timed "$WORK/time.enqueue" "$BIN" enqueue --migration "$migration" --from source --to target \
    --source listing --prefix "$name/" --log-level warn >>"$WORK/logs/distributed.log" 2>&1 || status=$?
  for i in 1 2; do
    /usr/bin/time -f "$TIME_FORMAT" -o "$WORK/time.worker$i" "$BIN" worker --migration "$migration" \
      --concurrency "$per_worker" --exit-when-empty --log-level warn >>"$WORK/logs/distributed.log" 2>&1 &
    pids+=($!)
    WORKER_PIDS+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
  WALL="$(sum "$(now)" "-$started")"
  read -r _ u s e_rss < <(tail -n 1 "$WORK/time.enqueue") || true
  user="$u" sys="$s"
  for i in 1 2; do
    read -r _ u s r < <(tail -n 1 "$WORK/time.worker$i") || true
    user="$(sum "$user" "$u")" sys="$(sum "$sys" "$s")" w_rss=$((w_rss + r))
  done
  USER="$user" SYS="$sys" RSS=$((w_rss > e_rss ? w_rss : e_rss))
  return "$status"
}

run_rclone() {
  local name="$1" t="$WORK/time.rclone" status=0
  timed "$t" rclone copy "src:source/$name" "dst:target/$name" --transfers "$CONCURRENCY" \
    --checkers "$CONCURRENCY" --s3-no-check-bucket >>"$WORK/logs/rclone.log" 2>&1 || status=$?
  read -r WALL USER SYS RSS < <(tail -n 1 "$t") || true
  return "$status"
}

# CPU seconds an s3rver has used so far (utime + stime): shows how much of a
# run's wall time the servers, not the copier, account for.
server_cpu() {
  local pid
  pid="$(awk -v n="s3-$1" '$1 == n { print $2 }' "$WORK/stack/pids")"
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$pid/stat"
}

FAILED_RUNS=0
run_one() {
  local tool="$1" name="$2" round="$3" count="$4" size="$5" ok=1 load
  wipe_target "$name"
  sync
  load="$(cut -d' ' -f1 /proc/loadavg)"
  WALL=0 USER=0 SYS=0 RSS=0
  local src_before dst_before src_cpu dst_cpu
  src_before="$(server_cpu source)" dst_before="$(server_cpu target)"
  "run_$tool" "$name" "bench-$name-$round-$tool" || ok=0
  src_cpu="$(sum "$(server_cpu source)" "-$src_before")" dst_cpu="$(sum "$(server_cpu target)" "-$dst_before")"
  check_target "$name" "$count" || ok=0
  if [[ "$ok" -ne 1 ]]; then
    FAILED_RUNS=$((FAILED_RUNS + 1))
    log "  last lines of $tool's log:"
    tail -n 5 "$WORK/logs/$tool.log" | sed 's/^/  | /' >&2
  fi
  printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$(date -u +%FT%TZ)" "$load" "$round" "$name" "$tool" \
    "$count" "$((count * size))" "$WALL" "$USER" "$SYS" "$(sum "$USER" "$SYS")" "$RSS" "$ok" "$src_cpu" "$dst_cpu" \
    >>"$OUT/results.csv"
  log "  round $round $name $tool: wall ${WALL}s cpu $(sum "$USER" "$SYS")s rss $((RSS / 1024)) MiB, s3rver cpu ${src_cpu}s + ${dst_cpu}s$([[ $ok -eq 1 ]] || echo ' FAILED')"
}

run_copies() {
  local tools=(embedded distributed rclone) name round i count size
  echo "timestamp,load1,round,set,tool,objects,bytes,wall_s,user_s,sys_s,cpu_s,rss_kib,ok,s3_source_cpu_s,s3_target_cpu_s" >"$OUT/results.csv"
  for name in ${SETS//,/ }; do
    read -r count size < <(set_shape "$name")
    seed_set "$name" "$count" "$size"
    for ((round = 1; round <= ROUNDS; round++)); do
      # Each round starts with the next tool, so no tool always runs first (or last).
      for ((i = 0; i < 3; i++)); do
        run_one "${tools[(round - 1 + i) % 3]}" "$name" "$round" "$count" "$size"
      done
    done
    wipe_target "$name"
    rm -rf "$S3_SOURCE_DIR/source/$name"  # the huge set would otherwise sit on disk twice
  done
}

main() {
  ensure_packages time gnuplot-nox rclone
  ensure_blobferry
  mkdir -p "$OUT"
  start_stack
  mkdir -p "$WORK/logs"
  log "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); blobferry $("$BIN" --version 2>/dev/null || echo '?'); $(rclone version 2>/dev/null | head -n 1)"
  run_copies
  bash "$BENCH/summarize.sh" "$OUT" | tee "$OUT/summary.txt"
  if [[ "$CONTROL" -eq 1 ]]; then
    BIN="$BIN" WORK="$WORK" bash "$BENCH/control_plane.sh" "$CONTROL_ROWS" "$VALIDATE_OBJECTS" "$OUT/control.csv" |
      tee -a "$OUT/summary.txt"
  fi
  if [[ "$CEILING" -eq 1 ]]; then
    BIN="$BIN" WORK="$WORK" bash "$BENCH/engine_ceiling.sh" "$OUT/ceiling.csv" | tee -a "$OUT/summary.txt"
  fi
  # The scale run (bench/scale_run.sh) takes an hour; CI checks its harness on 2,000 objects.
  if [[ "$SMOKE" -eq 1 ]]; then
    bash "$BENCH/scale_run.sh" --smoke --build-dir "$BUILD_DIR" --out "$OUT" || FAILED_RUNS=$((FAILED_RUNS + 1))
  fi
  if [[ "$FAILED_RUNS" -gt 0 ]]; then
    log "$FAILED_RUNS run(s) did not copy everything intact (see $OUT/results.csv, ok=0)"
    exit 1
  fi
  log "results in $OUT (results.csv, summary.txt, chart.png)"
}

main
