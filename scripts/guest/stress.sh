#!/bin/sh
# ksm.harness=stress: run ksm_stress_test for a long time (make stress).
#
# Kernel command line (see guest-init.sh):
#   ksm.duration=SECONDS    how long to stress (default 600)
#   ksm.phases=P[,P...]     only these phases (ksm_stress_test -l lists them)
#   ksm.scale=big|0         the scale suite first at its big profile (default
#                           big: 100k mappers, 20k VMAs, 1000 processes, 512k
#                           pages), or not at all (0)
#
# Runs ksm_scale_test (KSM_SCALE=big) first, then sets KSM to full speed,
# runs /tests/ours/ksm_stress_test -d SECONDS and turns the TAP results of
# both into the same marker lines as check.sh:
#
#   KSMTEST ksm_stress_test <test name> PASS|FAIL|SKIP
#   KSMTEST-RC ksm_stress_test stress rc=<exit code> time=<seconds>[ timeout]
#   KSMTEST-DONE
#
# on the console and on the results channel /dev/ttyS1.  A kernel splat
# in dmesg during the run adds "KSMTEST ksm_stress_test kernel_log FAIL".

DUR=${KSM_DURATION:-600}
PHASES=${KSM_PHASES:-}
SCALE=${KSM_SCALE:-big}
BIN=/tests/ours/ksm_stress_test
SUITE=ksm_stress_test
SCALE_BIN=/tests/ours/ksm_scale_test

case $DUR in
'' | *[!0-9]*)
	echo "harness: ksm.duration must be a number of seconds (got '$DUR'), using 600"
	DUR=600
	;;
esac

# mark, ksm_set, reset_ksm (the same reset as check.sh), tap_marks,
# kernel_splats; fd 3 is the results channel.
. "${0%/*}/lib.sh"

# The scale suite's big profile, on a freshly reset KSM (the stress run
# leaves state its exact counts would trip over, so it goes first).
run_scale() {
	echo "harness: run: KSM_SCALE=big $SCALE_BIN (timeout 3600s)"
	reset_ksm || echo "harness: WARNING: resetting KSM did not finish in 180s"
	start=$(date +%s)
	rm -f /tmp/rc
	(
		cd /tests/ours || exit 1
		KSM_SCALE=big timeout -s TERM -k 30 3600 "$SCALE_BIN"
		echo $? >/tmp/rc
	) 2>&1 | tee /tmp/scale.out
	rc=$(cat /tmp/rc 2>/dev/null || echo 255)
	tap_marks /tmp/scale.out ksm_scale_test >/tmp/scale.marks
	while read -r l; do mark "$l"; done </tmp/scale.marks
	read -r _ n plan failed </tmp/ksm_scale_test.count
	if [ "$n" -lt "$plan" ] || { [ "$rc" != 0 ] && [ "$failed" = 0 ]; }; then
		mark "KSMTEST ksm_scale_test big_profile:rc=$rc($n/$plan) FAIL"
	fi
	if kernel_splats >/dev/null; then
		echo "harness: kernel splat during the scale suite:"
		kernel_splats 20
		mark "KSMTEST ksm_scale_test kernel_log FAIL"
	fi
	mark "KSMTEST-RC ksm_scale_test big rc=$rc time=$(($(date +%s) - start))s"
}


mark "KSMTEST-BEGIN kernel=$(uname -r) duration=${DUR}s phases=${PHASES:-all}"
long_run_setup "$SUITE" "$BIN"

if [ "$SCALE" != 0 ] && [ -x "$SCALE_BIN" ]; then
	dmesg -c >/dev/null 2>&1
	run_scale
fi

# Full speed; the binary sets (and afterwards restores) the same itself.
reset_ksm || echo "harness: WARNING: resetting KSM did not finish in 180s (ksmd stuck?)"
ksm_set advisor_mode none
ksm_set pages_to_scan 5000
ksm_set sleep_millisecs 0
ksm_set run 1
echo "harness: KSM: run=$(cat $KSM/run 2>/dev/null) pages_to_scan=$(cat $KSM/pages_to_scan 2>/dev/null) sleep_millisecs=$(cat $KSM/sleep_millisecs 2>/dev/null)"

dmesg -c >/dev/null 2>&1
# A round that started before the deadline finishes; allow for it.
T=$((DUR + DUR / 4 + 600))
set -- -d "$DUR"
[ -n "$PHASES" ] && set -- "$@" -p "$PHASES"
run_long "$SUITE" stress "$T" "$BIN" "$@"

# A wedged ksmd makes writes to $KSM/run block for good: don't wait long.
reset_ksm 60 || echo "harness: WARNING: resetting KSM did not finish in 60s (ksmd stuck?)"
[ "$(wc -l </proc/swaps)" -gt 1 ] &&
	echo "harness: WARNING: swap still active: $(tail -n +2 /proc/swaps | tr '\n' ' ')"
kcsan_summary
mark "KSMTEST-DONE"
