#!/bin/sh
# ksm.harness=check: run our kselftests and upstream's 6.12 KSM selftests.
# (KUnit suites already ran during boot; the host reads them from the log.)
#
# Every result becomes one marker line, on the console and on the clean
# results channel /dev/ttyS1 (second serial port, no kernel messages):
#
#   KSMTEST <suite> <test name> PASS|FAIL|SKIP
#   KSMTEST-RC <suite> <run> rc=<exit code> time=<seconds>[ timeout]
#   KSMTEST-DONE
#   KSMTEST-ABORT <reason>     (kernel oops / hung test: the run stops)
#
# Parameters (kernel command line, see guest-init.sh):
#   ksm.only=PAT[,PAT...]   run only suites/tests matching a shell glob
#                           against "suite" or "suite:test"
#   ksm.timeout=SECONDS     per test binary run (default 300)
#   ksm.retry=N             re-run a failed upstream ksm_tests mode up to N
#                           times (default 2); a pass on retry is reported
#                           as "KSMTEST-FLAKY <suite> <test>"

T=${KSM_TIMEOUT:-300}
RETRY=${KSM_RETRY:-2}
ONLY=${KSM_ONLY:-}
# mark, ksm_set, wait_file, reset_ksm; fd 3 is the results channel.
. "${0%/*}/lib.sh"

# selected SUITE [TEST]: is this suite (or suite:test) picked by ksm.only?
selected() {
	[ -z "$ONLY" ] && return 0
	set -f
	for pat in $(echo "$ONLY" | tr ',' ' '); do
		case $pat in kunit:*) continue ;; esac
		case $1 in $pat) set +f; return 0 ;; esac
		if [ -n "$2" ]; then
			case "$1:$2" in $pat) set +f; return 0 ;; esac
		else
			# a pattern naming tests of this suite selects the whole run
			case $pat in "$1":*) set +f; return 0 ;; esac
		fi
	done
	set +f
	return 1
}

# abort REASON: the guest cannot go on (kernel oops, unkillable test, KSM
# wedged): say so and end the run; /init powers off.
abort() {
	mark "KSMTEST-ABORT $*"
	echo "harness: ABORT: $*; last kernel messages:"
	dmesg | tail -n 40
	exit 1
}

# An oops (taint bit 7, 'D') usually leaves locks held: later tests would
# only hang, so stop here; the host reports the splat.
check_taint() {
	t=$(cat /proc/sys/kernel/tainted 2>/dev/null || echo 0)
	[ $((t & 128)) = 0 ] || abort "kernel oops (tainted=$t)"
}

# Reset KSM to a known state (lib.sh: unmerge everything, the 6.12
# defaults, stopped; the tests start it themselves).  Writing run=2 blocks
# forever if KSM is wedged: then the run stops here.
reset_or_abort() {
	reset_ksm 180 || abort "KSM reset (echo 2 > $KSM/run ...) hung for 180s"
}

# run_bin OUTFILE BINARY [ARGS...]: run from the binary's directory (as the
# kselftest runner does; ksm_functional_tests execs ./ksm_functional_tests)
# under a watchdog of $T seconds, output to OUTFILE then the console; sets
# RC, DUR, TIMEDOUT.  The watchdog does not wait for the test to exit (a
# task stuck in the kernel cannot be killed): TERM, then KILL, then abort.
run_bin() {
	out=$1
	shift
	echo "harness: run: $*"
	bname=$(basename "$1")
	start=$(date +%s)
	rm -f /tmp/rc
	: >"$out"
	(
		cd "$(dirname "$1")" || { echo 126 >/tmp/rc; exit 1; }
		"$@" >>"$out" 2>&1 </dev/null
		echo $? >/tmp/rc
	) &
	runner=$!
	TIMEDOUT=
	if ! wait_file /tmp/rc "$T"; then
		TIMEDOUT=" timeout"
		cat "$out"
		echo "harness: TIMEOUT after ${T}s: $*"
		killall -TERM "$bname" 2>/dev/null
		if ! wait_file /tmp/rc 10; then
			killall -KILL "$bname" 2>/dev/null
			wait_file /tmp/rc 30 || abort "test hung in the kernel, unkillable after ${T}s: $*"
		fi
	else
		cat "$out"
	fi
	wait $runner
	RC=$(cat /tmp/rc 2>/dev/null || echo 255)
	DUR=$(($(date +%s) - start))
	check_taint
}

