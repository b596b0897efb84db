#!/usr/bin/env bash
# The main job: two ldm hosts on this machine (127.0.0.2 and 127.0.0.3, each its
# own ldmd and state directory), the bundled test guest running on host A and
# dirtying memory, and (once migration lands) moved live to host B.
#   scripts/demo.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/setup.sh"
install_missing
BUILD="$ROOT/build"
build "$BUILD"
BIN="$BUILD/bin"

WORK=$(mktemp -d /tmp/ldm-demo.XXXXXX)
PIDS=()
cleanup() {
  for f in "$WORK"/*/run/*.pid; do [[ -f $f ]] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

start_host() {  # name address
  "$BIN/ldmd" --state-dir "$WORK/$1" --socket "$WORK/$1.sock" --listen "$2:6482" --hostname "$1" \
    --console-address "$2" --vcpus 2 --memory 2G >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [[ -S $WORK/$1.sock ]] && return 0; sleep 0.05; done
  echo "ldmd for $1 did not start:" >&2; cat "$WORK/$1.log" >&2; exit 1
}
ldm_on() { local host=$1; shift; LDM_SOCKET="$WORK/$host.sock" "$BIN/ldm" "$@"; }

echo "== two hosts: hostA on 127.0.0.2, hostB on 127.0.0.3"
start_host hostA 127.0.0.2
start_host hostB 127.0.0.3
for h in hostA hostB; do ldm_on $h add-vcc port-range=5000-5100 primary-vcc0 primary; done

echo "== the test guest on hostA, dirtying 64 MiB"
ldm_on hostA add-domain vcpus=1 memory=256M kernel="$BIN/test-guest.elf" cmdline="dirty=64M rate=4000" ldg1
ldm_on hostA bind-domain ldg1
ldm_on hostA start-domain ldg1
ldm_on hostA ls
sleep 2
echo "== its console (127.0.0.2:5000), last lines:"
tail -n 3 "$WORK"/hostA/run/*.console.log
ldm_on hostB ls
