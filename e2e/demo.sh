#!/usr/bin/env bash
# sesame demo: a server and a client in throwaway network namespaces.
# The server runs `sesame run` with the config embedded below and a service
# on port 22; the client knocks with `sesame knock` and connects. Needs
# root, ip (iproute2) and nft (nftables). Touches nothing outside its own
# namespaces, which it deletes on exit, Ctrl-C included.
#
#   make demo          (or: SESAME_BIN=bin/sesame LISTEN_BIN=bin/demo-listen e2e/demo.sh)
set -euo pipefail

SESAME=${SESAME_BIN:-bin/sesame}
LISTEN=${LISTEN_BIN:-bin/demo-listen}
SRV=sesame-demo-srv-$$
CLI=sesame-demo-cli-$$
WORK=$(mktemp -d /tmp/sesame-demo.XXXXXX)
SERVER4=192.0.2.1 CLIENT4=192.0.2.2 SERVER6=2001:db8:d::1 CLIENT6=2001:db8:d::2

[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces and nftables)" >&2; exit 1; }
for tool in ip nft "$SESAME" "$LISTEN"; do
	command -v "$tool" >/dev/null || { echo "demo: $tool not found (make demo builds the binaries; apt-get install iproute2 nftables)" >&2; exit 1; }
done

cleanup() {
	set +e
	trap - EXIT INT TERM
	for pid in ${DAEMON:-} ${SERVICE:-}; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	ip netns del "$SRV" 2>/dev/null
	ip netns del "$CLI" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
fail() { echo "demo: FAILED: $*" >&2; echo "--- daemon log:" >&2; cat "$WORK/sesame.log" >&2; exit 1; }
in_srv() { ip netns exec "$SRV" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }
# granted ADDR: whether ADDR has a grant (pending, open or manual) now.
granted() { local out; out=$(in_srv nft list table inet sesame); [[ $out == *"$1 . "* ]]; }
# connect HOST: one TCP connect to port 22 from the client; prints the greeting.
connect() { in_cli timeout 3 bash -c "exec 3<>/dev/tcp/$1/22 && head -n1 <&3" 2>/dev/null; }

step "network namespaces $SRV (server) and $CLI (client), joined by a veth pair"
ip netns add "$SRV"
ip netns add "$CLI"
ip link add veth-srv netns "$SRV" type veth peer name veth-cli netns "$CLI"
in_srv ip link set lo up
in_cli ip link set lo up
in_srv ip addr add "$SERVER4/24" dev veth-srv
in_cli ip addr add "$CLIENT4/24" dev veth-cli
in_srv ip addr add "$SERVER6/64" dev veth-srv nodad
in_cli ip addr add "$CLIENT6/64" dev veth-cli nodad
in_srv ip link set veth-srv up
in_cli ip link set veth-cli up
echo "server $SERVER4 $SERVER6, client $CLIENT4 $CLIENT6"

step "the embedded config"
cat > "$WORK/sesame.hcl" <<'HCL'
interfaces = ["veth-srv"]
closed     = "reject"   # closed ports answer at once (a reset), for a snappy demo

door "ssh" {
  sequence    = ["7000/tcp", "8000/udp", "9000/tcp"]
  seq_timeout = "5s"
  open        = ["22/tcp"]
  open_for    = "6s"
}
HCL
cat "$WORK/sesame.hcl"
show "$SESAME" check -c "$WORK/sesame.hcl"

step "a service on port 22 and sesame run, in the server namespace"
ip netns exec "$SRV" "$LISTEN" "[::]:22" "SSH-2.0-demo hello from the server namespace" &
SERVICE=$!
ip netns exec "$SRV" "$SESAME" run -c "$WORK/sesame.hcl" --log-level debug >"$WORK/sesame.log" 2>&1 &
DAEMON=$!
for _ in $(seq 100); do grep -q 'msg=ready' "$WORK/sesame.log" && break; sleep 0.1; done
grep -q 'msg=ready' "$WORK/sesame.log" || fail "sesame run did not become ready"
cat "$WORK/sesame.log"

step "before the knock: port 22 is closed to the client"
printf '$ connect %s:22 from the client\n' "$SERVER4"
if connect "$SERVER4"; then fail "port 22 was open before the knock"; fi
echo "refused, as it should be"

step "knock, then connect"
show in_cli "$SESAME" knock -v "$SERVER4" 7000 8000:udp 9000
for _ in $(seq 50); do granted "$CLIENT4" && break; sleep 0.02; done
show in_srv nft list table inet sesame
echo "the knock is pending (pend4_ssh): the client may connect within confirm_within (6s here, open_for's)"
show in_srv "$SESAME" status -c "$WORK/sesame.hcl"
printf '$ connect %s:22 from the client\n' "$SERVER4"
connect "$SERVER4" || fail "port 22 stayed closed after the knock"
echo "the kernel saw the client complete the TCP handshake: the grant is confirmed (open4_ssh)"
show in_srv "$SESAME" status -c "$WORK/sesame.hcl"

step "from the server itself, over loopback, the port needs no knock"
printf '$ connect 127.0.0.1:22 on the server\n'
in_srv timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/22 && head -n1 <&3" || fail "loopback to port 22 was refused"

step "the same over IPv6"
show in_cli "$SESAME" knock -v "$SERVER6" 7000 8000/udp 9000
for _ in $(seq 50); do granted "$CLIENT6" && break; sleep 0.02; done
printf '$ connect [%s]:22 from the client\n' "$SERVER6"
connect "$SERVER6" || fail "port 22 stayed closed over IPv6 after the knock"

step "the kernel expires the grant (open_for = 6s), even without the daemon"
show kill -TERM "$DAEMON"
wait "$DAEMON" || true
DAEMON=
echo "sesame run has stopped; the table and its grants stay in the kernel:"
show in_srv "$SESAME" status -c "$WORK/sesame.hcl"
for _ in $(seq 100); do granted "$CLIENT4" || break; sleep 0.1; done
show in_srv "$SESAME" status -c "$WORK/sesame.hcl"
printf '$ connect %s:22 from the client\n' "$SERVER4"
if connect "$SERVER4"; then fail "port 22 was still open after the grant expired"; fi
echo "refused again: the grant expired in the kernel"

step "daemon log"
cat "$WORK/sesame.log"
printf '\ndemo: OK\n'
