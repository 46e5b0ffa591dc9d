#!/bin/bash
# Does the series of "make patch" apply to Linux 6.12 and build (issue 8)?
#
#   1. scripts/make-patch.sh: write build/patch/ and checkpatch it;
#   2. extract Debian's linux-source-6.12 tarball afresh into
#      build/patch-test/src/ksm (not the cached pristine tree) and commit
#      it to a new git repository;
#   3. git am the patches one at a time and build the tree with our lean
#      configuration (scripts/build-kernel.sh ksm with KSM_SRC_TREE) after
#      each patch that changes anything kbuild reads, and after the last:
#      every step of the series must build, not just the end.  BISECT=0
#      builds the last step only;
#   4. boot the result under QEMU (mode "boot") and check that it runs our
#      KSM.
#
# Objects go to build/patch-test/obj/ksm.  CCACHE_BASEDIR is build/patch-test,
# so compiler command lines name sources as ../../src/ksm/..., exactly as
# "make kernel" does below build/, and what an earlier run (in any work
# tree) or a lean build of the overlay compiled comes out of ccache.  The
# tree is removed after a PASS
# (KEEP=1 keeps it) and kept after a FAIL.  The last line says PASS, or
# "ERROR: patch-test: FAIL ..." (non-zero exit).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BISECT=${BISECT:-1}
KEEP=${KEEP:-0}
T=$BUILD/patch-test
SRC=$T/src/ksm
ARGS_FOR_LOCK="make patch-test"
lock patch-test

start=$SECONDS
fail() {
	echo "patch-test: tree and logs kept in ${T#"$REPO"/}"
	die "patch-test: FAIL after $((SECONDS - start))s: $*"
}

# 1. The series, checked.
"$REPO/scripts/make-patch.sh" || fail "make patch failed"
mapfile -t PATCHES < <(find "$BUILD/patch" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort)
N=${#PATCHES[@]}
((N > 0)) || fail "no patches in build/patch"

# 2. A fresh tree in a fresh repository.
[[ -f $TARBALL ]] || die "kernel tarball $TARBALL missing (run scripts/install-deps.sh; package linux-source-6.12)"
rm -rf "$T"
mkdir -p "$T/src" "$T/logs"
t0=$SECONDS
tar -C "$T/src" -xf "$TARBALL" || fail "cannot extract $TARBALL"
top=$(find "$T/src" -mindepth 1 -maxdepth 1 -type d)
[[ -f $top/Makefile ]] || fail "unexpected tarball layout in $TARBALL"
mv "$top" "$SRC"
VERSION=$(kernel_version "$SRC")
info "patch-test: extracted $(basename "$TARBALL") ($VERSION) in $((SECONDS - t0))s"

t0=$SECONDS
G=(git -C "$SRC" -c user.name="KSM patch-test" -c user.email=patch-test@localhost
	-c core.looseCompression=1 -c gc.auto=0 -c commit.gpgsign=false -c core.hooksPath=/dev/null)
"${G[@]}" init -q -b linux-6.12 || fail "git init"
# -f: the Debian tarball's .gitignore ignores everything at the top level.
"${G[@]}" add -A -f || fail "git add"
"${G[@]}" commit -q -m "Linux $VERSION (Debian linux-source-6.12)" || fail "git commit"
info "patch-test: committed the tree to a new git repository in $((SECONDS - t0))s"

# kbuild never reads these, so a patch that touches nothing else cannot
# change whether the kernel builds.
kbuild_blind() {
	case $1 in
	Documentation/* | tools/testing/* | tools/mm/* | MAINTAINERS) return 0 ;;
	*) return 1 ;;
	esac
}

ccache_counts() {
	ccache --print-stats 2>/dev/null | awk -F'\t' '
		$1 ~ /^(direct|preprocessed)_cache_hit$/ { h += $2 }
		$1 == "cache_miss" { m += $2 }
		END { print h + 0, m + 0 }'
}
read -r hits0 misses0 < <(ccache_counts)

# 3. git am, one patch at a time, and build.
builds=0 k=0
for p in "${PATCHES[@]}"; do
	k=$((k + 1))
	name=$(basename "$p")
	tag=$(printf '[%02d/%02d]' "$k" "$N")
	if ! "${G[@]}" am -q --whitespace=error "$p" >"$T/logs/am-$k.log" 2>&1; then
		cat "$T/logs/am-$k.log"
		fail "git am $name"
	fi
	build=0
	if ((k == N)); then
		build=1
	elif ((BISECT)); then
		while IFS= read -r f; do
			kbuild_blind "$f" || build=1
		done < <("${G[@]}" show --name-only --format= HEAD)
	fi
	if ((!build)); then
		echo "$tag applied $name (not built: $( ((BISECT)) && echo "nothing kbuild reads" || echo "BISECT=0"))"
		continue
	fi
	t0=$SECONDS
	if ! env BUILD="$T" KSM_SRC_TREE="$SRC" CCACHE_BASEDIR="$T" \
		"$REPO/scripts/build-kernel.sh" ksm >"$T/logs/build-$k.out" 2>&1; then
		cat "$T/logs/build-$k.out"
		fail "the tree does not build after $name (log: ${T#"$REPO"/}/logs/ksm-build.log)"
	fi
	builds=$((builds + 1))
	echo "$tag applied $name, built in $((SECONDS - t0))s"
done

# 4. The patched kernel boots (harness mode "boot") and runs our KSM.
"$REPO/scripts/build-initramfs.sh" ksm >"$T/logs/initramfs.out" 2>&1 ||
	fail "cannot build the initramfs (log: ${T#"$REPO"/}/logs/initramfs.out)"
if ! KERNEL=$T/ksm/bzImage "$REPO/scripts/run-qemu.sh" ksm boot >"$T/logs/boot.out" 2>&1 ||
	! grep -q KSMBOOT-OK "$T/logs/boot.out" ||
	! grep -q merge_domain "$T/logs/boot.out"; then
	tail -n 20 "$T/logs/boot.out"
	fail "the patched kernel did not boot with our KSM (log: ${T#"$REPO"/}/logs/boot.out)"
fi
echo "patch-test: the patched kernel boots, /sys/kernel/mm/ksm has merge_domain"

read -r hits1 misses1 < <(ccache_counts)
info "patch-test: ccache during the builds: $((hits1 - hits0)) hits, $((misses1 - misses0)) misses (shared cache: concurrent builds count too)"
cp "$T/ksm/kernel.config" "$LOGS/patch-test-kernel.config" 2>/dev/null || true
if ((KEEP)); then
	info "patch-test: tree kept in ${T#"$REPO"/} (KEEP=1)"
else
	rm -rf "$T"
fi
echo "patch-test: PASS: $N patches applied with git am to a fresh $VERSION, $builds builds, booted, in $((SECONDS - start))s"
