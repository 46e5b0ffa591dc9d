#!/bin/sh
# ksm.harness=bench: the workloads of "make bench" (scripts/bench.sh), run
# the same way on our kernel and on stock 6.12.  Every workload resets KSM
# (run=2, 6.12 defaults) and then sets the same knobs on both kernels.
#
# Results go to the second serial port (/dev/ttyS1) as lines
#
#   BENCH <workload> <key> <value>
#   BENCHSAMPLE <workload> <t_ms> <pages_sharing> <saved> <ksmd_cpu_ms> <full_scans>
#   BENCH-DONE
#
# and, without the samples, to the console.  Parameters (kernel command
# line): ksm.bench_quick=1 (small sizes), ksm.bench_only=a,b (workloads),
# ksm.timeout=SECS (bound of every wait inside a workload).
B=/tools/ksm_bench
QUICK=${KSM_BENCH_QUICK:-0}
ONLY=${KSM_BENCH_ONLY:-}
T=${KSM_TIMEOUT:-900}
THP=/sys/kernel/mm/transparent_hugepage/enabled
# Same on both kernels: scan in large batches, never sleep between them.
SCAN="-s 4000 -S 0"

# mark; fd 3 is the results channel.  (KSM itself is reset by
# "ksm_bench reset", the same on both kernels.)
. "${0%/*}/lib.sh"

# Sizes (MiB per process).  Quick mode: a few minutes per kernel.
if [ "$QUICK" = 1 ]; then
	NODUPS_MIB=64 ALLDUPS_MIB=32 MIX_MIB=16 THP_MIB=16
	SCALE="16k:64 64k:256" THREADS_MIB=128
	KT_MIB=32 CO_MIB=64 CO_SECS=2
	MAPPERS_MIB=16 VMAS_PAGES=4000
else
	NODUPS_MIB=512 ALLDUPS_MIB=128 MIX_MIB=64 THP_MIB=64
	SCALE="16k:64 512k:2048" THREADS_MIB=512
	KT_MIB=256 CO_MIB=256 CO_SECS=5
	MAPPERS_MIB=128 VMAS_PAGES=20000
fi

selected() {
	[ -z "$ONLY" ] && return 0
	case ",$ONLY," in *",$1,"*) return 0 ;; esac
	return 1
}

# run LABEL WORKLOAD ARGS...: one ksm_bench run; results to ttyS1, the
# console gets them without the sample lines.
run() {
	label=$1
	wl=$2
	shift 2
	selected "${label%%_*}" || selected "$label" || return 0
	echo "bench: $label: ksm_bench $* $wl"
	start=$(date +%s)
	{ $B -t "$T" -l "$label" "$@" "$wl" 2>&1; echo "BENCH $label rc $?"; } |
		while IFS= read -r line; do
			echo "$line" >&3
			case $line in
			BENCHSAMPLE*) ;;
			*) echo "$line" ;;
			esac
		done
	mark "BENCH $label wall_s $(($(date +%s) - start))"
}

# CPU time of every ksmd thread so far, in clock ticks (utime + stime).
ksmd_ticks() {
	t=0
	for d in /proc/[0-9]*; do
		read -r c <"$d/comm" 2>/dev/null || continue
		case $c in ksmd | ksmd/*) ;; *) continue ;; esac
		set -- $(sed 's/^.*) //' "$d/stat" 2>/dev/null)
		[ $# -ge 13 ] && t=$((t + ${12} + ${13}))
	done
	echo $t
}

# TLB shootdown interrupts received so far, all CPUs together.
tlb_shootdowns() {
	awk '$1 == "TLB:" { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i }
	     END { print n + 0 }' /proc/interrupts
}

# ksm_tests LABEL ARGS...: upstream's ksm_tests, its "Average speed" (the
# last one: for -C the copy-on-write of merged pages) as mib_per_sec, and
# what ksmd cost meanwhile: its CPU (100 ticks a second) as ksmd_cpu_ms,
# the TLB shootdowns the guest's CPUs received as tlb_shootdowns.
ksm_tests() {
	label=$1
	shift
	selected ksm_tests || selected "$label" || return 0
	$B reset
	echo "bench: $label: ksm_tests $*"
	start=$(date +%s)
	t0=$(ksmd_ticks)
	s0=$(tlb_shootdowns)
	/tests/upstream/ksm_tests "$@" >/tmp/kt.out 2>&1
	rc=$?
	s1=$(tlb_shootdowns)
	t1=$(ksmd_ticks)
	sed 's/^/  /' /tmp/kt.out
	speed=$(sed -n 's/.*Average speed: *\([0-9.]*\) MiB\/s.*/\1/p' /tmp/kt.out | tail -n1)
	[ $rc = 0 ] && [ -n "$speed" ] && mark "BENCH $label mib_per_sec $speed"
	[ $rc = 0 ] && mark "BENCH $label ksmd_cpu_ms $(((t1 - t0) * 10))"
	[ $rc = 0 ] && mark "BENCH $label tlb_shootdowns $((s1 - s0))"
	mark "BENCH $label rc $rc"
	mark "BENCH $label wall_s $(($(date +%s) - start))"
}

