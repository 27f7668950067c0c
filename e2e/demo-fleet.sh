#!/usr/bin/env bash
# sesame fleet demo: one knock opens three hosts. Throwaway network
# namespaces: a hub (the router, and a 3-node NATS JetStream cluster with
# the permissions of docs/fleet/nats-server.conf), three hosts running
# `sesame run` in fleet "prod", group "web", and a client. The client
# knocks once, at the first host; the door opens on all three. Needs root,
# ip (iproute2) and nft (nftables). Touches nothing outside its own
# namespaces, which it deletes on exit, Ctrl-C included.
#
#   make demo-fleet    (or: SESAME_BIN=bin/sesame LISTEN_BIN=bin/demo-listen
#                       NATS_SERVER_BIN=bin/nats-server NK_BIN=bin/nk e2e/demo-fleet.sh)
set -euo pipefail

SESAME=${SESAME_BIN:-bin/sesame}
LISTEN=${LISTEN_BIN:-bin/demo-listen}
NATS=${NATS_SERVER_BIN:-bin/nats-server}
NK=${NK_BIN:-bin/nk}
HERE=$(cd "$(dirname "$0")" && pwd)
PERMS=$HERE/../docs/fleet/nats-server.conf
TAG=$$
HUB=sesame-fdemo-hub-$TAG
CLI=sesame-fdemo-cli-$TAG
WORK=$(mktemp -d /tmp/sesame-demo-fleet.XXXXXX)
# The hosts are three members of docs/fleet/nats-server.conf's example.
MEMBERS=(bastion-1 web-1 web-2)
HOSTNS=() HOST4=() HUB4=()
for i in 0 1 2; do
	HOSTNS+=("sesame-fdemo-h$((i + 1))-$TAG")
	HUB4+=("198.51.100.$((16 * (i + 1) + 1))")
	HOST4+=("198.51.100.$((16 * (i + 1) + 2))")
done
CLIENT4=203.0.113.2 CLIHUB4=203.0.113.1
NATS4=(192.0.2.10 192.0.2.11 192.0.2.12)

[ "$(id -u)" = 0 ] || { echo "demo-fleet: needs root (network namespaces and nftables)" >&2; exit 1; }
for tool in ip nft "$SESAME" "$LISTEN" "$NATS" "$NK"; do
	command -v "$tool" >/dev/null || { echo "demo-fleet: $tool not found (make demo-fleet builds the binaries; apt-get install iproute2 nftables)" >&2; exit 1; }
done
[ -r "$PERMS" ] || { echo "demo-fleet: $PERMS not found" >&2; exit 1; }