# tap_results SUITE OUTFILE: one marker per top-level TAP result.
# - Results are keyed by their TAP number and the last one wins: a forked
#   child that falls through into the parent's remaining tests (as 6.12's
#   ksm_functional_tests test_prctl_fork_exec does when its execv fails)
#   prints duplicates before the parent, which prints last.
# - Names: when the binary prints one "# [RUN] name" line per test, the
#   k-th distinct name names test k; otherwise the TAP description.
# - "# SKIP" makes a result SKIP, "# XFAIL" counts as PASS.
tap_results() {
	awk -v suite="$1" '
	function trim(s) { sub(/^[ \t-]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
	/^# \[RUN\] / {
		r = trim(substr($0, 9))
		if (!(r in seen)) { seen[r] = 1; runs[++nruns] = r }
		next
	}
	/^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; next }
	/^(not )?ok [0-9]+/ {
		num = ($1 == "not") ? $3 : $2
		num += 0
		r = ($1 == "not") ? "FAIL" : "PASS"
		line = $0
		sub(/^(not )?ok [0-9]+/, "", line)
		d = line; why = ""
		if (match(line, /#[ \t]*(SKIP|skip)/)) {
			d = substr(line, 1, RSTART - 1)
			why = substr(line, RSTART + RLENGTH)
			r = "SKIP"
		} else if (match(line, /#[ \t]*(XFAIL|xfail)/)) {
			d = substr(line, 1, RSTART - 1)
			why = substr(line, RSTART + RLENGTH)
			r = "PASS"
		}
		d = trim(d); why = trim(why)
		if (d == "") d = why
		if (!(num in res)) n++
		res[num] = r; desc[num] = d
		if (num > max) max = num
	}
	END {
		use_runs = (nruns == n && max == n)
		for (i = 1; i <= max; i++) {
			if (!(i in res)) continue
			name = use_runs ? runs[i] : desc[i]
			if (name == "") name = "test" i
			gsub(/[ \t]+/, " ", name)
			print "KSMTEST " suite " " name " " res[i]
			if (res[i] == "FAIL") failed++
		}
		print "N " n + 0 " " plan + 0 " " failed + 0 > "/tmp/tapcount"
	}' "$2"
}

# run_tap_suite SUITE BINARY: a kselftest binary with many TAP results.
run_tap_suite() {
	suite=$1 bin=$2
	selected "$suite" || return 0
	reset_or_abort
	run_bin /tmp/out "$bin"
	tap_results "$suite" /tmp/out >/tmp/marks
	while read -r l; do mark "$l"; done </tmp/marks
	read -r _ n plan failed </tmp/tapcount
	if [ -n "$TIMEDOUT" ]; then
		mark "KSMTEST $suite $suite:timeout FAIL"
	elif [ "$n" -lt "$plan" ]; then
		mark "KSMTEST $suite $suite:incomplete($n/$plan) FAIL"
	elif [ "$plan" -gt 0 ] && [ "$n" -gt "$plan" ]; then
		mark "KSMTEST $suite $suite:more-results-than-planned($n/$plan) FAIL"
	elif [ "$RC" = 4 ] && [ "$n" = 0 ]; then
		mark "KSMTEST $suite $suite SKIP"
	elif [ "$RC" != 0 ] && [ "$RC" != 4 ] && [ "$failed" = 0 ]; then
		mark "KSMTEST $suite $suite:exit-code FAIL"
	elif [ "$n" = 0 ] && [ "$RC" = 0 ]; then
		mark "KSMTEST $suite $suite:no-results FAIL"
	fi
	mark "KSMTEST-RC $suite $suite rc=$RC time=${DUR}s$TIMEDOUT"
}

# ksm_mode NAME ARGS...: one upstream ksm_tests mode = one test.  Some
# modes are timing sensitive under emulation (they count ksmd's full scans
# against a wall-clock limit), so a failure is retried up to ksm.retry
# times and a later pass is flagged as flaky.
ksm_mode() {
	name=$1
	shift
	selected ksm_tests "$name" || return 0
	try=0
	while :; do
		reset_or_abort
		run_bin /tmp/out /tests/upstream/ksm_tests "$@"
		tap_results ksm_tests /tmp/out >/tmp/marks
		if [ -n "$TIMEDOUT" ]; then
			res=FAIL
		elif [ "$RC" = 4 ] || grep -q ' SKIP$' /tmp/marks; then
			res=SKIP
		elif [ "$RC" = 0 ] && grep -q ' PASS$' /tmp/marks; then
			res=PASS
		else
			res=FAIL
		fi
		mark "KSMTEST-RC ksm_tests $name rc=$RC time=${DUR}s$TIMEDOUT args=$(echo "$*" | tr ' ' '_')"
		[ "$res" = FAIL ] && [ "$try" -lt "$RETRY" ] || break
		try=$((try + 1))
		mark "KSMTEST-RETRY ksm_tests $name attempt $((try + 1))"
	done
	[ "$try" -gt 0 ] && [ "$res" = PASS ] && mark "KSMTEST-FLAKY ksm_tests $name"
	mark "KSMTEST ksm_tests $name $res"
}

mark "KSMTEST-BEGIN kernel=$(uname -r) timeout=$T only=${ONLY:-all}"
if [ ! -d $KSM ]; then
	echo "harness: WARNING: $KSM does not exist (CONFIG_KSM off?)"
fi
echo "harness: THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
echo "harness: KSM knobs: $(ls $KSM 2>/dev/null | tr '\n' ' ')"

# (b) our kselftests; the stress test runs last (below): it poisons
# frames for good and leaves KSM counters other tests read as idle.
for t in /tests/ours/ksm_*_test; do
	[ -x "$t" ] || continue
	[ "${t##*/}" = ksm_stress_test ] && continue
	run_tap_suite "$(basename "$t")" "$t"
done

# (c) upstream 6.12 ksm_tests in every mode, then ksm_functional_tests
ksm_mode merge -M -p 10
ksm_mode merge_prctl -M -p 10 -t 1
ksm_mode unmerge -U
ksm_mode zero_page_merge_z0 -Z -p 10 -z 0
ksm_mode zero_page_merge_z1 -Z -p 10 -z 1
ksm_mode numa_merge_m1 -N -m 1
ksm_mode numa_merge_m0 -N -m 0
ksm_mode merge_time -P -s 100
ksm_mode merge_time_thp -H -s 100
ksm_mode unmerge_time -D -s 100
ksm_mode cow_time -C
run_tap_suite ksm_functional_tests /tests/upstream/ksm_functional_tests

# (d) our stress test, bounded profile
if [ -x /tests/ours/ksm_stress_test ]; then
	run_tap_suite ksm_stress_test /tests/ours/ksm_stress_test
fi

reset_or_abort
kcsan_summary
mark "KSMTEST-DONE"
