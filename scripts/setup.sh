#!/usr/bin/env bash
# Installs what ldm needs from Debian 12 (only what is missing) and builds it.
#   scripts/setup.sh [BUILD_DIR] [extra cmake args...]
# Sourced by demo.sh and test.sh; safe to run again.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libasio-dev libssl-dev nlohmann-json3-dev libsqlite3-dev libcli11-dev libspdlog-dev libfmt-dev
  libexpected-dev libpam0g-dev libgtest-dev libgmock-dev libbenchmark-dev
  qemu-system-x86 qemu-utils iproute2 openssl sqlite3 procps
  libpam-modules bsdutils tcpdump clang libclang-rt-14-dev
)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these Debian packages are missing: ${missing[*]}" >&2
    echo "setup: run as root (or install them with apt-get) and try again" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_groups() {  # root and ldm-admin may change things, ldm-read may list
  [[ $(id -u) -ne 0 ]] && return 0
  local g
  for g in ldm-admin ldm-read; do
    getent group "$g" >/dev/null || groupadd --system "$g"
  done
}

ensure_pam() {  # the PAM service password-mode migrations authenticate with
  [[ $(id -u) -ne 0 ]] && return 0
  cmp -s "$ROOT/packaging/pam.d/ldmd" /etc/pam.d/ldmd || install -m 644 "$ROOT/packaging/pam.d/ldmd" /etc/pam.d/ldmd
}

build() {  # build DIR [cmake args...]; the build type defaults to RelWithDebInfo
  local dir=$1
  shift
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  install_missing
  ensure_groups
  ensure_pam
  build "${1:-$ROOT/build}" "${@:2}"
fi
