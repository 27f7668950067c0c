#!/bin/sh
# Tell systemd about the unit. Never enable or start it here: the admin
# adds a door first (see /etc/sesame/sesame.hcl). On upgrade, restart it if
# it runs.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	case "$1" in
	configure) [ -z "$2" ] || systemctl try-restart sesame.service >/dev/null 2>&1 || true ;; # deb upgrade
	2) systemctl try-restart sesame.service >/dev/null 2>&1 || true ;;                      # rpm upgrade
	esac
fi
exit 0
