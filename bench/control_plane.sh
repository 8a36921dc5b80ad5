#!/usr/bin/env bash
# Control-plane figures: enqueue rate from a blob table, Redis bytes per queued job, validate by listing vs by HEAD.
# Called by bench/run.sh with the dev stack's environment, BIN and WORK set.
set -euo pipefail

ROWS="${1:?rows}"
OBJECTS="${2:?validate objects}"
CSV="${3:?csv}"
: "${BIN:?}" "${WORK:?}" "${DATABASE_URL:?}" "${REDIS_URL:?}" "${S3_TARGET_DIR:?}"

log() { echo "control: $*" >&2; }
psql_q() { PGOPTIONS="--client-min-messages=warning" psql -q -v ON_ERROR_STOP=1 -X "$DATABASE_URL" "$@"; }
redis() { redis-cli -u "$REDIS_URL" "$@"; }
used_memory() { redis INFO memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'; }
per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }

echo "figure,value,unit,note" >"$CSV"
record() { echo "$1,$2,$3,$4" >>"$CSV"; printf '%-34s %14s %-8s %s\n' "$1" "$2" "$3" "$4"; }

# Rails 7's schema. Content "blob N" makes size and MD5 computable in SQL, so
# the first OBJECTS rows can be written to the target and verify.
create_table() {
  psql_q <<SQL
DROP TABLE IF EXISTS active_storage_blobs;
CREATE TABLE active_storage_blobs (
  id bigserial PRIMARY KEY, key varchar NOT NULL, filename varchar NOT NULL, content_type varchar,
  metadata text, service_name varchar NOT NULL, byte_size bigint NOT NULL, checksum varchar,
  created_at timestamp(6) NOT NULL);
INSERT INTO active_storage_blobs (key, filename, content_type, metadata, service_name, byte_size, checksum, created_at)
SELECT substr(md5(i::text), 1, 28), 'file-' || i || '.bin', 'application/octet-stream', '{}', 'source',
       length('blob ' || i), encode(decode(md5('blob ' || i), 'hex'), 'base64'), now()
FROM generate_series(1, $ROWS) AS i;
CREATE UNIQUE INDEX index_active_storage_blobs_on_key ON active_storage_blobs (key);
ANALYZE active_storage_blobs;
SQL
}

measure_enqueue() {
  local before after queued started wall
  redis FLUSHDB >/dev/null
  before="$(used_memory)"
  started="$(date +%s.%N)"
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.enqueue-rate" "$BIN" enqueue --migration enqueue-rate \
    --from source --to target --source blobs --max-queued "$((ROWS + 1))" --log-level warn >&2
  wall="$(seconds_since "$started")"
  after="$(used_memory)"
  queued="$(redis LLEN 'bf:{enqueue-rate}:queue')"
  [[ "$queued" -eq "$ROWS" ]] || log "warning: $queued jobs queued for $ROWS rows"
  read -r _ user sys rss <"$WORK/time.enqueue-rate"
  record enqueue_jobs "$queued" jobs "$ROWS rows, default --page-size"
  record enqueue_wall "$wall" s "enqueuer process"
  record enqueue_rate "$(per "$queued" "$wall")" jobs/s "wall"
  record enqueue_cpu "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')" s "user+sys of the enqueuer"
  record enqueue_rss "$((rss / 1024))" MiB "peak RSS of the enqueuer"
  record redis_bytes_per_job "$(per "$((after - before))" "$queued")" bytes "INFO used_memory delta / queued jobs"
  record redis_job_length "$(per "$(redis --no-raw LINDEX 'bf:{enqueue-rate}:queue' 0 | wc -c)" 1)" bytes "one job as queued (with quoting)"
  redis DEL 'bf:{enqueue-rate}:queue' >/dev/null
}

