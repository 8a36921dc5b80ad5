# Shared by the nginx benches (engine_ceiling.sh, scale_run.sh): nginx as a near-free S3 stand-in, seeding, checks, Redis counters.
# shellcheck shell=bash
# Sourced, not run. The caller sets DIR (nginx's folder), BIN, REDIS_URL and
# NGINX_PID="" and defines log(); start_nginx sets SRC_PORT and DST_PORT.
#
# What works against nginx: GET (static files), HEAD (404 when missing, so the
# skip test copies), PUT (WebDAV, 201/204, no ETag so no ETag check). What does
# not: ListObjects, multipart, server-side copy. Hence a manifest source with
# sizes and MD5s, the worker alone (migrate's validation would HEAD and find
# nginx's ETags no MD5s), and source and target on two ports (one server
# would let the engine try a server-side copy).

# Stops child process PID (none when empty) and reaps it.
stop_child() {
  [[ -n "$1" ]] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

stop_nginx() {
  stop_child "$NGINX_PID"
  NGINX_PID=""
}

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

# Seeds src/NAME with COUNT random objects of SIZE and writes their manifest
# (sizes and MD5s) to $DIR/NAME.csv; the target's copy of NAME is wiped.
seed_set() {
  local name="$1" count="$2" size="$3"
  local dir="$DIR/www/src/$name"
  mkdir -p "$dir"
  # Seven digits and xargs: a scale run's 1,000,000 names fit neither five
  # digits nor one command line.
  head -c "$((count * size))" /dev/urandom | split -b "$size" -a 7 -d - "$dir/obj-"
  (cd "$dir" && find . -maxdepth 1 -name 'obj-*' -printf '%f\0' | sort -z | xargs -0 md5sum --) | awk -v n="$name" -v s="$size" '{ print n "/" $2 "," s "," $1 }' >"$DIR/$name.csv"
  rm -rf "$DIR/www/dst/$name"
}

# Enqueues set NAME's manifest (COUNT jobs) as migration MIGRATION, from
# FROM to TO (default the two nginx services), all at once.
enqueue_set() {
  local name="$1" count="$2" migration="$3" from="${4:-nginx_source}" to="${5:-nginx_target}"
  BLOBFERRY_STORAGE_CONFIG="$DIR/storage.yml" "$BIN" enqueue --migration "$migration" --from "$from" \
    --to "$to" --source manifest --manifest "$DIR/$name.csv" --max-queued "$((count + 1))" --log-level warn >&2
}

seed_and_enqueue() {
  seed_set "$1" "$2" "$3"
  enqueue_set "$1" "$2" "$4"
}

# How many objects of set NAME are on the target with the source's MD5 (0 when any differs).
copied_intact() {
  local name="$1" copied
  copied="$(find "$DIR/www/dst/$name" -type f | wc -l)"
  (cd "$DIR/www/dst/$name" && md5sum -c --quiet <(awk -F, '{ sub(/^[^\/]*\//, "", $1); print $3 "  " $1 }' "$DIR/$name.csv")) >&2 ||
    { log "$name: target differs from the source"; copied=0; }
  echo "$copied"
}

# Redis's own counters, read before and after a run: commands executed
# (INFO commandstats, those run by its Lua scripts included) and CPU seconds
# (INFO cpu, user + sys of the server).
redis_calls() { redis-cli -u "$REDIS_URL" info commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_/ { s += $3 } END { print s + 0 }'; }
redis_memory() { redis-cli -u "$REDIS_URL" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
redis_cpu() { redis-cli -u "$REDIS_URL" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.6f\n", s }'; }
