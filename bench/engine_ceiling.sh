#!/usr/bin/env bash
# Engine ceiling: CPU per object of one blobferry worker copying between two near-free servers (nginx GET + WebDAV PUT),
# and the queue's cost: Redis commands and Redis CPU per job of two workers (queue.csv beside the ceiling's CSV).
# Called by bench/run.sh with the dev stack's environment (REDIS_URL), BIN and WORK set.
#
# What works against nginx: GET (static files), HEAD (404 when missing, so the
# skip test copies), PUT (WebDAV, 201/204, no ETag so no ETag check). What does
# not: ListObjects, multipart, server-side copy. Hence a manifest source with
# sizes and MD5s, the worker alone (migrate's validation would HEAD and find
# nginx's ETags no MD5s), and source and target on two ports (one server
# would let the engine try a server-side copy).
set -euo pipefail

CSV="${1:?csv}"
: "${BIN:?}" "${WORK:?}" "${REDIS_URL:?}"
CONCURRENCY="${CONCURRENCY:-16}"
DIR="$WORK/nginx"
NGINX_PID=""

log() { echo "ceiling: $*" >&2; }

stop_nginx() {
  [[ -n "$NGINX_PID" ]] || return 0
  kill "$NGINX_PID" 2>/dev/null || true
  wait "$NGINX_PID" 2>/dev/null || true
  NGINX_PID=""
}
trap stop_nginx EXIT

free_port() {
  local port
  for _ in $(seq 200); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 41000))
    [[ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]] && { echo "$port"; return 0; }
  done
  return 1
}

# Debian's nginx package would start a system nginx on port 80 when
# installed; its binary, unpacked into the work folder, runs nothing else.
find_nginx() {
  NGINX="$(command -v nginx || true)"
  [[ -n "$NGINX" ]] && return 0
  mkdir -p "$DIR/deb"
  (cd "$DIR/deb" && apt-get download nginx >&2 2>/dev/null) || { log "apt-get download nginx failed"; return 1; }
  dpkg-deb -x "$DIR"/deb/nginx_*.deb "$DIR/deb/root"
  NGINX="$DIR/deb/root/usr/sbin/nginx"
}

start_nginx() {
  SRC_PORT="$(free_port)" DST_PORT="$(free_port)"
  mkdir -p "$DIR/www/src" "$DIR/www/dst" "$DIR/tmp" "$DIR/logs"
  cat >"$DIR/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  client_body_temp_path $DIR/tmp/body;
  proxy_temp_path $DIR/tmp/proxy;
  fastcgi_temp_path $DIR/tmp/fastcgi;
  uwsgi_temp_path $DIR/tmp/uwsgi;
  scgi_temp_path $DIR/tmp/scgi;
  client_max_body_size 0;
  client_body_buffer_size 1m;
  server {
    listen 127.0.0.1:$SRC_PORT;
    root $DIR/www;
    location / { autoindex on; }
    location = /src { return 200; }  # the service check lists the bucket: any 2xx will do
  }
  server {
    listen 127.0.0.1:$DST_PORT;
    root $DIR/www;
    location / { autoindex on; dav_methods PUT; create_full_put_path on; }
    location = /dst { return 200; }
  }
}
EOF
  "$NGINX" -c "$DIR/nginx.conf" -p "$DIR" -e "$DIR/logs/error.log" &
  NGINX_PID=$!
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$DST_PORT/dst/" && return 0
    sleep 0.1
  done
  log "nginx did not start:"; tail -n 5 "$DIR/logs/error.log" >&2
  return 1
}

write_services() {
  cat >"$DIR/storage.yml" <<EOF
nginx_source:
  service: S3
  access_key_id: bench
  secret_access_key: bench
  region: us-east-1
  bucket: src
  endpoint: http://127.0.0.1:$SRC_PORT
  force_path_style: true
nginx_target:
  service: S3
  access_key_id: bench
  secret_access_key: bench
  region: us-east-1
  bucket: dst
  endpoint: http://127.0.0.1:$DST_PORT
  force_path_style: true
EOF
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Seeds src/NAME with COUNT random objects of SIZE, writes their manifest
# (sizes and MD5s) and enqueues it as migration MIGRATION.
seed_and_enqueue() {
  local name="$1" count="$2" size="$3" migration="$4"
  local dir="$DIR/www/src/$name"
  mkdir -p "$dir"
  # Seven digits and xargs: a scale run's 1,000,000 names fit neither five
  # digits nor one command line.
  head -c "$((count * size))" /dev/urandom | split -b "$size" -a 7 -d - "$dir/obj-"
  (cd "$dir" && find . -maxdepth 1 -name 'obj-*' -printf '%f\0' | sort -z | xargs -0 md5sum --) | awk -v n="$name" -v s="$size" '{ print n "/" $2 "," s "," $1 }' >"$DIR/$name.csv"
  rm -rf "$DIR/www/dst/$name"
  BLOBFERRY_STORAGE_CONFIG="$DIR/storage.yml" "$BIN" enqueue --migration "$migration" --from nginx_source \
    --to nginx_target --source manifest --manifest "$DIR/$name.csv" --max-queued "$((count + 1))" --log-level warn >&2
}

# How many objects of set NAME are on the target with the source's MD5 (0 when any differs).
copied_intact() {
  local name="$1" copied
  copied="$(find "$DIR/www/dst/$name" -type f | wc -l)"
  (cd "$DIR/www/dst/$name" && md5sum -c --quiet <(awk -F, '{ sub(/^[^\/]*\//, "", $1); print $3 "  " $1 }' "$DIR/$name.csv")) >&2 ||
    { log "$name: target differs from the source"; copied=0; }
  echo "$copied"
}

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

# Redis's own counters, read before and after a run: commands executed
# (INFO commandstats, those run by its Lua scripts included) and CPU seconds
# (INFO cpu, user + sys of the server).
redis_calls() { redis-cli -u "$REDIS_URL" info commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_/ { s += $3 } END { print s + 0 }'; }
redis_memory() { redis-cli -u "$REDIS_URL" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
redis_cpu() { redis-cli -u "$REDIS_URL" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.6f\n", s }'; }

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
