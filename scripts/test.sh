#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite with ctest.
# Usage: scripts/test.sh [--sanitize | --tsan]
#   --sanitize  ASan + UBSan build in build-asan, the whole suite
#   --tsan      ThreadSanitizer build in build-tsan: the unit tests and the integration
#               tests that drive the gateway's threads against each other (TSAN_TESTS)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" test
select=()
case "${1:-}" in
--sanitize)
  dir=$top/build-asan
  "$top/scripts/build.sh" "$dir" -DLIVEGATE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$top/tests/sanitizer/lsan.supp:print_suppressions=0
  ;;
--tsan)
  dir=$top/build-tsan
  "$top/scripts/build.sh" "$dir" -DLIVEGATE_TSAN=ON
  # A report fails a unit test through TSan's exit code (66) and an integration test through
  # lg.py, which fails on any sanitizer report in the gateway's log.
  export TSAN_OPTIONS="suppressions=$top/tests/sanitizer/tsan.supp second_deadlock_stack=1"
  # The gateway with its worker threads (several by default: one per core; resume and slow
  # force 1 and 2), the journal and leaderboard threads, cross-worker wake-ups, the shared
  # client table and rate limiters. Left out: tests whose subject is another program
  # (livegate-client, lg-relay alone, the browser player), which add TSan time, not coverage.
  TSAN_TESTS='http|poll|h1|ws|resume|slow|badinput|limits|tls|config|gifts|gift_crash|adapt'
  select=(-R "^unit\.|^integration\.($TSAN_TESTS)\$")
  ;;
"")
  dir=$top/build
  "$top/scripts/build.sh" "$dir"
  ;;
*)
  echo "usage: $0 [--sanitize | --tsan]" >&2
  exit 2
  ;;
esac
cd "$dir"
ctest --output-on-failure -j2 --timeout 600 "${select[@]}"
