#!/usr/bin/env bash
# Install the Debian packages livegate needs that are not installed yet.
# Usage: scripts/deps.sh [build|test]   (test adds what the test suite runs)
set -euo pipefail

pkgs=(cmake make gcc pkg-config
      libwebsockets-dev libwebsockets-evlib-ev libev-dev
      libssl-dev zlib1g-dev libsodium-dev libjson-c-dev libcmocka-dev)
if [ "${1:-build}" = test ]; then
  # Clients this project did not write: curl, Debian's python3 + python3-websockets, openssl CLI,
  # and Debian's chromium for the web player's test (driven by npm playwright-core, which
  # never downloads a browser of its own).
  pkgs+=(curl python3 python3-websockets openssl chromium)
  # iproute2: `ss -K` cuts livegate-client's connections in tests/integration/client_test.py.
  pkgs+=(iproute2)
  # netem/ns.sh and tests/integration/netns_test.py: nft numgen loss, tc tbf, ip netns / link.
  pkgs+=(nftables)
fi

missing=()
# The gift tests sign with node's tweetnacl (npm): Debian's nodejs + npm unless a node is there.
if [ "${1:-build}" = test ] && ! command -v node >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
