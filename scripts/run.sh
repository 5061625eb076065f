#!/usr/bin/env bash
# Install what is missing, build, and start the gateway on its embedded
# defaults (http://127.0.0.1:8080, no external service). Extra arguments are
# passed to livegate, e.g. scripts/run.sh --port 9000.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" build
"$top/scripts/build.sh" "$top/build"
exec "$top/build/livegate" "$@"
