#!/usr/bin/env bash
# Installs what `make demo` and `make test` need and a fresh Debian or
# Fedora machine lacks, only what is missing, and says what it installs:
#   --demo  nft (nftables) and ip (iproute2) only: what the demo needs
#   (none)  also what the tests drive: knock clients (knockd's knock, nc,
#           nmap, hping3, curl), setpriv, systemd-analyze, rpm
#   --lint  also staticcheck
set -euo pipefail

missing=()
command -v nft >/dev/null || missing+=(nftables)
command -v ip >/dev/null || missing+=(iproute2)
# The knock clients of the interop e2e tests (issue 4).
if [ "${1:-}" != --demo ] && command -v apt-get >/dev/null; then
	command -v knock >/dev/null || missing+=(knockd)
	command -v nc >/dev/null || missing+=(netcat-openbsd)
	command -v nmap >/dev/null || missing+=(nmap)
	command -v hping3 >/dev/null || missing+=(hping3)
	command -v curl >/dev/null || missing+=(curl)
	command -v fwknop >/dev/null || missing+=(fwknop-client) # SPA e2e (issue 8)
	command -v iptables >/dev/null || missing+=(iptables) # forward e2e: Docker's rules, iptables-nft (issue 13)
fi
if [ "${1:-}" != --demo ]; then
	command -v setpriv >/dev/null || missing+=(util-linux)      # e2e: unprivileged daemon
	command -v systemd-analyze >/dev/null || missing+=(systemd) # deploy: unit verify
	command -v rpm >/dev/null || { command -v apt-get >/dev/null && missing+=(rpm); } # deploy: rpm -qlp
fi
if ((${#missing[@]})); then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing ${missing[*]}: install them (as root) or run this as root" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	if command -v apt-get >/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
		# knockd's package must not leave a daemon running in this namespace.
		if [[ " ${missing[*]} " == *" knockd "* ]] && pidof knockd >/dev/null; then
			service knockd stop >/dev/null 2>&1 || true
		fi
	elif command -v dnf >/dev/null; then
		dnf install -y -q "${missing[@]}"
	else
		echo "deps: no apt-get or dnf: install ${missing[*]} by hand" >&2
		exit 1
	fi
fi

if [ "${1:-}" = --lint ]; then
	want=v0.8.2 # staticcheck 2026.2.2
	bin="$(go env GOPATH)/bin/staticcheck"
	if ! "$bin" -version 2>/dev/null | grep -q "(${want#v})"; then
		echo "deps: installing staticcheck $want"
		go install "honnef.co/go/tools/cmd/staticcheck@$want"
	fi
fi
