#!/bin/sh
# Guest side of "make demo": several processes hold the same data, some
# opted in with madvise(MADV_MERGEABLE), some with prctl(PR_SET_MEMORY_MERGE);
# ksmd merges them while a live table shows the savings.
K=/sys/kernel/mm/ksm
PROCS=${KSM_DEMO_PROCS:-4}
MIB=${KSM_DEMO_MIB:-32}
SECS=${KSM_DEMO_SECS:-20}
OUT=/tmp/workload.out

echo "demo: kernel $(uname -r)"
[ -d $K ] || { echo "demo: ERROR: no $K in this kernel"; echo "KSMDEMO-FAIL"; exit 1; }

echo 2 > $K/run
echo 0 > $K/run
echo 1000 > $K/pages_to_scan
echo 20 > $K/sleep_millisecs

# The workload fills its memory, then keeps it for SECS + 10 seconds and
# verifies every byte before exiting.
/tools/ksm_workload -p "$PROCS" -m "$MIB" -s $((SECS + 10)) >$OUT 2>&1 &
WL=$!
i=0
until grep -q "processes filled" $OUT; do
	i=$((i + 1))
	if [ $i -gt 600 ]; then
		echo "demo: ERROR: workload did not fill its memory within 60 s"
		cat $OUT
		echo "KSMDEMO-FAIL"
		exit 1
	fi
	sleep 0.1
done
cat $OUT

echo "demo: starting ksmd (run=1, pages_to_scan=1000, sleep_millisecs=20)"
echo 1 > $K/run
/tools/ksm_stat -w 1 -n "$SECS"

echo
echo "demo: per-process /proc/PID/ksm_stat:"
for p in /proc/[0-9]*; do
	[ -r $p/ksm_stat ] || continue
	grep -q "ksm_rmap_items [1-9]" $p/ksm_stat 2>/dev/null || continue
	echo "  pid ${p#/proc/} ($(cat $p/comm)): $(tr '\n' ' ' < $p/ksm_stat)"
done
echo
/tools/ksm_stat

shared=$(cat $K/pages_shared)
sharing=$(cat $K/pages_sharing)
zero=$(cat $K/ksm_zero_pages)
scans=$(cat $K/full_scans)
total=$((PROCS * MIB * 256))
saved_kb=$(( (sharing + zero) * 4 ))
echo
echo "demo: waiting for the workload to verify its memory"
wait $WL
rc=$?
cat $OUT | tail -1
echo 2 > $K/run
echo "KSMDEMO-SUMMARY: $PROCS processes x $MIB MiB: $((saved_kb / 1024)) MiB saved of $((total * 4 / 1024)) MiB ($((100 * (sharing + zero) / total))%), pages_shared=$shared pages_sharing=$sharing, full_scans=$scans, data verified: $([ $rc = 0 ] && echo yes || echo NO)"
[ $rc = 0 ] && echo "KSMDEMO-OK" || echo "KSMDEMO-FAIL"
