#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds with
# warnings as errors and AddressSanitizer + UndefinedBehaviorSanitizer, and runs
# every unit and integration test (real QEMU, bridges, namespaces, TLS, PAM),
# then the two libFuzzer targets for a minute each.
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
status=0
(cd "$BUILD" && ctest --output-on-failure --timeout 900 "$@") || status=$?
# The fuzz targets (clang + libFuzzer), each for a bounded time; only in a
# full run (no ctest arguments).
if [[ $# -eq 0 ]]; then
  FUZZ="$ROOT/build-fuzz"
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$FUZZ" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLDM_FUZZ=ON \
    -DBUILD_TESTING=OFF -DLDM_WERROR=ON -DLDM_FUZZ_SECONDS="${LDM_FUZZ_SECONDS:-60}" >/dev/null
  cmake --build "$FUZZ" -j "$(nproc)" --target fuzz_peer_message fuzz_control_request
  (cd "$FUZZ" && ctest --output-on-failure) || status=$?
fi
exit "$status"
