#!/bin/sh
# ksm.harness=fuzz: run ksm_fuzz_test for a long time (make fuzz).
#
# Kernel command line (see guest-init.sh):
#   ksm.duration=SECONDS    how long to fuzz (default 1800)
#   ksm.seed=N              the seed to replay (default: a new one, printed)
#   ksm.procs=N             worker processes (default 4)
#
# Markers as in stress.sh: "KSMTEST ksm_fuzz_test fuzz_seed=N PASS|FAIL",
# "KSMTEST ksm_fuzz_test kernel_log PASS|FAIL", "KSMTEST-RC ...",
# "KSMTEST-DONE".

DUR=${KSM_DURATION:-1800}
SEED=${KSM_SEED:-}
PROCS=${KSM_PROCS:-4}
BIN=/tests/ours/ksm_fuzz_test
SUITE=ksm_fuzz_test

# mark, reset_ksm, long_run_setup, run_long; fd 3 is the results channel.
. "${0%/*}/lib.sh"

case $DUR in
'' | *[!0-9]*)
	echo "harness: ksm.duration must be a number of seconds (got '$DUR'), using 1800"
	DUR=1800
	;;
esac

mark "KSMTEST-BEGIN kernel=$(uname -r) duration=${DUR}s seed=${SEED:-new} procs=$PROCS"
long_run_setup "$SUITE" "$BIN"

reset_ksm || echo "harness: WARNING: resetting KSM did not finish in 180s (ksmd stuck?)"
dmesg -c >/dev/null 2>&1
# The workers get two minutes to finish after the deadline, the
# controller some more for its checks and cleanup.
set -- -d "$DUR" -p "$PROCS"
[ -n "$SEED" ] && set -- "$@" -s "$SEED"
run_long "$SUITE" fuzz $((DUR + 600)) "$BIN" "$@"

reset_ksm 60 || echo "harness: WARNING: resetting KSM did not finish in 60s (ksmd stuck?)"
kcsan_summary
mark "KSMTEST-DONE"
