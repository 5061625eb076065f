#!/usr/bin/env bash
# netem/ns.sh: put the gateway and its clients in two network namespaces joined by a veth
# pair, and apply named weak-network profiles (netem/profiles/NAME.conf) to the link.
# Needs root. See netem/README.md.
#
#   ns.sh up                  namespaces $NETEM_GW (10.77.0.1) and $NETEM_CL (10.77.0.2)
#   ns.sh down                stop what profiles started, remove both namespaces
#   ns.sh profile NAME|FILE   clear the previous profile, apply this one, print what it did
#   ns.sh clear               remove the current profile (the link is then clean)
#   ns.sh blackout SECONDS    drop everything on the link now, for SECONDS (in background)
#   ns.sh exec gw|cl CMD...   run CMD in a namespace
#   ns.sh ctl COMMAND...      send a control command to the profile's relay (set, stats, ...)
#   ns.sh status              namespaces, link, qdiscs, nft rules and counters, helpers
#
# Environment (defaults in brackets): NETEM_GW [lg-gw], NETEM_CL [lg-cl], NETEM_GW_IP
# [10.77.0.1], NETEM_CL_IP [10.77.0.2], NETEM_GW_PORT [8080] (the gateway port the relay
# fronts), NETEM_RELAY_PORT [18080], NETEM_STATE [/run/lg-netem/$NETEM_GW] (pid files),
# NETEM_LOOP_MAX_S [3600] (background loops end after this long), NETEM_FORCE_FALLBACK
# [0] (1 = ignore sch_netem even when the kernel has it), LG_RELAY_BIN [build/lg-relay].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GW=${NETEM_GW:-lg-gw}
CL=${NETEM_CL:-lg-cl}
GW_IP=${NETEM_GW_IP:-10.77.0.1}
CL_IP=${NETEM_CL_IP:-10.77.0.2}
GW_DEV=nm0 # created inside the namespaces, so the names never clash with the host's
CL_DEV=nm1
GW_PORT=${NETEM_GW_PORT:-8080}
RELAY_PORT=${NETEM_RELAY_PORT:-18080}
STATE=${NETEM_STATE:-/run/lg-netem/$GW}
LOOP_MAX_S=${NETEM_LOOP_MAX_S:-3600}
RELAY_BIN=${LG_RELAY_BIN:-$HERE/../build/lg-relay}
NFT_TABLE=lgnetem

die() { echo "ns.sh: $*" >&2; exit 1; }
say() { echo "ns.sh: $*"; }
gw() { ip netns exec "$GW" "$@"; }
cl() { ip netns exec "$CL" "$@"; }
have_ns() { [ -e "/run/netns/$1" ]; }

