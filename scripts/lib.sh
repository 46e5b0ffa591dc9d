# Common helpers for the KSM harness scripts.  Source, don't execute.
# shellcheck shell=bash

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD=${BUILD:-$REPO/build}
TARBALL=${KSM_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
PRISTINE=$BUILD/src/pristine
OVERLAY=$BUILD/src/ksm
LOGS=$BUILD/logs
export CCACHE_DIR=${CCACHE_DIR:-/root/.cache/ccache}
# Hash paths below build/ relative to the object dir, so that checkouts in
# different places (CI's fresh clone, other work trees) share cache hits.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$BUILD}

mkdir -p "$BUILD" "$LOGS"

# die MESSAGE: one clear line on stderr, non-zero exit.
die() {
	echo "ERROR: $*" >&2
	exit 1
}

info() {
	echo "==> $*"
}

# is_ours VARIANT: true for our KSM variants, false for stock ones.
is_ours() {
	case $1 in
	ksm | ksm-debug | ksm-kcsan) return 0 ;;
	stock | stock-debug | stock-kcsan) return 1 ;;
	*) die "unknown variant '$1' (ksm, ksm-debug, ksm-kcsan, stock, stock-debug, stock-kcsan)" ;;
	esac
}

is_debug() {
	[[ $1 == *-debug ]]
}

# is_kcsan VARIANT: the data-race detector build (KCSAN excludes KASAN).
is_kcsan() {
	[[ $1 == *-kcsan ]]
}

# src_tree VARIANT: the kernel source tree the variant is built from.
src_tree() {
	if is_ours "$1"; then echo "$OVERLAY"; else echo "$PRISTINE"; fi
}

# kernel_version TREE: 6.12.N from the tree's top Makefile.
kernel_version() {
	awk -F' *= *' '
		$1 == "VERSION" { v = $2 }
		$1 == "PATCHLEVEL" { p = $2 }
		$1 == "SUBLEVEL" { s = $2 }
		$1 == "EXTRAVERSION" { e = $2 }
		/^NAME/ { exit }
		END { printf "%s.%s.%s%s\n", v, p, s, e }' "$1/Makefile"
}

# write_if_changed SRC DST: copy SRC to DST only when contents differ, so
# mtimes (and thus kbuild's incremental rebuilds) only move on real changes.
write_if_changed() {
	if ! cmp -s "$1" "$2"; then
		mkdir -p "$(dirname "$2")"
		rm -f "$2"
		cp "$1" "$2"
		return 0
	fi
	return 1
}

# hash_files FILE...: one sha256 over the names and contents of the files
# that exist (missing ones hash as "<absent>").
hash_files() {
	local f
	for f in "$@"; do
		echo "== $f"
		if [[ -e $f ]]; then cat "$f"; else echo "<absent>"; fi
	done | sha256sum | cut -d' ' -f1
}

# lock NAME [shared]: hold a lock on build/locks/NAME.lock until this
# script exits, so that concurrent harness runs in one build directory
# (several developers, a helper's "make check" next to "make demo") do not
# rebuild a tree under a running build or overwrite each other's logs.
# Waits, saying for whom, when another run holds it.
lock() {
	local name=$1 mode=-x fd f
	[[ ${2:-} == shared ]] && mode=-s
	mkdir -p "$BUILD/locks"
	f=$BUILD/locks/$name.lock
	exec {fd}>>"$f"
	if ! flock -n $mode "$fd"; then
		echo "==> waiting for lock '$name' (held by: $(tail -n1 "$f.owner" 2>/dev/null || echo unknown))"
		flock $mode "$fd"
	fi
	echo "pid $$ $(date +%T): $(basename "$0") ${ARGS_FOR_LOCK:-}" >>"$f.owner"
}

NPROC=$(nproc)
