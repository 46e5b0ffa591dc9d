#!/bin/bash
# Build build/initramfs-<variant>.cpio.gz: busybox-static, /init from
# scripts/guest-init.sh, the mode scripts from scripts/guest/ (as
# /harness/*.sh, with lib.sh, the helpers they source) and the static
# test binaries under /tests.
#
#   build-initramfs.sh VARIANT
#
# With PERF=1 it also holds the host's perf and the libraries it links,
# for scripts/guest/profile.sh ("make profile").
#
# Our selftests are included for our variants; for stock ones only with
# OURTESTS=1.  Our tools (tools/mm/ksm_*.c) go to /tools.  The archive is
# only rewritten when its content changes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VARIANT=${1:?usage: $0 VARIANT}
is_ours "$VARIANT" || true
ARGS_FOR_LOCK=$VARIANT
lock "initramfs-$VARIANT"

WITH_OURS=0
if is_ours "$VARIANT" || [[ ${OURTESTS:-0} == 1 ]]; then
	WITH_OURS=1
fi
if [[ $WITH_OURS == 1 ]]; then
	"$REPO/scripts/build-tests.sh" --ours
else
	"$REPO/scripts/build-tests.sh"
fi

BUSYBOX=$(command -v busybox || true)
[[ -n $BUSYBOX ]] || die "busybox not found (package busybox-static)"
readelf -l "$(readlink -f "$BUSYBOX")" 2>/dev/null | grep -q 'INTERP' &&
	die "$BUSYBOX is dynamically linked; install busybox-static"

OUTFILE=$BUILD/initramfs-$VARIANT.cpio.gz
STAGE=$BUILD/initramfs/$VARIANT
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,harness,tests/upstream,tests/ours,tools}

cp "$BUSYBOX" "$STAGE/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
	[[ -e $STAGE/$applet ]] || ln -s /bin/busybox "$STAGE/$applet"
done
install -m 0755 "$REPO/scripts/guest-init.sh" "$STAGE/init"
# lib.sh is sourced by the others, not a mode: not executable, so /init
# does not run it as ksm.harness=lib.
for s in "$REPO"/scripts/guest/*.sh; do
	mode=0755
	[[ $(basename "$s") == lib.sh ]] && mode=0644
	install -m "$mode" "$s" "$STAGE/harness/$(basename "$s")"
done
install -m 0755 "$BUILD/tests/upstream/ksm_tests" "$BUILD/tests/upstream/ksm_functional_tests" \
	"$STAGE/tests/upstream/"
nours=0
if [[ $WITH_OURS == 1 ]]; then
	for t in "$BUILD"/tests/ours/ksm_*_test; do
		[[ -x $t ]] || continue
		install -m 0755 "$t" "$STAGE/tests/ours/"
		nours=$((nours + 1))
	done
fi
# The kernel opens /dev/console for /init before anything is mounted.
mknod -m 600 "$STAGE/dev/console" c 5 1 || die "mknod /dev/console failed (need root)"
mknod -m 666 "$STAGE/dev/null" c 1 3 || die "mknod /dev/null failed (need root)"
# Our userspace tools (tools/mm/ksm_*.c), e.g. for the demo.
for t in "$BUILD"/tests/tools/*; do
	if [[ -x $t ]]; then install -m 0755 "$t" "$STAGE/tools/"; fi
done
if [[ ${PERF:-0} == 1 ]]; then
	PERFBIN=$(command -v perf || true)
	[[ -n $PERFBIN ]] || die "PERF=1: perf not found (package linux-perf)"
	install -m 0755 "$PERFBIN" "$STAGE/usr/bin/perf"
	# The dynamic loader and every library perf links, at their paths.
	for lib in $(ldd "$PERFBIN" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }
					  $1 ~ /^\// { print $1 }'); do
		mkdir -p "$STAGE$(dirname "$lib")"
		cp -L "$lib" "$STAGE$lib"
	done
fi
echo "root:x:0:0:root:/root:/bin/sh" >"$STAGE/etc/passwd"
echo "root:x:0:" >"$STAGE/etc/group"

# Content hash of the staged tree decides whether the archive is rewritten.
HASH=$(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
	xargs -0 stat -c '%n %a %F %N' | sha256sum | cut -d' ' -f1)
HASH=$(
	{
		echo "$HASH"
		cd "$STAGE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	} | sha256sum | cut -d' ' -f1
)
if [[ -f $OUTFILE && -f $OUTFILE.hash && $(cat "$OUTFILE.hash") == "$HASH" ]]; then
	info "initramfs build/$(basename "$OUTFILE") up to date ($nours selftest(s) of ours)"
	exit 0
fi
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner=0:0 --reproducible 2>/dev/null) | gzip -9n >"$OUTFILE.tmp" ||
	die "creating the initramfs failed"
mv "$OUTFILE.tmp" "$OUTFILE"
echo "$HASH" >"$OUTFILE.hash"
info "initramfs build/$(basename "$OUTFILE") written ($(du -k "$OUTFILE" | cut -f1) KiB, $nours selftest(s) of ours)"
