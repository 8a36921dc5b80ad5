#!/usr/bin/env bash
# The Quickstart: dev stack, sample ActiveStorage data, then the whole playbook on it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
unset AWS_CA_BUNDLE
step() { printf '\n==> %s\n' "$*"; }

step "installing dependencies and building (Release, build/)"
bash ops/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)" --target blobferry
BF="$ROOT/build/blobferry"

step "starting the dev stack (ops/dev-stack.sh up)"
set -a
eval "$(bash ops/dev-stack.sh up)"
set +a
echo "REDIS_URL=$REDIS_URL"
echo "DATABASE_URL=$DATABASE_URL"
echo "storage.yml: $BLOBFERRY_STORAGE_CONFIG"

step "seeding 300 blobs on service 'source' (ops/sample-data.sh)"
bash ops/sample-data.sh --count 300

step "blobferry services"
"$BF" services

step "blobferry migrate --from source --to target --switch (embedded: no Redis)"
"$BF" migrate --from source --to target --switch

step "blobferry services (every blob now on 'target')"
"$BF" services --no-check

cat <<EOF

Done. The stack is still running; try the distributed mode on it:

  set -a; source $STACK_DIR/env; set +a
  bash ops/sample-data.sh --count 200          # more blobs on 'source'
  $BF enqueue --migration demo --from source --to target
  $BF worker --migration demo --exit-when-empty &
  $BF worker --migration demo --exit-when-empty
  $BF status --migration demo
  $BF validate --migration demo && $BF switch --migration demo

Stop it with: bash ops/dev-stack.sh down
EOF