need_root() { [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, tc, nft)"; }
need_up() { have_ns "$GW" && have_ns "$CL" || die "namespaces not up; run: $0 up"; }

# A pid from a pid file, only if that process is still the one we started (its command
# line holds `what`), so a recycled pid is never signalled.
live_pid() {
	local f=$STATE/$1.pid what=$2 pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	[[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$what" || return 1
	echo "$pid"
}

stop_helper() {
	local name=$1 what=$2 pid
	if pid=$(live_pid "$name" "$what"); then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
		say "stopped $name (pid $pid)"
	fi
	rm -f "$STATE/$name.pid"
}

cmd_up() {
	need_root
	command -v nft >/dev/null || die "nft not found (Debian package nftables; scripts/deps.sh test)"
	have_ns "$GW" || ip netns add "$GW"
	have_ns "$CL" || ip netns add "$CL"
	if ! ip -n "$GW" link show "$GW_DEV" >/dev/null 2>&1; then
		ip -n "$CL" link del "$CL_DEV" 2>/dev/null || true # half of an old pair
		ip -n "$GW" link add "$GW_DEV" type veth peer name "$CL_DEV" netns "$CL"
	fi
	ip -n "$GW" addr replace "$GW_IP/24" dev "$GW_DEV"
	ip -n "$CL" addr replace "$CL_IP/24" dev "$CL_DEV"
	ip -n "$GW" link set lo up
	ip -n "$CL" link set lo up
	ip -n "$GW" link set "$GW_DEV" up
	ip -n "$CL" link set "$CL_DEV" up
	mkdir -p "$STATE"
	say "up: $GW ($GW_DEV $GW_IP) <-> $CL ($CL_DEV $CL_IP)"
}

cmd_clear() {
	need_root
	stop_helper blackout "ns.sh"
	stop_helper burst "ns.sh"
	stop_helper oneshot "ns.sh"
	stop_helper relay "lg-relay"
	rm -f "$STATE/relay.json" "$STATE/relay.log" "$STATE/profile"
	if have_ns "$GW"; then
		ip -n "$GW" link set "$GW_DEV" up 2>/dev/null || true
		gw nft delete table inet "$NFT_TABLE" 2>/dev/null || true
		cl nft delete table inet "$NFT_TABLE" 2>/dev/null || true
		gw tc qdisc del dev "$GW_DEV" root 2>/dev/null || true
	fi
	if have_ns "$CL"; then
		cl tc qdisc del dev "$CL_DEV" root 2>/dev/null || true
	fi
}

cmd_down() {
	need_root
	[ -d "$STATE" ] && cmd_clear >/dev/null
	have_ns "$GW" && ip netns del "$GW"
	have_ns "$CL" && ip netns del "$CL"
	rm -rf "$STATE"
	say "down"
}

# "2.5" -> 25 (per mille); numgen needs integers.
permille() { awk -v p="$1" 'BEGIN { if (p !~ /^[0-9]+(\.[0-9]+)?$/ || p > 100) exit 1; printf "%d", p * 10 + 0.5 }'; }

# The loss chains: one rule each way on the veth, in a table only we use.
nft_loss() {
	local pm=$1
	gw nft -f - <<-EOF
	add table inet $NFT_TABLE
	add chain inet $NFT_TABLE loss_in { type filter hook input priority 0; }
	add chain inet $NFT_TABLE loss_out { type filter hook output priority 0; }
	flush chain inet $NFT_TABLE loss_in
	flush chain inet $NFT_TABLE loss_out
	add rule inet $NFT_TABLE loss_in iifname "$GW_DEV" numgen random mod 1000 < $pm counter drop
	add rule inet $NFT_TABLE loss_out oifname "$GW_DEV" numgen random mod 1000 < $pm counter drop
	EOF
}

tbf() { # namespace dev kbit
	local burst=$(($3 * 1000 / 8 / 50)) # 20 ms worth, at least two full frames
	[ "$burst" -ge 3200 ] || burst=3200
	ip netns exec "$1" tc qdisc replace dev "$2" root tbf rate "${3}kbit" burst "$burst" latency 300ms
}

have_netem() {
	[ "${NETEM_FORCE_FALLBACK:-0}" = 1 ] && return 1
	gw tc qdisc add dev "$GW_DEV" root netem delay 0ms 2>/dev/null || return 1
	gw tc qdisc del dev "$GW_DEV" root
}

# A blackout drops every packet arriving over the link, in each namespace's input hook:
# both ends lose what the other sends, as in a tunnel, and neither sees a local error.
# (Taking the link down instead makes the sender's own stack refuse the packets: its TCP
# then retries every 500 ms without backing off and recovers the moment the link is back,
# which no real network does.)
blackout_on() {
	local ns dev
	for ns in "$GW:$GW_DEV" "$CL:$CL_DEV"; do
		dev=${ns#*:}
		ip netns exec "${ns%%:*}" nft -f - <<-EOF
		add table inet $NFT_TABLE
		add chain inet $NFT_TABLE blackout { type filter hook input priority -10; }
		flush chain inet $NFT_TABLE blackout
		add rule inet $NFT_TABLE blackout iifname "$dev" counter drop
		EOF
	done
}

blackout_off() {
	gw nft delete chain inet "$NFT_TABLE" blackout 2>/dev/null || true
	cl nft delete chain inet "$NFT_TABLE" blackout 2>/dev/null || true
}

# Background loops: stdin/stdout/stderr detached so whoever ran ns.sh is not held; bounded
# by LOOP_MAX_S; on TERM they restore what they changed before exiting.
blackout_loop() {
	local end=$((SECONDS + LOOP_MAX_S)) s
	trap 'kill $s 2>/dev/null; blackout_off; exit 0' TERM
	while [ $SECONDS -lt $end ]; do
		sleep "$BLACKOUT_GAP_S" & s=$!; wait $s
		blackout_on
		sleep $((BLACKOUT_MIN_S + RANDOM % (BLACKOUT_MAX_S - BLACKOUT_MIN_S + 1))) & s=$!; wait $s
		blackout_off
	done
}

burst_loop() {
	local end=$((SECONDS + LOOP_MAX_S)) s
	trap 'kill $s 2>/dev/null; nft_loss "$BASE_PM"; exit 0' TERM
	while [ $SECONDS -lt $end ]; do
		sleep "$LOSS_BURST_EVERY_S" & s=$!; wait $s
		nft_loss "$LOSS_BURST_PM"
		sleep "$LOSS_BURST_S" & s=$!; wait $s
		nft_loss "$BASE_PM"
	done
}

start_loop() { # name function
	( "$2" ) </dev/null >/dev/null 2>&1 &
	echo $! >"$STATE/$1.pid"
}

start_relay() { # flags...
	[ -x "$RELAY_BIN" ] || die "lg-relay not found at $RELAY_BIN (build it, or set LG_RELAY_BIN)"
	ip netns exec "$GW" "$RELAY_BIN" --listen "$GW_IP:$RELAY_PORT" --upstream "$GW_IP:$GW_PORT" \
		--control 127.0.0.1:0 --name "$PROFILE" "$@" \
		</dev/null >"$STATE/relay.json" 2>"$STATE/relay.log" &
	echo $! >"$STATE/relay.pid"
	for _ in $(seq 50); do [ -s "$STATE/relay.json" ] && break; sleep 0.1; done
	[ -s "$STATE/relay.json" ] || die "lg-relay did not start: $(cat "$STATE/relay.log")"
	# clients keep using GW_IP:GW_PORT; the relay's own upstream connection is local, so
	# it is not redirected again
	gw nft -f - <<-EOF
	add table inet $NFT_TABLE
	add chain inet $NFT_TABLE relay { type nat hook prerouting priority dstnat; }
	add rule inet $NFT_TABLE relay iifname "$GW_DEV" tcp dport $GW_PORT redirect to :$RELAY_PORT
	EOF
}

cmd_profile() {
	need_root
	need_up
	local arg=${1:?usage: ns.sh profile NAME|FILE} file applied=()
	if [ -f "$arg" ]; then file=$arg; else file=$HERE/profiles/$arg.conf; fi
	if [ ! -f "$file" ]; then
		local have=() f
		for f in "$HERE"/profiles/*.conf; do have+=("$(basename "$f" .conf)"); done
		die "no profile '$arg' (have: ${have[*]})"
	fi
	cmd_clear >/dev/null

	DESCRIPTION="" DELAY_MS=0 JITTER_MS=0 LOSS_PCT=0 RATE_DOWN_KBIT=0 RATE_UP_KBIT=0
	BLACKOUT_GAP_S=0 BLACKOUT_MIN_S=0 BLACKOUT_MAX_S=0
	LOSS_BURST_EVERY_S=0 LOSS_BURST_S=0 LOSS_BURST_PCT=0
	STALL_EVERY_MS=0 STALL_MS=0 CUT_MIN_MS=0 CUT_MAX_MS=0
	# shellcheck source=/dev/null
	. "$file"
	PROFILE=$(basename "$file" .conf)
	LOSS_PM=$(permille "$LOSS_PCT") || die "$file: LOSS_PCT '$LOSS_PCT' is not a percentage"
	LOSS_BURST_PM=$(permille "$LOSS_BURST_PCT") || die "$file: bad LOSS_BURST_PCT"
	[ "$BLACKOUT_MAX_S" -ge "$BLACKOUT_MIN_S" ] || die "$file: BLACKOUT_MAX_S < BLACKOUT_MIN_S"

	local relay_flags=()
	BASE_PM=$LOSS_PM # the nft loss outside bursts: 0 when netem already makes the loss
	if have_netem; then
		BASE_PM=0
		local spec ns dev rate extra
		for spec in "$GW $GW_DEV $RATE_DOWN_KBIT" "$CL $CL_DEV $RATE_UP_KBIT"; do
			read -r ns dev rate <<<"$spec"
			extra=()
			[ "$rate" -gt 0 ] && extra=(rate "${rate}kbit")
			ip netns exec "$ns" tc qdisc replace dev "$dev" root netem delay "${DELAY_MS}ms" \
				"${JITTER_MS}ms" loss "${LOSS_PCT}%" "${extra[@]}"
		done
		applied+=("netem: delay ${DELAY_MS}ms +-${JITTER_MS}ms, loss ${LOSS_PCT}% each way (packets may reorder under jitter)")
		[ "$RATE_DOWN_KBIT$RATE_UP_KBIT" = 00 ] || applied+=("netem: rate down ${RATE_DOWN_KBIT} / up ${RATE_UP_KBIT} kbit/s")
	else
		if [ "$LOSS_PM" -gt 0 ] || [ "$LOSS_BURST_PM" -gt 0 ]; then
			nft_loss "$LOSS_PM"
			applied+=("loss ${LOSS_PCT}% each way: nft inet $NFT_TABLE numgen random drop")
		fi
		if [ "$RATE_DOWN_KBIT" -gt 0 ]; then
			tbf "$GW" "$GW_DEV" "$RATE_DOWN_KBIT"
			applied+=("rate down ${RATE_DOWN_KBIT} kbit/s: tbf on $GW_DEV")
		fi
		if [ "$RATE_UP_KBIT" -gt 0 ]; then
			tbf "$CL" "$CL_DEV" "$RATE_UP_KBIT"
			applied+=("rate up ${RATE_UP_KBIT} kbit/s: tbf on $CL_DEV")
		fi
		[ "$DELAY_MS$JITTER_MS" = 00 ] || relay_flags+=(--delay-ms "$DELAY_MS" --jitter-ms "$JITTER_MS")
	fi
	[ "$STALL_EVERY_MS" -gt 0 ] && relay_flags+=(--stall-every-ms "$STALL_EVERY_MS" --stall-ms "$STALL_MS")
	[ "$CUT_MAX_MS" -gt 0 ] && relay_flags+=(--cut-min-ms "$CUT_MIN_MS" --cut-max-ms "$CUT_MAX_MS")
	if [ ${#relay_flags[@]} -gt 0 ]; then
		start_relay "${relay_flags[@]}"
		applied+=("lg-relay ${relay_flags[*]} on $GW_IP:$RELAY_PORT; $GW_DEV tcp dport $GW_PORT redirected to it (pid $(cat "$STATE/relay.pid"))")
	fi
	if [ "$BLACKOUT_GAP_S" -gt 0 ] && [ "$BLACKOUT_MAX_S" -gt 0 ]; then
		start_loop blackout blackout_loop
		applied+=("blackouts: all dropped for ${BLACKOUT_MIN_S}-${BLACKOUT_MAX_S}s after every ${BLACKOUT_GAP_S}s (pid $(cat "$STATE/blackout.pid"), ends after ${LOOP_MAX_S}s)")
	fi
	if [ "$LOSS_BURST_EVERY_S" -gt 0 ] && [ "$LOSS_BURST_S" -gt 0 ]; then
		nft_loss "$BASE_PM"
		start_loop burst burst_loop
		applied+=("loss bursts: ${LOSS_BURST_PCT}% for ${LOSS_BURST_S}s every ${LOSS_BURST_EVERY_S}s (pid $(cat "$STATE/burst.pid"))")
	fi
	echo "$PROFILE" >"$STATE/profile"
	say "profile $PROFILE${DESCRIPTION:+: $DESCRIPTION}"
	[ ${#applied[@]} -gt 0 ] || applied+=("nothing: the link is clean")
	printf '  %s\n' "${applied[@]}"
}

cmd_blackout() {
	need_root
	need_up
	local s=${1:?usage: ns.sh blackout SECONDS}
	[[ "$s" =~ ^[0-9]+$ ]] && [ "$s" -ge 1 ] && [ "$s" -le "$LOOP_MAX_S" ] || die "blackout: SECONDS must be 1..$LOOP_MAX_S"
	stop_helper oneshot "ns.sh"
	blackout_on
	( trap 'blackout_off; exit 0' TERM
	  sleep "$s" & wait $!
	  blackout_off ) </dev/null >/dev/null 2>&1 &
	echo $! >"$STATE/oneshot.pid"
	say "blackout: everything on the link dropped for ${s}s"
}

relay_ctl() {
	local port
	port=$(sed -n 's/.*"control_port":\([0-9]*\).*/\1/p' "$STATE/relay.json" 2>/dev/null)
	[ -n "$port" ] || die "no relay running (the current profile needs none)"
	gw bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"'; printf "%s\n" "$1" >&3; head -n1 <&3' _ "$*"
}

cmd_status() {
	need_root
	if ! have_ns "$GW" || ! have_ns "$CL"; then say "down"; return 0; fi
	say "up: $GW ($GW_IP) <-> $CL ($CL_IP); profile: $(cat "$STATE/profile" 2>/dev/null || echo none)"
	ip -n "$GW" -br addr show dev "$GW_DEV"
	ip -n "$CL" -br addr show dev "$CL_DEV"
	echo "qdisc $GW_DEV: $(gw tc qdisc show dev "$GW_DEV" | head -n1)"
	echo "qdisc $CL_DEV: $(cl tc qdisc show dev "$CL_DEV" | head -n1)"
	gw nft list table inet "$NFT_TABLE" 2>/dev/null || echo "no nft table $NFT_TABLE"
	local h name what pid
	for h in "blackout ns.sh" "burst ns.sh" "oneshot ns.sh" "relay lg-relay"; do
		read -r name what <<<"$h"
		if pid=$(live_pid "$name" "$what"); then echo "$name: running (pid $pid)"; fi
	done
	if [ -s "$STATE/relay.json" ]; then echo "relay: $(relay_ctl stats)"; fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
clear) cmd_clear; say "profile cleared" ;;
profile) shift; cmd_profile "$@" ;;
blackout) shift; cmd_blackout "$@" ;;
exec)
	need_root
	need_up
	case "${2:-}" in
	gw) ns=$GW ;;
	cl) ns=$CL ;;
	*) die "usage: ns.sh exec gw|cl CMD..." ;;
	esac
	shift 2
	[ $# -gt 0 ] || die "usage: ns.sh exec gw|cl CMD..."
	exec ip netns exec "$ns" "$@"
	;;
ctl) shift; need_root; relay_ctl "$@" ;;
status) cmd_status ;;
-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
*) die "usage: ns.sh up|down|profile NAME|clear|blackout S|exec gw|cl CMD...|ctl CMD|status (--help)" ;;
esac
