#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite with ctest.
# Usage: scripts/test.sh [--sanitize]   (--sanitize: ASan + UBSan build in build-asan)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" test
if [ "${1:-}" = --sanitize ]; then
  dir=$top/build-asan
  "$top/scripts/build.sh" "$dir" -DLIVEGATE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$top/tests/sanitizer/lsan.supp:print_suppressions=0
else
  dir=$top/build
  "$top/scripts/build.sh" "$dir"
fi
cd "$dir"
ctest --output-on-failure -j2 --timeout 600
