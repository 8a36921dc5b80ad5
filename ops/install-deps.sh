#!/usr/bin/env bash
# Installs everything needed to build and test blobferry; idempotent and quick when all is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S3RVER_VERSION="3.7.1"
# Drives Debian's chromium in the operator page's browser test (tests/browser/); no browser download.
PLAYWRIGHT_CORE_VERSION="1.65.1"

APT_PACKAGES=(
  build-essential cmake pkg-config git
  lld  # links the test executables in a fraction of GNU ld's time; CMakeLists.txt uses it when present
  libhiredis-dev libcurl4-openssl-dev libssl-dev libpq-dev
  nlohmann-json3-dev libspdlog-dev libcli11-dev libyaml-cpp-dev libpugixml-dev
  libgtest-dev googletest
  redis-server postgresql rclone
  clang libclang-rt-14-dev curl systemd openssl time gnuplot-nox
  # Ceph RADOS Gateway 16.2, a real S3 implementation: ops/dev-stack.sh --only rgw
  radosgw ceph-mon ceph-osd ceph-common
  chromium
)

log() { echo "install-deps: $*" >&2; }

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  else
    sudo "$@"
  fi
}

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

APT_UPDATED=0
apt_install() {
  if [[ "$APT_UPDATED" -eq 0 ]]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

install_apt_packages() {
  local missing=() package
  for package in "${APT_PACKAGES[@]}"; do
    is_installed "$package" || missing+=("$package")
  done
  # Node may come from elsewhere (nodesource, nvm); apt's npm would conflict with it.
  if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
  if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
  fi
}

installed_node_version() {
  local manifest="$ROOT/.deps/node_modules/$1/package.json"
  [[ -f "$manifest" ]] || return 0
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$manifest" 2>/dev/null || true
}

# One npm install for both, so neither removes the other from .deps/package.json.
install_node_packages() {
  if [[ -x "$ROOT/.deps/node_modules/.bin/s3rver" && "$(installed_node_version s3rver)" == "$S3RVER_VERSION" &&
        "$(installed_node_version playwright-core)" == "$PLAYWRIGHT_CORE_VERSION" ]]; then
    return
  fi
  log "npm install s3rver@$S3RVER_VERSION playwright-core@$PLAYWRIGHT_CORE_VERSION into $ROOT/.deps"
  mkdir -p "$ROOT/.deps"
  # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: the test uses /usr/bin/chromium.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$ROOT/.deps" --no-audit --no-fund --save-exact \
    "s3rver@$S3RVER_VERSION" "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
}

install_apt_packages
install_node_packages
log "all dependencies present"