# Redis bytes per queued job as the queue grows (issue 14: flat from 100k to
# 1M): the first N rows of the same table enqueued as their own migration,
# for each N of SCALE_ROWS not above ROWS; the queue is dropped after each.
measure_queue_scale() {
  local n before after queued rss
  for n in ${SCALE_ROWS:-100000 300000 1000000}; do
    [[ "$n" -le "$ROWS" ]] || continue
    redis FLUSHDB >/dev/null
    before="$(used_memory)"
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.scale" "$BIN" enqueue --migration "scale-$n" \
      --from source --to target --source blobs --id-range "1-$n" --max-queued "$((n + 1))" --log-level warn >&2
    after="$(used_memory)"
    queued="$(redis LLEN "bf:{scale-$n}:queue")"
    read -r _ _ _ rss <"$WORK/time.scale"
    record "scale_${n}_queued" "$queued" jobs "--id-range 1-$n"
    record "scale_${n}_redis_bytes_per_job" "$(per "$((after - before))" "$queued")" bytes "used_memory delta / queued jobs"
    record "scale_${n}_redis_used" "$((after / 1024 / 1024))" MiB "used_memory with the queue full"
    record "scale_${n}_enqueue_rss" "$((rss / 1024))" MiB "peak RSS of the enqueuer"
    redis DEL "bf:{scale-$n}:queue" >/dev/null
  done
}

# The first OBJECTS blobs as s3rver files on the target: KEY._S3rver_object
# (+ .md5), straight from SQL, since uploading 100k objects takes far longer.
seed_target() {
  local dir="$S3_TARGET_DIR/target"
  log "writing $OBJECTS objects to the target"
  psql_q -At -F ' ' -c "SELECT key, md5('blob ' || id), id FROM active_storage_blobs WHERE id <= $OBJECTS ORDER BY id" |
    awk -v dir="$dir" '{
      f = dir "/" $1 "._S3rver_object"; printf "blob %s", $3 > f; close(f)
      m = f ".md5"; printf "%s", $2 > m; close(m)
    }'
}

# validate prints its request counts; keep the first number after each word.
requests_of() { grep -o -E "[0-9]+ $1" "$2" | head -n 1 | cut -d' ' -f1; }

measure_validate() {
  local how="$1" migration="validate-$1" log="$WORK/validate-$1.log" started wall status=0
  shift
  "$BIN" enqueue --migration "$migration" --from source --to target "$@" --max-queued "$((OBJECTS + 1))" \
    --log-level warn >&2
  redis DEL "bf:{$migration}:queue" >/dev/null  # only the plan matters to validate
  started="$(date +%s.%N)"
  "$BIN" validate --migration "$migration" --log-level warn >"$log" 2>&1 || status=$?
  wall="$(seconds_since "$started")"
  [[ "$status" -eq 0 ]] || { log "validate $how exited $status:"; tail -n 5 "$log" >&2; }
  record "validate_${how}_seconds" "$wall" s "$OBJECTS objects on s3rver; exit $status"
  record "validate_${how}_rate" "$(per "$OBJECTS" "$wall")" objects/s ""
  record "validate_${how}_verified" "$(requests_of verified "$log")" objects ""
  record "validate_${how}_list_requests" "$(requests_of list "$log")" requests ""
  record "validate_${how}_head_requests" "$(requests_of head "$log")" requests ""
}

log "blob table of $ROWS rows"
create_table
measure_enqueue
measure_queue_scale
seed_target
# By the blob table: one listing per 1,000 keys of the target.
measure_validate listing --source blobs --id-range "1-$OBJECTS"
# By a manifest of the same keys: validate HEADs each one.
psql_q -At -F ',' -c "SELECT key, byte_size, checksum FROM active_storage_blobs WHERE id <= $OBJECTS ORDER BY id" \
  >"$WORK/validate.csv"
measure_validate head --source manifest --manifest "$WORK/validate.csv"
find "$S3_TARGET_DIR/target" -mindepth 1 -delete  # too many names for one rm
