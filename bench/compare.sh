#!/usr/bin/env bash
# livegate against Nchan, side by side, with the same load generator (bench/fanout.c).
#
# For every scenario, rate and run, each server is started fresh, pinned to the
# same cores (--server-cpus: taskset for livegate, worker_cpu_affinity for the
# nginx workers), loaded by the same `fanout` command pinned to
# --gen-cpus, and stopped; the table shows the medians of --runs runs and the
# ratio livegate / Nchan. Nginx + libnginx-mod-nchan are installed with apt when
# missing (the benchmark needs them, the tests do not); the nginx configuration
# is written to a temporary directory and serves loopback only.
#
# Scenarios:
#   ws    --ws-conns WebSocket subscribers of one room, one publisher POSTing
#         --ws-msg-bytes messages at each rate of --ws-rates
#   poll  --poll-conns short-pollers of one hot room (--poll-rate messages/s),
#         Accept-Encoding: gzip, --poll-interval-ms between requests (0: closed
#         loop); Nchan walks its queue by interval-poll (one message per answer)
#   idle  --idle-conns idle WebSockets: server RSS growth per connection
#
# usage: bench/compare.sh [options] [ws] [poll] [idle]     (default: all three)
#   --build DIR            build directory with livegate and fanout (default: build)
#   --runs K               runs per point, medians reported (default 3)
#   --server-cpus LIST     taskset list for either server (default 0)
#   --gen-cpus LIST        taskset list for the generator (default 1)
#   --workers N            livegate workers / nginx worker processes (default: cpus in list)
#   --procs P              generator client processes (default 2)
#   --duration S --warmup S   measured window and warm-up, seconds (default 10, 2)
#   --ws-conns N --ws-rates "R1 R2 .." --ws-msg-bytes B   (10000, "10 50 100 200", 100)
#   --poll-conns N --poll-rate R --poll-interval-ms I     (2000, 500, 0)
#   --idle-conns N         (15000)
#   --flush-interval-ms F  livegate's room flush interval (default: livegate's default)
#   --livegate-args "..."  extra livegate flags
#   --port N               base port; livegate N, nginx N+1 (default 18400)
#   --out DIR              keep logs, configs and raw RESULT lines here (default: a temp dir)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/build
runs=3
server_cpus=0
gen_cpus=1
workers=
procs=2
duration=10
warmup=2
ws_conns=10000
ws_rates="10 50 100 200"
ws_bytes=100
poll_conns=2000
poll_rate=500
poll_interval=0
idle_conns=15000
flush=
lg_extra=
port=18400
out=
scenarios=()

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--server-cpus) server_cpus=$2; shift 2 ;;
	--gen-cpus) gen_cpus=$2; shift 2 ;;
	--workers) workers=$2; shift 2 ;;
	--procs) procs=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	--ws-conns) ws_conns=$2; shift 2 ;;
	--ws-rates) ws_rates=$2; shift 2 ;;
	--ws-msg-bytes) ws_bytes=$2; shift 2 ;;
	--poll-conns) poll_conns=$2; shift 2 ;;
	--poll-rate) poll_rate=$2; shift 2 ;;
	--poll-interval-ms) poll_interval=$2; shift 2 ;;
	--idle-conns) idle_conns=$2; shift 2 ;;
	--flush-interval-ms) flush=$2; shift 2 ;;
	--livegate-args) lg_extra=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	ws | poll | idle) scenarios+=("$1"); shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
