#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds with
# warnings as errors and AddressSanitizer + UndefinedBehaviorSanitizer, and runs
# every unit and integration test (real QEMU, bridges, namespaces, TLS).
#   scripts/test.sh [ctest args...]     e.g. scripts/test.sh -R Store
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/setup.sh"
install_missing
ensure_groups
ensure_pam
BUILD="$ROOT/build-test"
# Debug: sanitizer builds of asio-heavy code compile far faster unoptimised,
# and the tests' time goes to QEMU, not to our code.
build "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DLDM_WERROR=ON -DLDM_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$BUILD"
ctest --output-on-failure --timeout 900 "$@"
