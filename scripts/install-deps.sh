#!/bin/bash
# Install the host packages the KSM build/boot/test harness needs.
#
# Idempotent and quick: dpkg-query decides what is missing, apt-get only
# runs when something is.  Exits non-zero with one clear line on failure.
set -euo pipefail

PKGS=(
	linux-source-6.12	# kernel source tarball (/usr/src/linux-source-6.12.tar.xz)
	build-essential		# gcc, make, libc6-dev (static libc for the guest tests)
	gcc make
	ccache
	flex bison bc
	libelf-dev libssl-dev
	cpio kmod dwarves
	python3
	rsync xz-utils
	qemu-system-x86
	busybox-static
	libnuma-dev		# upstream ksm_tests links libnuma (statically)
	gnuplot-nox		# plots of make bench and make demo
	stress-ng		# make demo runs the host's, in the guest
	sparse
	python3-sphinx		# make htmldocs: Sphinx 5.3 (6.12's conf.py needs >= 2.4.4;
				# alabaster theme comes with it, no rtd theme needed)
)

TARBALL=/usr/src/linux-source-6.12.tar.xz

missing=()
for p in "${PKGS[@]}"; do
	[[ $p == \#* ]] && continue
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[[ $st == ii* ]] || missing+=("$p")
done

if ((${#missing[@]})); then
	echo "install-deps: installing: ${missing[*]}"
	if [[ $(id -u) -ne 0 ]]; then
		echo "install-deps: ERROR: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	log=$(mktemp /tmp/install-deps.XXXXXX.log)
	if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		echo "install-deps: ERROR: apt-get failed installing: ${missing[*]} (log: $log)" >&2
		exit 1
	fi
	rm -f "$log"
fi

if [[ ! -f $TARBALL ]]; then
	echo "install-deps: ERROR: $TARBALL missing after install (package linux-source-6.12)" >&2
	exit 1
fi
exit 0