[ ${#scenarios[@]} -gt 0 ] || scenarios=(ws poll idle)
if [ ! -x "$build/livegate" ] || [ ! -x "$build/fanout" ]; then
	echo "compare.sh: build livegate and fanout in $build first (cmake --build $build)" >&2
	exit 2
fi
ncpus=$(echo "$server_cpus" | tr ',' '\n' | wc -l)
[ -n "$workers" ] || workers=$ncpus
lg_port=$port
ng_port=$((port + 1))

if ! dpkg-query -W -f='${Status}' libnginx-mod-nchan 2>/dev/null | grep -q 'install ok installed'; then
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	echo "compare.sh: installing nginx + libnginx-mod-nchan" >&2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		nginx libnginx-mod-nchan >/dev/null
fi
nchan_so=$(dpkg -L libnginx-mod-nchan | grep 'ngx_nchan_module.so$' | head -1)

[ -n "$out" ] || out=$(mktemp -d /tmp/lg-compare.XXXXXX)
mkdir -p "$out"
results=$out/results.txt
: >"$results"

server_pid=
server_cmd=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	server_pid=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# worker_cpu_affinity masks for the cpus of a taskset list such as "0" or "0,1" or "0-1".
affinity_masks() {
	local cpus=() c max=0 masks=() i m
	for c in $(echo "$1" | tr ',' ' '); do
		if [[ $c == *-* ]]; then
			for ((i = ${c%-*}; i <= ${c#*-}; i++)); do cpus+=("$i"); done
		else
			cpus+=("$c")
		fi
	done
	for c in "${cpus[@]}"; do [ "$c" -gt "$max" ] && max=$c; done
	for ((i = 0; i < workers; i++)); do
		c=${cpus[$((i % ${#cpus[@]}))]}
		m=
		for ((b = max; b >= 0; b--)); do [ "$b" -eq "$c" ] && m+=1 || m+=0; done
		masks+=("$m")
	done
	echo "${masks[*]}"
}

write_nginx_conf() {
	local dir=$1
	mkdir -p "$dir/tmp"
	cat >"$dir/nginx.conf" <<EOF
load_module $nchan_so;
worker_processes $workers;
worker_cpu_affinity $(affinity_masks "$server_cpus");
worker_rlimit_nofile 20000;
daemon off;
pid $dir/nginx.pid;
# Errors only: an interval-poller that falls behind the buffer makes Nchan log a warning
# per request, and writing that log (~250 MB per run) would be measured as Nchan's cost.
error_log $dir/error.log error;
events { worker_connections 19500; use epoll; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  # The same gzip policy as livegate's defaults (gzip_min_bytes 512, gzip_level 6).
  gzip on;
  gzip_types *;
  gzip_min_length 512;
  gzip_comp_level 6;
  nchan_shared_memory_size 256M;
  server {
    listen 127.0.0.1:$ng_port backlog=4096;
    location ~ ^/pub/([A-Za-z0-9_-]+)\$ {
      nchan_publisher;
      nchan_channel_id \$1;
      # 2 s at 500 messages/s; with a 20,000-message buffer Nchan's interval-poll answers
      # cost 35 µs of CPU each instead of 19 (separate runs, docs/benchmarks.md).
      nchan_message_buffer_length 1000;
      nchan_message_timeout 60s;
    }
    location ~ ^/sub/([A-Za-z0-9_-]+)\$ {
      nchan_subscriber websocket;
      nchan_channel_id \$1;
      nchan_subscriber_first_message newest;
    }
    # Interval-poll walks the queue with If-Modified-Since / If-None-Match; a first
    # request without them must start somewhere, so it gets the oldest message.
    location ~ ^/poll/([A-Za-z0-9_-]+)\$ {
      nchan_subscriber intervalpoll;
      nchan_channel_id \$1;
      nchan_subscriber_first_message oldest;
    }
  }
}
EOF
}

wait_port() {
	local p=$1 i
	for ((i = 0; i < 100; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "compare.sh: nothing listens on port $p" >&2
	return 1
}

# Start one server; sets server_pid (the process to stop) and server_pids (what fanout samples).
start_server() {
	local which=$1 dir=$2
	if [ "$which" = livegate ]; then
		rm -rf "$dir/data"
		# shellcheck disable=SC2206
		local cmd=(taskset -c "$server_cpus" "$build/livegate" --port "$lg_port" --workers "$workers"
			--data-dir "$dir/data" --log-level warn --max-connections 100000
			--rate-uid 1000000 --burst-uid 1000000 --rate-room 10000000 --burst-room 10000000
			${flush:+--flush-interval-ms "$flush"} $lg_extra)
		server_cmd="${cmd[*]}"
		"${cmd[@]}" >>"$dir/livegate.log" 2>&1 &
		server_pid=$!
		wait_port "$lg_port"
		server_pids=$server_pid
	else
		write_nginx_conf "$dir"
		server_cmd="nginx -c $dir/nginx.conf -p $dir -e $dir/error.log"
		nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" &
		server_pid=$!
		wait_port "$ng_port"
		server_pids=$server_pid,$(pgrep -P "$server_pid" | paste -sd, -)
	fi
}

# run SCENARIO SERVER RATE RUN: one fanout run; appends its RESULT line to $results.
run_one() {
	local scen=$1 which=$2 rate=$3 k=$4 dir=$out/$1-$2 p args line
	mkdir -p "$dir"
	start_server "$which" "$dir"
	[ "$which" = livegate ] && p=$lg_port || p=$ng_port
	case $scen in
	ws) args=(--mode ws --conns "$ws_conns" --rate "$rate" --msg-bytes "$ws_bytes") ;;
	poll) args=(--mode poll --conns "$poll_conns" --rate "$rate" --interval-ms "$poll_interval") ;;
	idle) args=(--mode idle --conns "$idle_conns" --rate 0 --warmup 0 --duration 1 --drain 0 --settle 2) ;;
	esac
	[ "$scen" = idle ] || args+=(--warmup "$warmup" --duration "$duration")
	args=(--target "$which" --port "$p" --procs "$procs" --server-pid "$server_pids" \
		--label "$scen/$rate/$k" "${args[@]}")
	echo "+ $server_cmd" >>"$out/commands.txt"
	echo "+ taskset -c $gen_cpus $build/fanout ${args[*]}" >>"$out/commands.txt"
	line=$(taskset -c "$gen_cpus" "$build/fanout" "${args[@]}" |
		tee -a "$out/fanout.log" | grep '^RESULT' || true)
	cleanup
	if [ -z "$line" ]; then
		echo "compare.sh: $scen $which rate $rate run $k produced no result (see $out)" >&2
		return 0
	fi
	echo "$line" >>"$results"
	echo "  $which: $(echo "$line" | tr ' ' '\n' | grep -E '^(deliveries_per_s|requests_per_s|p99_ms|rss_per_conn_b|server_us_per_unit|errors|server_wait_s|gen_wait_s)=' | paste -sd' ' -)" >&2
}

# field NAME from the RESULT lines matching label LABEL and target T, as a median.
median() {
	local label=$1 target=$2 name=$3
	grep -F " target=$target " "$results" | grep -E " label=$label/[0-9]+ " |
		tr ' ' '\n' | grep "^$name=" | cut -d= -f2 | sort -g |
		awk '{v[NR]=$1} END {if (!NR) {print "-"; exit} if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

# "Nchan server/gen; livegate server/gen" run-queue waits for a label: how contended the cores were.
waits() {
	echo "$(fmt "$(median "$1" nchan server_wait_s)" 1) / $(fmt "$(median "$1" nchan gen_wait_s)" 1); $(fmt "$(median "$1" livegate server_wait_s)" 1) / $(fmt "$(median "$1" livegate gen_wait_s)" 1)"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a=="-"||b=="-"||b+0==0) print "-"; else printf "%.2f", a/b}'; }
fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN {if (v=="-") print "-"; else printf "%.*f", d, v}'; }

echo "compare.sh: server cpus $server_cpus ($workers workers), generator cpus $gen_cpus, $runs runs; output in $out" >&2
date -u +"%Y-%m-%dT%H:%M:%SZ" >"$out/date.txt"
for scen in "${scenarios[@]}"; do
	case $scen in
	ws) rates=$ws_rates ;;
	poll) rates=$poll_rate ;;
	idle) rates=0 ;;
	esac
	for rate in $rates; do
		for ((k = 1; k <= runs; k++)); do
			echo "$scen rate $rate run $k" >&2
			run_one "$scen" nchan "$rate" "$k"
			run_one "$scen" livegate "$rate" "$k"
		done
	done
done

{
	echo
	echo "## $(cat "$out/date.txt"): medians of $runs runs; servers on cpus $server_cpus ($workers workers), generator on cpus $gen_cpus"
	for scen in "${scenarios[@]}"; do
		echo
		case $scen in
		ws)
			echo "### ws: $ws_conns WebSocket subscribers, one room, $ws_bytes-byte messages"
			echo "| publish rate | Nchan deliveries/s | Nchan p50 / p99 ms | livegate deliveries/s | livegate p50 / p99 ms | ratio | server µs per delivery, Nchan / livegate | CPU wait s, server / generator: Nchan; livegate |"
			echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
			best_n=0 best_l=0
			for rate in $ws_rates; do
				nd=$(median "ws/$rate" nchan deliveries_per_s) ld=$(median "ws/$rate" livegate deliveries_per_s)
				n50=$(median "ws/$rate" nchan p50_ms) n99=$(median "ws/$rate" nchan p99_ms)
				l50=$(median "ws/$rate" livegate p50_ms) l99=$(median "ws/$rate" livegate p99_ms)
				nu=$(median "ws/$rate" nchan server_us_per_unit) lu=$(median "ws/$rate" livegate server_us_per_unit)
				echo "| $rate/s | $(fmt "$nd") | $(fmt "$n50" 1) / $(fmt "$n99" 1) | $(fmt "$ld") | $(fmt "$l50" 1) / $(fmt "$l99" 1) | $(ratio "$ld" "$nd") | $(fmt "$nu" 2) / $(fmt "$lu" 2) | $(waits "ws/$rate") |"
				awk -v p="$n99" 'BEGIN {exit !(p != "-" && p > 0 && p <= 100)}' &&
					best_n=$(awk -v a="$best_n" -v b="$nd" 'BEGIN {print (b > a ? b : a)}')
				awk -v p="$l99" 'BEGIN {exit !(p != "-" && p > 0 && p <= 100)}' &&
					best_l=$(awk -v a="$best_l" -v b="$ld" 'BEGIN {print (b > a ? b : a)}')
			done
			echo
			none() { if [ "$1" = 0 ]; then echo "none of the rates"; else fmt "$1"; fi; }
			echo "Best deliveries/s with p99 <= 100 ms: Nchan $(none "$best_n"), livegate $(none "$best_l"), ratio $(ratio "$best_l" "$best_n")."
			;;
		poll)
			echo "### poll: $poll_conns pollers (interval $poll_interval ms, 0 = closed loop), hot room at $poll_rate msg/s, gzip"
			echo "| | requests/s | messages/s | p99 ms | server µs per request | CPU wait s, server / generator |"
			echo "| --- | --- | --- | --- | --- | --- |"
			for t in nchan livegate; do
				echo "| $t | $(fmt "$(median "poll/$poll_rate" $t requests_per_s)") | $(fmt "$(median "poll/$poll_rate" $t deliveries_per_s)") | $(fmt "$(median "poll/$poll_rate" $t p99_ms)" 1) | $(fmt "$(median "poll/$poll_rate" $t server_us_per_unit)" 2) | $(fmt "$(median "poll/$poll_rate" $t server_wait_s)" 2) / $(fmt "$(median "poll/$poll_rate" $t gen_wait_s)" 2) |"
			done
			echo
			echo "Ratio livegate / Nchan requests/s: $(ratio "$(median "poll/$poll_rate" livegate requests_per_s)" "$(median "poll/$poll_rate" nchan requests_per_s)")."
			;;
		idle)
			echo "### idle: $idle_conns idle WebSockets, server RSS growth"
			n=$(median idle/0 nchan rss_per_conn_b) l=$(median idle/0 livegate rss_per_conn_b)
			echo "| | bytes per connection | connections |"
			echo "| --- | --- | --- |"
			echo "| nchan | $(fmt "$n") | $(fmt "$(median idle/0 nchan conns)") |"
			echo "| livegate | $(fmt "$l") | $(fmt "$(median idle/0 livegate conns)") |"
			echo
			echo "Nchan / livegate: $(ratio "$n" "$l")."
			;;
		esac
	done
} | tee "$out/table.md"
