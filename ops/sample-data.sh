#!/usr/bin/env bash
# Seeds the dev stack with a Rails-style app: an active_storage_blobs table and its files in the source bucket.
set -euo pipefail

usage() {
  cat <<EOF
Usage: ops/sample-data.sh [--count N] [--dir STACK_DIR]

Creates (or extends) active_storage_blobs in the dev stack's database with N
blobs on service "source" (Rails 7 schema) and uploads their files, with
random ActiveStorage keys and sizes from 0 bytes to 256 KiB, to the source
S3 server. Needs a running stack (ops/dev-stack.sh up).
EOF
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COUNT=300
DIR="$ROOT/.stack"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --count) COUNT="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "sample-data: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -f "$DIR/env" ]] || { echo "sample-data: no dev stack in $DIR: run ops/dev-stack.sh up first" >&2; exit 2; }
set -a
# shellcheck disable=SC1091
source "$DIR/env"
set +a

PGOPTIONS="--client-min-messages=warning" psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<'SQL'
CREATE TABLE IF NOT EXISTS active_storage_blobs (
  id bigserial PRIMARY KEY,
  key varchar NOT NULL,
  filename varchar NOT NULL,
  content_type varchar,
  metadata text,
  service_name varchar NOT NULL,
  byte_size bigint NOT NULL,
  checksum varchar,
  created_at timestamp(6) NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS index_active_storage_blobs_on_key ON active_storage_blobs (key);
SQL

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
alphabet=abcdefghijklmnopqrstuvwxyz0123456789
rows="$work/rows.tsv"
: > "$rows"
for ((i = 0; i < COUNT; i++)); do
  key=""
  for ((j = 0; j < 28; j++)); do key+="${alphabet:RANDOM % 36:1}"; done
  size=$(( (RANDOM * 32768 + RANDOM) % 262144 ))
  (( i % 50 == 0 )) && size=0
  head -c "$size" /dev/urandom > "$work/$key"
  checksum="$(openssl dgst -md5 -binary "$work/$key" | base64)"
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "Content-Type: image/jpeg" -T "$work/$key" "$S3_SOURCE_ENDPOINT/source/$key" > /dev/null
  printf '%s\tphoto-%d.jpg\timage/jpeg\t{"identified":true}\tsource\t%d\t%s\t%s\n' \
    "$key" "$i" "$size" "$checksum" "$(date -u '+%Y-%m-%d %H:%M:%S')" >> "$rows"
  rm -f "$work/$key"
done
psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" \
  -c "\\copy active_storage_blobs (key, filename, content_type, metadata, service_name, byte_size, checksum, created_at) FROM '$rows'"
echo "sample-data: $COUNT blobs on service source ($(psql -Atq "$DATABASE_URL" -c 'SELECT count(*) FROM active_storage_blobs') rows in all)" >&2
