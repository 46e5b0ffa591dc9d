#!/bin/bash
# Build the static guest test binaries into build/tests/:
#   build/tests/upstream/{ksm_tests,ksm_functional_tests}  (pristine 6.12 sources)
#   build/tests/ours/ksm_*_test                            (repo selftests)
#   build/tests/tools/ksm_*                                (repo tools/mm/ksm_*.c)
#
#   build-tests.sh [--ours]   --ours also builds our selftests
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WITH_OURS=0
[[ ${1:-} == --ours ]] && WITH_OURS=1

lock tests
"$REPO/scripts/prepare-source.sh" pristine

# install_headers TREE NAME: make headers_install into build/NAME; touch
# build/NAME/include/.stamp only when the installed headers changed.
install_headers() {
	local tree=$1 name=$2 dest=$BUILD/$2 log=$LOGS/headers-$2.log
	if ! make -C "$tree" O="$BUILD/obj/hdr-$name" INSTALL_HDR_PATH="$dest" \
		headers_install >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "headers_install failed for $name (log: build/logs/headers-$name.log)"
	fi
	local h
	h=$(cd "$dest/include" && find . -name '*.h' -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)
	if [[ ! -f $dest/include/.stamp || $(cat "$dest/include/.stamp") != "$h" ]]; then
		echo "$h" >"$dest/include/.stamp"
	fi
}

install_headers "$PRISTINE" uapi
OURS_UAPI=$BUILD/uapi/include
OURS_SRC=()
if [[ $WITH_OURS == 1 ]]; then
	# Prefer the overlay's headers so our tests see our uapi additions.
	if [[ -d $REPO/mm/ksm && -f $REPO/Kconfig.ksm ]]; then
		"$REPO/scripts/prepare-source.sh" overlay >/dev/null
		lock src shared
		install_headers "$OVERLAY" uapi-ksm
		OURS_UAPI=$BUILD/uapi-ksm/include
	fi
	shopt -s nullglob
	OURS_SRC=("$REPO"/tools/testing/selftests/mm/ksm_*_test.c)
	shopt -u nullglob
fi

shopt -s nullglob
TOOLS_SRC=("$REPO"/tools/mm/ksm_*.c)
shopt -u nullglob

# Forget binaries of selftests and tools that were removed from the repo.
if [[ -d $BUILD/tests/ours ]]; then
	for b in "$BUILD"/tests/ours/ksm_*_test; do
		[[ -e $b ]] || continue
		n=$(basename "$b")
		keep=0
		for s in "${OURS_SRC[@]}"; do [[ $(basename "$s" .c) == "$n" ]] && keep=1; done
		[[ $keep == 1 ]] || rm -f "$b"
	done
fi
if [[ -d $BUILD/tests/tools ]]; then
	for b in "$BUILD"/tests/tools/*; do
		[[ -f $REPO/tools/mm/$(basename "$b").c ]] || rm -f "$b"
	done
fi

LOG=$LOGS/tests-build.log
if ! make -f "$REPO/scripts/tests.mk" -j"$NPROC" \
	PRISTINE="$PRISTINE" UAPI="$BUILD/uapi/include" OURS_UAPI="$OURS_UAPI" \
	OUT="$BUILD/tests" OURS_SRC="${OURS_SRC[*]}" TOOLS_SRC="${TOOLS_SRC[*]}" >"$LOG" 2>&1; then
	echo "----- last 30 lines of build/logs/tests-build.log -----" >&2
	tail -n 30 "$LOG" >&2
	echo "-----" >&2
	die "building the guest test binaries failed (log: build/logs/tests-build.log)"
fi
info "test binaries: upstream ksm_tests ksm_functional_tests; ours: ${#OURS_SRC[@]} selftest(s), ${#TOOLS_SRC[@]} tool(s)"
