#!/bin/bash
# Regenerates link/hot-text.ld: profiles the running daemon under
# callgrind in two lab scenarios and lists the functions it executed once
# up (see build.rs for why). Run as root on a machine with the lab's
# dependencies (scripts/deps.sh) and valgrind, after changes that move a
# lot of code; a stale script only loosens the grouping, it never breaks
# the build. Takes a few minutes.
#
#   1. OSPF: topologies/ospf-scale-frr.toml (an FRR router with 20,000
#      external LSAs); the director's daemon is restarted under callgrind,
#      its counters zeroed when it says it is running, and it loads the
#      database, stays Full and answers the CLI's queries.
#   2. Checks: a namespace of this script's own with TCP listeners and an
#      HTTP server; the daemon runs an `ipvs` service with ten servers and
#      a `local` service with HTTP and TCP checks; metrics are scraped.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in valgrind callgrind_control python3 nm; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (lab namespaces)" >&2; exit 1; }

work=$(mktemp -d /tmp/anycastd-hot-text.XXXXXX)
name="hot$$"
ns="acd-hot-$$"
bin="$work/target/release/anycastd"
cleanup() {
    "$bin" lab down "$name" >/dev/null 2>&1 || true
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --target-dir "$work/target"

# Waits up to $2 seconds for the shell condition $1.
wait_for() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if eval "$1"; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for: $1" >&2
    exit 1
}

# Runs the daemon with config $2 under callgrind in namespace $1 (profile
# $3), zeroes its counters once it is running; prints valgrind's pid.
profile() {
    local log="${3%.out}.log"
    ip netns exec "$1" valgrind --tool=callgrind --demangle=no \
        --callgrind-out-file="$3" "$bin" run --config "$2" >"$log" 2>&1 &
    local pid=$!
    wait_for "grep -q 'anycastd running' '$log'" 120
    callgrind_control -z "$pid" >/dev/null
    echo "$pid"
}

# 1. OSPF database load and CLI queries.
"$bin" lab up --name "$name" topologies/ospf-scale-frr.toml
dir="/run/anycastd-lab/$name/nodes/d1/anycastd"
kill -9 "$(cat "$dir/anycastd.pid")"
sleep 1
rm -f "$dir/anycastd.sock"
vg=$(profile "$name.d1" "$dir/anycastd.toml" "$work/ospf.out")
sock="$dir/anycastd.sock"
wait_for "'$bin' show ospf neighbor --socket '$sock' 2>/dev/null | grep -q Full" 180
sleep 5
for q in "status" "show ospf neighbor" "show ospf neighbor --json" "show ospf interface" \
    "show ospf database" "show counters" "show services"; do
    # shellcheck disable=SC2086
    "$bin" $q --socket "$sock" >/dev/null
done
callgrind_control -d "$vg" >/dev/null
# A dump is complete once its last line, the totals, is written.
wait_for "grep -qs '^totals:' '$work'/ospf.out.*" 60
kill -9 "$vg"
"$bin" lab down "$name" >/dev/null

# 2. Health checks, IPVS service, metrics.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth1
ip -n "$ns" addr add 198.18.0.0/31 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set eth1 up
python3 - "$work/checks.toml" "$work/checks.sock" <<'EOF'
import sys
c = f'router_id = "198.18.0.11"\ncontrol_socket = "{sys.argv[2]}"\n'
c += '[ospf]\n[[ospf.interface]]\nname = "eth0"\nhello = 1\ndead = 4\n'
c += '[[service]]\nname = "lvs"\nvip = "192.0.2.10"\nport = 80\nmode = "ipvs"\n'
c += '[[service.check]]\ntype = "tcp"\ninterval_ms = 500\n'
for i in range(10):
    c += f'[[service.server]]\naddress = "127.0.0.1"\nport = {20000 + i}\n'
c += '[[service]]\nname = "web"\nvip = "192.0.2.11"\nport = 8080\n'
c += '[[service.check]]\ntype = "http"\naddress = "127.0.0.2"\nport = 8080\npath = "/"\ninterval_ms = 300\n'
c += '[[service.check]]\ntype = "tcp"\naddress = "127.0.0.1"\nport = 20000\ninterval_ms = 300\n'
open(sys.argv[1], "w").write(c)
EOF
ip netns exec "$ns" python3 -c '
import http.server, socket, threading, time
def accept(s):
    while True:
        c, _ = s.accept(); c.close()
for i in range(10):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 20000 + i)); s.listen(100)
    threading.Thread(target=accept, args=(s,), daemon=True).start()
h = http.server.ThreadingHTTPServer(("127.0.0.2", 8080), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=h.serve_forever, daemon=True).start()
time.sleep(120)' >/dev/null 2>&1 &
vg=$(profile "$ns" "$work/checks.toml" "$work/checks.out")
sleep 15
for _ in 1 2 3; do
    ip netns exec "$ns" python3 -c \
        'import urllib.request; urllib.request.urlopen("http://127.0.0.1:9274/metrics").read()'
done
"$bin" status --socket "$work/checks.sock" >/dev/null
"$bin" show services --socket "$work/checks.sock" >/dev/null
sleep 5
callgrind_control -d "$vg" >/dev/null
wait_for "grep -qs '^totals:' '$work'/checks.out.*" 60
kill -9 "$vg"

python3 scripts/hot-text.py "$bin" link/hot-text.ld "$work"/ospf.out.* "$work"/checks.out.*