mark "BENCH info kernel $(uname -r)"
mark "BENCH info quick $QUICK"
mark "BENCH info cpus $(grep -c ^processor /proc/cpuinfo)"
mark "BENCH info mem_mib $(($(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024))"
if [ ! -w /sys/kernel/mm/ksm/run ] || [ ! -x $B ]; then
	mark "BENCH-ERROR no KSM in this kernel or no $B"
	exit 1
fi
[ -r /proc/slabinfo ] && grep -i ksm /proc/slabinfo | sed 's/^/bench: slab: /'

[ -w $THP ] && echo madvise >$THP

run nodups nodups -p 1 -m $NODUPS_MIB -n 2 $SCAN
run alldups alldups -p 3 -m $ALLDUPS_MIB -v $SCAN
# What fresh frames cost: new KSM pages made in place, as stock does.
run alldups_inplace alldups -p 3 -m $ALLDUPS_MIB -k merge_fresh_frames=0 $SCAN
run mix mix -p 8 -m $MIX_MIB -v $SCAN
# Merge domains (ours; stock ignores the knob and merges globally): the
# same mix with a domain per cgroup (4 cgroups of 2 processes, as in 4
# containers) and per process. ours/stock is the share of savings kept.
run mix_cgroup mix -p 8 -m $MIX_MIB -g 4 -k merge_domain=cgroup $SCAN
run mix_process mix -p 8 -m $MIX_MIB -k merge_domain=process $SCAN
for s in $SCALE; do
	run "scale_${s%%:*}" nodups -p 1 -m "${s#*:}" -n 2 $SCAN
done

# Parallel scanning: only where the kernel has a ksmd thread count knob.
# Three full scans of 512 MiB: a second or more of scanning, so that the
# 50 ms sampling and thread start-up are lost in it.  Then the same 512 MiB
# as 4 processes of one repeated byte: time to converge (merging, not only
# scanning), with 1 and 2 threads.
knob=
for k in ksmd_threads scan_threads nr_scan_threads threads; do
	[ -w /sys/kernel/mm/ksm/$k ] && knob=$k && break
done
if selected threads; then
	if [ -n "$knob" ]; then
		# What two vCPUs reading memory at once get over one, here.
		run threads_ceiling parallel -m $THREADS_MIB
		run threads_1 nodups -p 1 -m $THREADS_MIB -n 3 -k "$knob=1" $SCAN
		run threads_2 nodups -p 1 -m $THREADS_MIB -n 3 -k "$knob=2" $SCAN
		run threads_alldups1 alldups -p 4 -m $((THREADS_MIB / 4)) -k "$knob=1" $SCAN
		run threads_alldups2 alldups -p 4 -m $((THREADS_MIB / 4)) -k "$knob=2" $SCAN
		run threads_pairs1 pairs -p 2 -m $((THREADS_MIB / 2)) -k "$knob=1" $SCAN
		run threads_pairs2 pairs -p 2 -m $((THREADS_MIB / 2)) -k "$knob=2" $SCAN
	else
		mark "BENCH threads_2 na no_thread_knob"
	fi
fi

ksm_tests ksm_tests_P -P -s $KT_MIB -p 4000 -l "$T"
ksm_tests ksm_tests_H -H -s $KT_MIB -p 4000 -l "$T"
ksm_tests ksm_tests_D -D -s $KT_MIB -p 4000 -l "$T"
ksm_tests ksm_tests_C -C -p 4000 -l "$T"

run corunner corunner -p 1 -m $CO_MIB -d $CO_SECS $SCAN

# Many mappers of one KSM page: 3 processes of one byte, max_page_sharing
# covering every page (so one KSM page), a batch of a whole full scan and
# no smart scan skipping, the same on both kernels.  256 pages per MiB.
MP=$((3 * MAPPERS_MIB * 256))
run mappers mappers -p 3 -m $MAPPERS_MIB -s $MP -S 0 \
	-k max_page_sharing=$MP -k smart_scan=0
# Many VMAs of one anon_vma (every other page read-only), merged into KSM
# pages of 256 mappers (the default): move_pages() of each KSM page to the
# other NUMA node and back walks, for every mapper, the anon_vma's VMAs.
run vmas vmas -N $VMAS_PAGES $SCAN

if [ -w $THP ]; then
	# the same workload with THP off, for the savings it should reach
	echo never >$THP
	run thp_off mix -p 4 -m $THP_MIB $SCAN
	echo always >$THP
	run thp mix -p 4 -m $THP_MIB -v $SCAN
	echo madvise >$THP
else
	mark "BENCH thp na no_thp"
fi

$B reset
mark "BENCH-DONE"