PIDS=()
cleanup() {
	set +e
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for ns in "${HOSTNS[@]}" "$CLI" "$HUB"; do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "demo-fleet: interrupted, cleaning up"; exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
fail() {
	echo "demo-fleet: FAILED: $*" >&2
	for f in "$WORK"/*.log; do echo "--- $f:" >&2; cat "$f" >&2; done
	exit 1
}
in_hub() { ip netns exec "$HUB" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }
in_host() { local i=$1; shift; ip netns exec "${HOSTNS[$i]}" "$@"; }
# wait_log FILE TEXT [TENTHS]: waits until FILE contains TEXT.
wait_log() {
	for _ in $(seq "${3:-100}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
# granted I ADDR: whether host I has an open grant for ADDR.
granted() { local out; out=$(in_host "$1" nft list set inet sesame open4_ssh 2>/dev/null) && [[ $out == *"$2 . "* ]]; }
# connect I: one TCP connect from the client to port 22 of host I; prints the greeting.
connect() { in_cli timeout 3 bash -c "exec 3<>/dev/tcp/${HOST4[$1]}/22 && head -n1 <&3" 2>/dev/null; }

step "network namespaces: a hub (the router and the NATS cluster), three hosts, a client"
ip netns add "$HUB"
in_hub ip link set lo up
in_hub sysctl -qw net.ipv4.ip_forward=1
for a in "${NATS4[@]}"; do in_hub ip addr add "$a/32" dev lo; done
join() { # join NS HUB-IFACE HUB-ADDR PEER-ADDR
	ip netns add "$1"
	ip netns exec "$1" ip link set lo up
	ip link add "$2" netns "$HUB" type veth peer name eth0 netns "$1"
	in_hub ip addr add "$3/28" dev "$2"
	in_hub ip link set "$2" up
	ip netns exec "$1" ip addr add "$4/28" dev eth0
	ip netns exec "$1" ip link set eth0 up
	ip netns exec "$1" ip route add default via "$3"
}
for i in 0 1 2; do
	join "${HOSTNS[$i]}" "h-$((i + 1))" "${HUB4[$i]}" "${HOST4[$i]}"
	echo "host $((i + 1)) (member ${MEMBERS[$i]}): ${HOST4[$i]}"
done
join "$CLI" h-cli "$CLIHUB4" "$CLIENT4"
echo "client: $CLIENT4; NATS servers: ${NATS4[*]} (on the hub)"

step "a 3-node NATS JetStream cluster with the permissions of docs/fleet/nats-server.conf"
echo "Each member, and the admin, gets an nkey (nk -gen user -pubout); the hosts' creds files hold the seeds."
VARS=""
for u in "${MEMBERS[@]}" web-3 web-4 admin; do
	{ read -r seed; read -r pub; } < <("$NK" -gen user -pubout)
	printf '%s\n' "$seed" >"$WORK/$u.nk"
	chmod 600 "$WORK/$u.nk"
	v=NKEY_$(echo "$u" | tr 'a-z-' 'A-Z_')
	VARS+="$v: \"$pub\""$'\n'
done
AUTH=$(sed -n '/^authorization {$/,/^}$/p' "$PERMS")
for i in 0 1 2; do
	routes=""
	for j in 0 1 2; do [ "$j" = "$i" ] || routes+="    nats-route://${NATS4[$j]}:6222"$'\n'; done
	cat >"$WORK/nats-$((i + 1)).conf" <<EOF
server_name: nats-$((i + 1))
listen: ${NATS4[$i]}:4222
jetstream {
  store_dir: $WORK/nats-$((i + 1))
  max_file_store: 1GB
  max_memory_store: 64MB
}
cluster {
  name: sesame
  listen: ${NATS4[$i]}:6222
  routes: [
$routes  ]
}
$VARS
$AUTH
EOF
done
echo "nats-1.conf, without the authorization block (docs/fleet/nats-server.conf's, unchanged):"
sed -n '1,/^NKEY_/p' "$WORK/nats-1.conf" | sed '$d'
for i in 1 2 3; do
	ip netns exec "$HUB" "$NATS" -c "$WORK/nats-$i.conf" >"$WORK/nats-$i.log" 2>&1 &
	PIDS+=($!)
done
for i in 1 2 3; do
	wait_log "$WORK/nats-$i.log" "Server is ready" 200 || fail "nats-$i did not start"
done
echo "three nodes ready: $(grep -ho 'Listening for client connections on [^ ]*' "$WORK"/nats-*.log | sed 's/.* on //' | tr '\n' ' ')"

step "fleet keys: sesame keygen --fleet, one per host, and members.hcl (the same on every host)"
: >"$WORK/members.hcl"
for m in "${MEMBERS[@]}"; do
	"$SESAME" keygen --fleet -o "$WORK/$m.key" --member "$m" | grep -v '^#' |
		sed 's/may_grant = { }/may_grant = { web = ["ssh"] }/' >>"$WORK/members.hcl"
done
"$SESAME" keygen -o "$WORK/alice.totp" >/dev/null
cat "$WORK/members.hcl"

# config I [CREDS]: host I's sesame.hcl.
config() {
	cat <<EOF
interfaces = ["eth0"]
closed     = "reject"
state_dir  = "$WORK/${MEMBERS[$1]}-state"

fleet {
  name    = "prod"
  member  = "${MEMBERS[$1]}"
  key     = "$WORK/${MEMBERS[$1]}.key"
  members = "$WORK/members.hcl"
  groups  = ["web"]
  nats {
    servers = ["nats://${NATS4[0]}:4222", "nats://${NATS4[1]}:4222", "nats://${NATS4[2]}:4222"]
    creds   = "${2:-$WORK/${MEMBERS[$1]}.nk}"
  }
}

# A TOTP door: a code from alice's secret opens 22/tcp for 30s, here and
# (fleet_groups) on every host of group web.
door "ssh" {
  totp {
    port_range = "20000-29999"
    step       = "30s"
  }
  client "alice" { secret_file = "$WORK/alice.totp" }
  open         = ["22/tcp"]
  open_for     = "30s"
  fleet_groups = ["web"]
}
EOF
}
for i in 0 1 2; do config "$i" >"$WORK/${MEMBERS[$i]}.hcl"; done
config 0 "$WORK/admin.nk" >"$WORK/admin.hcl"

# The hosts are namespaces of this one machine: they share its clock,
# which may have no NTP daemon (adjtimex TIME_ERROR makes a host refuse
# fleet records). A real host never sets this.
export SESAME_FLEET_SKIP_CLOCK_CHECK=1

step "the admin creates the group's bucket: sesame run once with the admin's NATS credentials"
echo "(the members' permissions do not allow it: docs/fleet/nats-server.conf)"
ip netns exec "${HOSTNS[0]}" "$SESAME" run -c "$WORK/admin.hcl" >"$WORK/admin.log" 2>&1 &
ADMIN=$!
PIDS+=("$ADMIN")
wait_log "$WORK/admin.log" "msg=fleet-bucket-created" 300 || fail "the admin's sesame run did not create the bucket"
grep -h "msg=fleet-bucket-created" "$WORK/admin.log"
kill "$ADMIN"
wait "$ADMIN" 2>/dev/null || true

step "sesame run on the three hosts, and a service on port 22 of each"
echo "host 1's config (the others differ in member, key and creds):"
sed "s#$WORK#\$WORK#g" "$WORK/${MEMBERS[0]}.hcl"
show "$SESAME" check -c "$WORK/${MEMBERS[0]}.hcl"
for i in 0 1 2; do
	ip netns exec "${HOSTNS[$i]}" "$LISTEN" "0.0.0.0:22" "SSH-2.0-demo hello from host $((i + 1)) (${MEMBERS[$i]})" &
	PIDS+=($!)
	ip netns exec "${HOSTNS[$i]}" "$SESAME" run -c "$WORK/${MEMBERS[$i]}.hcl" >"$WORK/${MEMBERS[$i]}.log" 2>&1 &
	PIDS+=($!)
done
for i in 0 1 2; do
	wait_log "$WORK/${MEMBERS[$i]}.log" "msg=fleet-catch-up" 200 || fail "host $((i + 1)) did not join the fleet"
	# sesame run rewrites the status that sesame status shows every second.
	for _ in $(seq 30); do in_host "$i" "$SESAME" status -c "$WORK/${MEMBERS[$i]}.hcl" | grep -q ": connected to" && break; sleep 0.1; done
	echo "host $((i + 1)): $(in_host "$i" "$SESAME" status -c "$WORK/${MEMBERS[$i]}.hcl" | grep '^fleet ')"
done

step "before the knock: port 22 is closed to the client on every host"
for i in 0 1 2; do
	printf '$ connect %s:22 from the client\n' "${HOST4[$i]}"
	if connect "$i"; then fail "port 22 of host $((i + 1)) was open before the knock"; fi
	echo "refused"
done

step "knock once, at host 1 only (a TOTP code from alice's secret)"
show in_cli "$SESAME" knock -v --totp "$WORK/alice.totp" "${HOST4[0]}"
for i in 0 1 2; do
	for _ in $(seq 100); do granted "$i" "$CLIENT4" && break; sleep 0.02; done
	granted "$i" "$CLIENT4" || fail "no grant on host $((i + 1))"
done

step "the door is open on all three hosts"
# sesame status shows what sesame run last wrote (every second): wait
# for host 1's record to be counted as published, and the others' as applied.
for i in 0 1 2; do
	want="  applied 1 "
	[ "$i" = 0 ] && want="published 1,"
	for _ in $(seq 30); do in_host "$i" "$SESAME" status -c "$WORK/${MEMBERS[$i]}.hcl" | grep -q "$want" && break; sleep 0.1; done
done
for i in 0 1 2; do
	printf '\n\033[1m-- host %d (%s)\033[0m\n' "$((i + 1))" "${MEMBERS[$i]}"
	show in_host "$i" nft list set inet sesame open4_ssh
	show in_host "$i" "$SESAME" status -c "$WORK/${MEMBERS[$i]}.hcl"
	printf '$ connect %s:22 from the client\n' "${HOST4[$i]}"
	connect "$i" || fail "port 22 of host $((i + 1)) stayed closed"
done
echo
echo "Hosts 2 and 3 opened the door for $CLIENT4 from host 1's signed record: the element's"
echo "comment fleet:ssh:bastion-1:ID names the door, the origin and the record, and its"
echo "kernel timeout is what was left of the 30s, so it ends everywhere at the same time."

step "the hosts' logs"
for m in "${MEMBERS[@]}"; do
	echo "-- $m"
	grep -hE 'msg=(ready|fleet-connected|fleet-catch-up|open|fleet-open)' "$WORK/$m.log"
done
printf '\ndemo-fleet: OK\n'
