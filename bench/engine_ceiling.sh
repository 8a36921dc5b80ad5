#!/usr/bin/env bash
# Engine ceiling: CPU per object of one blobferry worker copying between two near-free servers (nginx GET + WebDAV PUT),
# and the queue's cost: Redis commands and Redis CPU per job of two workers (queue.csv beside the ceiling's CSV).
# Called by bench/run.sh with the dev stack's environment (REDIS_URL), BIN and WORK set.
# Why nginx, and what of S3 it answers: bench/lib_nginx.sh.
set -euo pipefail
# shellcheck source=bench/lib_nginx.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_nginx.sh"

CSV="${1:?csv}"
: "${BIN:?}" "${WORK:?}" "${REDIS_URL:?}"
CONCURRENCY="${CONCURRENCY:-16}"
DIR="$WORK/nginx"
NGINX_PID=""
trap stop_nginx EXIT

log() { echo "ceiling: $*" >&2; }

# One data set: seed src/NAME, a manifest with sizes and MD5s, one worker.
measure() {
  local name="$1" count="$2" size="$3" migration="ceiling-$1" before after wall user sys rss ticks
  local dir="$DIR/www/src/$name"
  seed_and_enqueue "$name" "$count" "$size" "$migration"
  before="$(cpu_ticks "$NGINX_PID")"
  # WORKER_WRAPPER (say "perf record -g -o /tmp/worker.perf --") profiles the worker.
  # shellcheck disable=SC2086
  BLOBFERRY_STORAGE_CONFIG="$DIR/storage.yml" /usr/bin/time -f "%e %U %S %M" -o "$DIR/time" ${WORKER_WRAPPER:-} "$BIN" worker \
    --migration "$migration" --concurrency "$CONCURRENCY" --exit-when-empty --log-level warn >&2
  after="$(cpu_ticks "$NGINX_PID")"
  read -r wall user sys rss < <(tail -n 1 "$DIR/time")
  local copied
  copied="$(copied_intact "$name")"
  awk -v n="$name" -v c="$count" -v got="$copied" -v s="$size" -v w="$wall" -v u="$user" -v y="$sys" -v r="$rss" \
    -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" -v conc="$CONCURRENCY" 'BEGIN {
      cpu = u + y
      printf "%s,%d,%d,%d,%d,%.2f,%.2f,%.2f,%.1f,%.1f,%.1f,%.2f\n", n, c, got, s, conc, w, u, y, cpu * 1e6 / c,
        cpu * 1000 / (c * s / 1048576), r / 1024, t / hz
    }' | tee -a "$CSV"
  rm -rf "$dir" "$DIR/www/dst/$name"
}

# Queue cost: Redis commands and Redis CPU per job while WORKERS workers
# (CONCURRENCY in all) copy COUNT objects of SIZE; the enqueue is left out.
measure_queue() {
  local count="$1" size="$2" workers="$3" name="queue" migration="ceiling-queue" calls0 cpu0 calls1 cpu1 start end
  local pids=() memory0 memory1 memory2
  memory0="$(redis_memory)"
  seed_and_enqueue "$name" "$count" "$size" "$migration"
  memory1="$(redis_memory)"
  calls0="$(redis_calls)" cpu0="$(redis_cpu)" start="$(date +%s.%N)"
  for ((i = 0; i < workers; i++)); do
    BLOBFERRY_STORAGE_CONFIG="$DIR/storage.yml" "$BIN" worker --migration "$migration" \
      --concurrency "$((CONCURRENCY / workers))" --exit-when-empty --log-level warn >&2 &
    pids+=($!)
  done
  wait "${pids[@]}"
  end="$(date +%s.%N)" calls1="$(redis_calls)" cpu1="$(redis_cpu)" memory2="$(redis_memory)"
  # Bytes per job while queued, and what stays in Redis per job once every
  # one is copied (counters only: it must not grow with the jobs done).
  awk -v c="$count" -v got="$(copied_intact "$name")" -v w="$workers" -v conc="$CONCURRENCY" -v wall="$(echo "$end - $start" | bc)" \
    -v calls="$((calls1 - calls0))" -v cpu0="$cpu0" -v cpu1="$cpu1" \
    -v queued="$((memory1 - memory0))" -v left="$((memory2 - memory0))" 'BEGIN {
      printf "%d,%d,%d,%d,%.2f,%.2f,%.1f,%.1f,%.2f\n", c, got, w, conc, wall, calls / c, (cpu1 - cpu0) * 1e6 / c,
        queued / c, left / c
    }' | tee -a "$QUEUE_CSV"
  rm -rf "$DIR/www/src/$name" "$DIR/www/dst/$name"
}

mkdir -p "$DIR"
find_nginx
start_nginx
write_services
echo "set,objects,copied,bytes_each,concurrency,wall_s,user_s,sys_s,cpu_us_per_object,cpu_ms_per_MiB,rss_MiB,nginx_cpu_s" | tee "$CSV"
QUEUE_CSV="$(dirname "$CSV")/queue.csv"
echo "objects,copied,workers,concurrency,wall_s,redis_commands_per_job,redis_cpu_us_per_job,redis_bytes_per_queued_job,redis_bytes_left_per_done_job" >"$QUEUE_CSV"
for set in ${CEILING_SETS:-small tiny large queue}; do
  case "$set" in
    small) measure small 2000 32768 ;;
    tiny) measure tiny 5000 1024 ;;
    large) measure large 8 $((64 * 1024 * 1024)) ;;
    queue) head -n 1 "$QUEUE_CSV"; measure_queue "${QUEUE_JOBS:-20000}" 1024 2 ;;
  esac
done
stop_nginx
