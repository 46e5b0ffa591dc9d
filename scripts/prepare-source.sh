#!/bin/bash
# Prepare kernel source trees.
#
#   prepare-source.sh pristine   extract the Debian tarball once into
#                                build/src/pristine (never edited afterwards)
#   prepare-source.sh overlay    build/src/ksm = pristine + our repo files
#
# The overlay is incremental: a file is only (re)written when its content
# changes, so editing one of our .c files rebuilds only that object.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

STAMP=$BUILD/src/pristine.stamp

tarball_id() {
	stat -c '%n %s %Y' "$TARBALL"
}

prepare_pristine() {
	[[ -f $TARBALL ]] || die "kernel tarball $TARBALL missing (run scripts/install-deps.sh; package linux-source-6.12)"
	local want
	want=$(tarball_id)
	if [[ -d $PRISTINE && -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
		return 0
	fi
	info "extracting $TARBALL into build/src/pristine"
	# A new tarball invalidates everything derived from the old tree:
	# tar keeps the archive's mtimes, which could be older than our objects.
	rm -rf "$PRISTINE" "$PRISTINE.tmp" "$OVERLAY" "$BUILD/src/ksm.manifest"* \
		"$BUILD/obj" "$BUILD/uapi" "$BUILD/uapi-ksm" "$BUILD/tests" "$STAMP"
	mkdir -p "$PRISTINE.tmp"
	tar -C "$PRISTINE.tmp" -xf "$TARBALL" ||
		die "failed to extract $TARBALL"
	local top
	top=$(find "$PRISTINE.tmp" -mindepth 1 -maxdepth 1 -type d)
	[[ -f $top/Makefile ]] || die "unexpected tarball layout in $TARBALL"
	mv "$top" "$PRISTINE"
	rmdir "$PRISTINE.tmp"
	echo "$want" >"$STAMP"
}

# Files of ours that are laid over the tree, one "relative/path" per line.
our_files() {
	local paths=()
	local p
	for p in mm include Documentation tools Kconfig.ksm; do
		[[ -e $REPO/$p ]] && paths+=("$p")
	done
	((${#paths[@]})) || return 0
	if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
		# Tracked and untracked-but-not-ignored files from the work tree.
		git -C "$REPO" ls-files --cached --others --exclude-standard -- "${paths[@]}" |
			while IFS= read -r f; do [[ -f $REPO/$f ]] && echo "$f"; done | sort -u
	else
		(cd "$REPO" && find "${paths[@]}" -type f | sort)
	fi
}

gen_mm_makefile() {
	local src=$PRISTINE/mm/Makefile
	grep -q '^obj-$(CONFIG_KSM) += ksm\.o$' "$src" ||
		die "pristine mm/Makefile has no 'obj-\$(CONFIG_KSM) += ksm.o' line"
	sed 's|^obj-$(CONFIG_KSM) += ksm\.o$|obj-$(CONFIG_KSM) += ksm/|' "$src"
}

gen_mm_kconfig() {
	local src=$PRISTINE/mm/Kconfig
	[[ $(grep -c '^config KSM$' "$src") == 1 ]] ||
		die "pristine mm/Kconfig has no single 'config KSM' entry"
	# Replace upstream's entry (from 'config KSM' up to, not including,
	# the next 'config' line) with a reference to ours.
	awk '
		skip && /^(menu)?config / { skip = 0 }
		/^config KSM$/ { print "source \"Kconfig.ksm\""; print ""; skip = 1; next }
		!skip { print }' "$src"
}

# khugepaged must not collapse a range back over pages KSM merged (issue
# 9): one check at the top of hpage_collapse_scan_pmd()'s PTE loop, asking
# include/linux/ksm.h. MADV_COLLAPSE (not khugepaged) still collapses.
gen_mm_khugepaged() {
	local src=$PRISTINE/mm/khugepaged.c
	[[ $(grep -c '^static int hpage_collapse_scan_pmd(' "$src") == 1 ]] ||
		die "pristine mm/khugepaged.c has no single hpage_collapse_scan_pmd()"
	awk '
		/^static int hpage_collapse_scan_pmd\(/ { infn = 1 }
		{ print }
		infn && /^\t\tpte_t pteval = ptep_get\(_pte\);$/ {
			print ""
			print "\t\tif (cc->is_khugepaged &&"
			print "\t\t    ksm_pte_blocks_collapse(vma, _address, pteval)) {"
			print "\t\t\tresult = SCAN_PAGE_ANON;"
			print "\t\t\tgoto out_unmap;"
			print "\t\t}"
			infn = 0; done = 1
		}
		END { if (!done) exit 1 }' "$src" ||
		die "pristine mm/khugepaged.c: PTE loop of hpage_collapse_scan_pmd() not found"
}

# Merge domains (issue 7): an exec that gains privilege leaves the merge
# domain its caller chose. One call once the new credentials are committed
# in begin_new_exec().
gen_fs_exec() {
	local src=$PRISTINE/fs/exec.c
	awk '
		/^int begin_new_exec\(/ { infn = 1 }
		{ print }
		infn && /^\tcommit_creds\(bprm->cred\);$/ { commit = 1; next }
		commit && /^\tbprm->cred = NULL;$/ {
			print ""
			print "\t/* A privileged program leaves its caller\x27s merge domain. */"
			print "\tif (bprm->secureexec)"
			print "\t\tksm_execve_secure(me->mm);"
			commit = 0; infn = 0; done = 1
		}
		END { if (!done) exit 1 }' "$src" ||
		die "pristine fs/exec.c: commit_creds() in begin_new_exec() not found"
}

# prctl(PR_KSM_DOMAIN, ...) next to PR_SET_MEMORY_MERGE, in the CONFIG_KSM
# part of prctl()'s switch.
gen_kernel_sys() {
	local src=$PRISTINE/kernel/sys.c
	awk '
		{ print }
		/^\tcase PR_GET_MEMORY_MERGE:$/ { get = 1 }
		get && /^\t\tbreak;$/ {
			print "\tcase PR_KSM_DOMAIN:"
			print "\t\terror = ksm_prctl_domain(arg2, arg3, arg4, arg5);"
			print "\t\tbreak;"
			get = 0; done = 1
		}
		END { if (!done) exit 1 }' "$src" ||
		die "pristine kernel/sys.c: case PR_GET_MEMORY_MERGE not found"
}

gen_uapi_prctl() {
	local src=$PRISTINE/include/uapi/linux/prctl.h
	awk '
		/^#endif \/\* _LINUX_PRCTL_H \*\/$/ {
			print "/* KSM merge domains: PR_KSM_DOMAIN, op, arg (see Documentation/admin-guide/mm/ksm.rst) */"
			print "#define PR_KSM_DOMAIN\t\t\t0x4b534d44\t/* \"KSMD\" */"
			print "# define PR_KSM_DOMAIN_GET\t\t0\t/* arg: __u64 * for the domain key */"
			print "# define PR_KSM_DOMAIN_PRIVATE\t\t1\t/* a new domain of our own */"
			print "# define PR_KSM_DOMAIN_JOIN\t\t2\t/* arg: tag; CAP_SYS_ADMIN */"
			print ""
			done = 1
		}
		{ print }
		END { if (!done) exit 1 }' "$src" ||
		die "pristine include/uapi/linux/prctl.h: closing #endif not found"
}

# /proc/PID/ksm_stat gains the two yes/no lines of later kernels (issue
# 17), after the four of 6.12.
gen_fs_proc_base() {
	local src=$PRISTINE/fs/proc/base.c
	awk '
		{ print }
		/^\t\tseq_printf\(m, "ksm_process_profit %ld\\n", ksm_process_profit\(mm\)\);$/ {
			print "\t\tksm_proc_show_flags(m, mm);"
			done = 1
		}
		END { if (!done) exit 1 }' "$src" ||
		die "pristine fs/proc/base.c: ksm_process_profit line of proc_pid_ksm_stat() not found"
}

# Under PR_SET_MEMORY_MERGE a new anonymous VMA is VM_MERGEABLE before
# mmap() or brk() tries to merge it with its neighbours (issue 17): one
# line in __mmap_region() and one in do_brk_flags().
gen_mm_mmap() {
	local src=$PRISTINE/mm/mmap.c
	awk '
		/^static unsigned long __mmap_region\(/ { region = 1 }
		/^static int do_brk_flags\(/ { brk = 1 }
		{ print }
		region && /^\tvmg\.file = file;$/ {
			print "\tvm_flags = ksm_vma_flags(mm, file, vm_flags);"
			print "\tvmg.flags = vm_flags;"
			region = 0; done++
		}
		brk && /^\tflags \|= VM_DATA_DEFAULT_FLAGS \| VM_ACCOUNT \| mm->def_flags;$/ {
			print "\tflags = ksm_vma_flags(mm, NULL, flags);"
			brk = 0; done++
		}
		END { if (done != 2) exit 1 }' "$src" ||
		die "pristine mm/mmap.c: __mmap_region() or do_brk_flags() not as expected"
}

# memory.stat of cgroup v2 ends with the cgroup's KSM figures (issue 17).
gen_mm_memcontrol() {
	local src=$PRISTINE/mm/memcontrol.c
	awk '
		/^#include <linux\/vmpressure\.h>$/ { print "#include <linux/ksm.h>" }
		{ print }
		/^int memory_stat_show\(/ { show = 1 }
		show && /^\tmemory_stat_format\(memcg, &s\);$/ {
			print "\tksm_memcg_stat_show(memcg, &s);"
			show = 0; done = 1
		}
		END { if (!done) exit 1 }' "$src" ||
		die "pristine mm/memcontrol.c: memory_stat_show() not as expected"
}

gen_maintainers() {
	cat "$PRISTINE/MAINTAINERS"
	if [[ -f $REPO/MAINTAINERS ]]; then
		echo
		cat "$REPO/MAINTAINERS"
	fi
}

prepare_overlay() {
	prepare_pristine
	[[ -d $REPO/mm/ksm ]] ||
		die "our KSM engine is missing: $REPO/mm/ksm/ does not exist (needed for the 'ksm' variants; use STOCK=1 for upstream KSM)"
	[[ -f $REPO/Kconfig.ksm ]] ||
		die "our KSM Kconfig is missing: $REPO/Kconfig.ksm does not exist"

	local manifest=$BUILD/src/ksm.manifest
	tmp=$(mktemp -d "$BUILD/src/.overlay.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT

	our_files >"$tmp/ours"
	local generated=(mm/Makefile mm/Kconfig mm/khugepaged.c fs/exec.c
		kernel/sys.c include/uapi/linux/prctl.h MAINTAINERS
		fs/proc/base.c mm/mmap.c mm/memcontrol.c)
	local removed=(mm/ksm.c)

	# rsync filter: protect our files, generated files, and directories
	# that only exist because of our files.
	{
		sed 's|^|/|' "$tmp/ours"
		printf '/%s\n' "${generated[@]}" "${removed[@]}"
		while IFS= read -r f; do
			d=$(dirname "$f")
			while [[ $d != . && ! -d $PRISTINE/$d ]]; do
				echo "/$d/"
				d=$(dirname "$d")
			done
		done <"$tmp/ours"
	} | sort -u >"$tmp/exclude"

	local fresh=0
	[[ -d $OVERLAY ]] || fresh=1
	mkdir -p "$OVERLAY"
	# 1) Anything that is not ours mirrors pristine (size+mtime quick check).
	rsync -a --delete --exclude-from="$tmp/exclude" "$PRISTINE/" "$OVERLAY/" ||
		die "rsync of pristine tree into overlay failed"

	# 2) Files that were ours last time but no longer are get their pristine
	#    version back with a fresh mtime (so kbuild rebuilds what depended
	#    on them), or are removed if upstream has no such file.
	if [[ -f $manifest && $fresh == 0 ]]; then
		comm -23 <(sort -u "$manifest") <(sort -u "$tmp/ours") | while IFS= read -r f; do
			if [[ -f $PRISTINE/$f ]]; then
				rm -f "$OVERLAY/$f"
				cp "$PRISTINE/$f" "$OVERLAY/$f"
				echo "overlay: restored pristine $f"
			else
				rm -f "$OVERLAY/$f"
				echo "overlay: removed $f"
				d=$(dirname "$f")
				while [[ $d != . && ! -d $PRISTINE/$d ]]; do
					rmdir "$OVERLAY/$d" 2>/dev/null || break
					d=$(dirname "$d")
				done
			fi
		done
	fi

	# 3) Our files, written only when their content differs.
	local n=0 changed=0
	while IFS= read -r f; do
		n=$((n + 1))
		if write_if_changed "$REPO/$f" "$OVERLAY/$f"; then
			changed=$((changed + 1))
			[[ $fresh == 1 ]] || echo "overlay: updated $f"
		fi
	done <"$tmp/ours"

	# 4) Minimal edits to upstream files, regenerated from pristine.
	gen_mm_makefile >"$tmp/mm-Makefile"
	gen_mm_kconfig >"$tmp/mm-Kconfig"
	gen_maintainers >"$tmp/MAINTAINERS"
	gen_mm_khugepaged >"$tmp/mm-khugepaged.c"
	gen_fs_exec >"$tmp/fs-exec.c"
	gen_kernel_sys >"$tmp/kernel-sys.c"
	gen_uapi_prctl >"$tmp/uapi-prctl.h"
	gen_fs_proc_base >"$tmp/fs-proc-base.c"
	gen_mm_mmap >"$tmp/mm-mmap.c"
	gen_mm_memcontrol >"$tmp/mm-memcontrol.c"
	write_if_changed "$tmp/fs-exec.c" "$OVERLAY/fs/exec.c" || true
	write_if_changed "$tmp/kernel-sys.c" "$OVERLAY/kernel/sys.c" || true
	write_if_changed "$tmp/uapi-prctl.h" "$OVERLAY/include/uapi/linux/prctl.h" || true
	write_if_changed "$tmp/mm-Makefile" "$OVERLAY/mm/Makefile" || true
	write_if_changed "$tmp/mm-khugepaged.c" "$OVERLAY/mm/khugepaged.c" || true
	write_if_changed "$tmp/mm-Kconfig" "$OVERLAY/mm/Kconfig" || true
	write_if_changed "$tmp/MAINTAINERS" "$OVERLAY/MAINTAINERS" || true
	write_if_changed "$tmp/fs-proc-base.c" "$OVERLAY/fs/proc/base.c" || true
	write_if_changed "$tmp/mm-mmap.c" "$OVERLAY/mm/mmap.c" || true
	write_if_changed "$tmp/mm-memcontrol.c" "$OVERLAY/mm/memcontrol.c" || true

	# 5) Upstream KSM is replaced by ours.
	local f
	for f in "${removed[@]}"; do
		rm -f "$OVERLAY/$f"
	done

	cp "$tmp/ours" "$manifest"
	# What else differs from pristine, for scripts/make-patch.sh.
	printf '%s\n' "${generated[@]}" >"$manifest.generated"
	printf '%s\n' "${removed[@]}" >"$manifest.removed"
	info "overlay build/src/ksm: $n files of ours ($changed written), $(kernel_version "$OVERLAY")"
}

lock src
case ${1:-} in
pristine) prepare_pristine ;;
overlay) prepare_overlay ;;
*) die "usage: $0 pristine|overlay" ;;
esac
