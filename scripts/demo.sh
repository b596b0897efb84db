#!/usr/bin/env bash
# The main job: two ldm hosts on this machine (hostA on 127.0.0.2, hostB on
# 127.0.0.3, each its own ldmd, state directory and certificate, each trusting
# the other), the bundled test guest running on hostA while it rewrites 64 MiB
# of its memory as fast as it can, migrated live to hostB with
# `ldm migrate-domain -c`. Prints both hosts' `ldm ls`, the guest's heartbeat on
# hostB, the total time and the guest-visible downtime.
#   scripts/demo.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/setup.sh"
install_missing
ensure_groups
ensure_pam
build "$ROOT/build" >/dev/null
exec "$ROOT/build/bin/migration" --demo
