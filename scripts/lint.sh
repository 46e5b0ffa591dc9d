#!/bin/bash
# Our kernel code by kernel standards (issue 8):
#
#   1. scripts/checkpatch.pl --strict on each of our C files and headers:
#      no ERROR, no WARNING (CHECKs are printed, not fatal);
#   2. scripts/kernel-doc -none -Wall on them: no output at all;
#   3. mm/ksm/ compiled with W=1 and sparse (C=2) with the configuration
#      of VARIANT (default ksm-debug, which "make check" builds anyway), in
#      an object dir of its own: no warning or error in our files.
#
#   lint.sh [VARIANT]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VARIANT=${1:-ksm-debug}
is_ours "$VARIANT" || die "lint needs one of our variants (ksm, ksm-debug)"
command -v sparse >/dev/null || die "sparse is not installed (make deps)"

mapfile -t FILES < <(cd "$REPO" && ls mm/ksm/*.c mm/ksm/*.h mm/ksm/tests/*.h include/linux/ksm.h)
LOG=$LOGS/lint.log
: >"$LOG"
bad=0

info "lint: checkpatch --strict on ${#FILES[@]} files"
for f in "${FILES[@]}"; do
	(cd "$REPO" && perl "$PRISTINE/scripts/checkpatch.pl" --strict --no-tree \
		--quiet --terse -f "$f") >>"$LOG" 2>&1 || true
done
grep -E ': (ERROR|WARNING|CHECK):' "$LOG" || true
grep -qE ': (ERROR|WARNING):' "$LOG" && { echo "lint: checkpatch errors or warnings"; bad=1; }

info "lint: kernel-doc -none -Wall"
if ! (cd "$REPO" && perl "$PRISTINE/scripts/kernel-doc" -none -Wall "${FILES[@]}") \
	>"$LOGS/lint-kdoc.log" 2>&1 || [[ -s $LOGS/lint-kdoc.log ]]; then
	cat "$LOGS/lint-kdoc.log"
	echo "lint: kernel-doc complaints"
	bad=1
fi

info "lint: mm/ksm/ with W=1 and sparse ($VARIANT configuration)"
# A separate object dir with VARIANT's .config, so that the W=1/sparse
# flags never make the real build recompile and relink.
"$REPO/scripts/build-kernel.sh" "$VARIANT" >/dev/null
ARGS_FOR_LOCK=lint
lock "obj-lint"
lock src shared
TREE=$(src_tree "$VARIANT")
OBJ=$BUILD/obj/lint-$VARIANT
mkdir -p "$OBJ"
KMAKE=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u V
	nice make -C "$TREE" O="$OBJ" CC="ccache gcc" HOSTCC=gcc -j"$(nproc)")
if ! cmp -s "$BUILD/obj/$VARIANT/.config" "$OBJ/.config"; then
	cp "$BUILD/obj/$VARIANT/.config" "$OBJ/.config"
	"${KMAKE[@]}" olddefconfig >"$LOGS/lint-build.log" 2>&1 ||
		die "lint: configuring $OBJ failed (log: build/logs/lint-build.log)"
fi
if ! "${KMAKE[@]}" W=1 C=2 mm/ksm/ >"$LOGS/lint-build.log" 2>&1; then
	tail -n 30 "$LOGS/lint-build.log"
	die "lint: W=1/sparse build of mm/ksm failed (log: build/logs/lint-build.log)"
fi
checked=$(grep -cE '^ *CHECK +.*mm/ksm/' "$LOGS/lint-build.log" || true)
[[ $checked -gt 0 ]] || die "lint: sparse checked none of our files (log: build/logs/lint-build.log)"

# sparse cannot follow folio_walk_start()'s conditional page table lock:
# every caller that ends with folio_walk_end() gets "context imbalance ...
# unexpected unlock" (upstream's mm/ksm.c has five, mm/migrate.c three).
# With the lean configuration (no split page table locks),
# pte_offset_map_lock()'s conditional lock does the same to its callers.
# These are ours; any other warning fails.
ALLOWED="context imbalance in '(ksm_item_page|ksm_addr_is_merged|ksm_batch_pmd_entry|ksm_replace_pte|ksm_find_merged_pmd)' - (unexpected unlock|different lock contexts for basic block)"
if grep -E '(mm/ksm/|include/linux/ksm\.h).*(warning|error):' "$LOGS/lint-build.log" |
	grep -vE "$ALLOWED"; then
	echo "lint: W=1 or sparse warnings in our files"
	bad=1
fi

if [[ $bad != 0 ]]; then
	die "lint failed (logs: build/logs/lint*.log)"
fi
info "lint: clean (checkpatch, kernel-doc, W=1, sparse on $checked files)"
