#!/bin/sh
# Prints a package version from git: 1.2.3 on tag v1.2.3, 1.2.3+git5.abc1234
# (5 commits after it), or 0.0.0~git20260101.abc1234 with no tag. "~" sorts
# before anything, so a later real release always upgrades it (dpkg and rpm).
set -e
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	d=${d#v}
	case "$d" in
	*-*-g*) n=${d%-g*}; echo "${n%-*}+git${n##*-}.${d##*-g}" ;;
	*) echo "$d" ;;
	esac
	exit 0
fi
date=$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date -u +%Y%m%d)
sha=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
echo "0.0.0~git${date}.${sha}"
