#!/bin/sh
# On removal (not upgrade) stop the daemon. Its table stays (fail closed)
# until `sesame down --yes`; see README "Uninstall".
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now sesame.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
