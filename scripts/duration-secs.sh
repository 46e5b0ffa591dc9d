#!/bin/bash
# duration-secs.sh DURATION: print DURATION in seconds.  DURATION is a
# whole number, optionally followed by s, m or h (90, 90s, 30m, 2h).
set -euo pipefail
d=${1:-}
if [[ $d =~ ^([0-9]+)([smh]?)$ ]]; then
	n=$((10#${BASH_REMATCH[1]}))
	case ${BASH_REMATCH[2]} in
	m) n=$((n * 60)) ;;
	h) n=$((n * 3600)) ;;
	esac
	if ((n < 30)); then
		echo "ERROR: DURATION=$d is shorter than 30s" >&2
		exit 1
	fi
	echo "$n"
else
	echo "ERROR: DURATION must look like 600, 600s, 30m or 2h (got '$d')" >&2
	exit 1
fi
