# Helpers shared by the guest mode scripts (scripts/guest/*.sh, installed
# as /harness/*.sh).  Source it, don't run it:
#
#   . "${0%/*}/lib.sh"
#
# POSIX sh (busybox).  Sourcing opens the results channel on fd 3 and sets
# KSM.  Variables of the helpers start with an underscore so that they do
# not clobber the caller's (sh has no locals).

KSM=/sys/kernel/mm/ksm

# The results channel: the second serial port (/dev/ttyS1) carries only
# what the script sends there, no kernel messages; the host keeps it in
# build/logs/<variant>-<mode>.results.  Without it, fd 3 goes nowhere.
if [ -c /dev/ttyS1 ]; then
	stty -F /dev/ttyS1 raw -echo 2>/dev/null
	exec 3>/dev/ttyS1
else
	exec 3>/dev/null
fi

# mark LINE: LINE on the console and on the results channel.
mark() {
	echo "$*"
	echo "$*" >&3
}

# ksm_set KNOB VALUE: write a KSM sysfs knob if the kernel has it; warn
# (don't fail) when the write is refused.
ksm_set() {
	[ -e "$KSM/$1" ] || return 0
	echo "$2" >"$KSM/$1" 2>/dev/null ||
		echo "harness: WARNING: cannot set $KSM/$1 to $2"
}

# wait_file FILE SECS: wait up to SECS for FILE to appear.
wait_file() {
	_wf_n=$(($2 * 5))
	while [ ! -e "$1" ]; do
		[ "$_wf_n" -le 0 ] && return 1
		_wf_n=$((_wf_n - 1))
		sleep 0.2
	done
	return 0
}

# ksm_defaults: unmerge everything, restore the 6.12 defaults, leave KSM
# stopped.  Blocks for good if KSM is wedged: use reset_ksm.
ksm_defaults() {
	ksm_set run 2
	ksm_set advisor_mode none
	ksm_set pages_to_scan 100
	ksm_set sleep_millisecs 20
	ksm_set max_page_sharing 256
	ksm_set merge_across_nodes 1
	ksm_set use_zero_pages 0
	ksm_set stable_node_chains_prune_millisecs 2000
	ksm_set smart_scan 1
	ksm_set huge_split_min_subpages 64
	ksm_set merge_domain user
	ksm_set merge_fresh_frames 1
	ksm_set ksmd_threads 1
	ksm_set run 0
}

# reset_ksm [SECS]: ksm_defaults under a watchdog.  Returns 1 if it did
# not finish within SECS (default 180): writing run=2 never returns when
# KSM is wedged, so the caller decides whether to abort or warn.
reset_ksm() {
	[ -d $KSM ] || return 0
	rm -f /tmp/reset.done
	(
		ksm_defaults
		: >/tmp/reset.done
	) &
	wait_file /tmp/reset.done "${1:-180}" || return 1
	wait $!
	return 0
}

# tap_marks TAPFILE SUITE: one marker per TAP result "ok N name" /
# "not ok N name" / "... # SKIP", keyed by N (the last result for a number
# wins, as in check.sh); "N results plan failed" goes to /tmp/SUITE.count.
tap_marks() {
	awk -v suite="$2" '
	/^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; next }
	/^(not )?ok [0-9]+/ {
		num = (($1 == "not") ? $3 : $2) + 0
		r = ($1 == "not") ? "FAIL" : "PASS"
		line = $0
		sub(/^(not )?ok [0-9]+[ \t]*/, "", line)
		if (match(line, /#[ \t]*(SKIP|skip)/)) {
			r = "SKIP"
			line = substr(line, 1, RSTART - 1)
		}
		sub(/^[ \t-]+/, "", line); sub(/[ \t\r]+$/, "", line)
		gsub(/[ \t]+/, "_", line)
		if (line == "") line = "test" num
		if (!(num in res)) n++
		res[num] = r; name[num] = line
		if (num > max) max = num
	}
	END {
		for (i = 1; i <= max; i++) {
			if (!(i in res)) continue
			print "KSMTEST " suite " " name[i] " " res[i]
			if (res[i] == "FAIL") failed++
		}
		print "N " n + 0 " " plan + 0 " " failed + 0 > ("/tmp/" suite ".count")
	}' "$1"
}

# Kernel log lines that mean a kernel bug (grep -E).  KCSAN data-race
# reports ("BUG: KCSAN:") are left out by kernel_splats: most are outside
# mm/ksm/, and the host (scripts/report.py) knows which functions are ours.
splat_re='Kernel panic|Oops|BUG:|WARNING:|kernel BUG at|cut here \]|general protection fault|KASAN:|KFENCE:|UBSAN:|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|bad unlock balance|DEBUG_LOCKS_WARN_ON|Call Trace|blocked for more than|rcu: INFO:|soft lockup|hard LOCKUP|list_(add|del) corruption|page dumped because'

# kernel_splats [MAX]: the kernel log's splat lines (at most MAX); status 1
# if there are none.
kernel_splats() {
	dmesg 2>/dev/null | grep -E "$splat_re" | grep -v 'BUG: KCSAN:' | head -n "${1:-100000}" | grep .
}

# kcsan_summary: on a KCSAN kernel, say that KCSAN ran and what it saw
# (its debugfs counters: watchpoints set up, data races found, ...).
kcsan_summary() {
	[ -r /sys/kernel/debug/kcsan ] || return 0
	echo "harness: KCSAN: $(head -n 12 /sys/kernel/debug/kcsan | tr '\n' ' ')"
}

# long_run_setup SUITE BINARY: before a long run, say what the guest has
# (KSM, nodes, THP, zram, swap); end the run if BINARY is missing.
long_run_setup() {
	[ -d $KSM ] || echo "harness: WARNING: $KSM does not exist (CONFIG_KSM off?)"
	if [ ! -x "$2" ]; then
		echo "harness: ERROR: $2 missing (our selftests are not in this initramfs)"
		mark "KSMTEST $1 missing-binary FAIL"
		mark "KSMTEST-DONE"
		exit 1
	fi
	echo "harness: nodes: $(cat /sys/devices/system/node/online 2>/dev/null)," \
		"THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)," \
		"zram: $(ls -d /sys/block/zram* 2>/dev/null | tr '\n' ' ')," \
		"swaps: $(tail -n +2 /proc/swaps 2>/dev/null | wc -l)"
}

# run_long SUITE RUN SECS BINARY ARGS...: run a long test binary from
# /tests/ours under "timeout SECS", its output on the console and in
# /tmp/SUITE.out; then one marker per TAP result, a FAIL marker if the run
# timed out, ended early or exited non-zero without a failed result, a
# kernel_log PASS or FAIL (any splat in dmesg: clear it before), and
# "KSMTEST-RC SUITE RUN rc=... time=...".
run_long() {
	_rl_suite=$1 _rl_run=$2 _rl_secs=$3
	shift 3
	echo "harness: run: $* (timeout ${_rl_secs}s)"
	_rl_start=$(date +%s)
	rm -f /tmp/rc
	(
		cd /tests/ours || exit 1
		timeout -s TERM -k 30 "$_rl_secs" "$@"
		echo $? >/tmp/rc
	) 2>&1 | tee "/tmp/$_rl_suite.out"
	_rl_rc=$(cat /tmp/rc 2>/dev/null || echo 255)
	_rl_dur=$(($(date +%s) - _rl_start))
	_rl_to=
	if [ "$_rl_dur" -ge "$_rl_secs" ] && [ "$_rl_rc" -ge 124 ]; then
		_rl_to=" timeout"
		echo "harness: TIMEOUT after ${_rl_secs}s"
	fi
	tap_marks "/tmp/$_rl_suite.out" "$_rl_suite" >"/tmp/$_rl_suite.marks"
	while read -r _rl_l; do mark "$_rl_l"; done <"/tmp/$_rl_suite.marks"
	read -r _ _rl_n _rl_plan _rl_failed <"/tmp/$_rl_suite.count"
	if [ -n "$_rl_to" ]; then
		mark "KSMTEST $_rl_suite $_rl_suite:timeout FAIL"
	elif [ "$_rl_n" -lt "$_rl_plan" ]; then
		mark "KSMTEST $_rl_suite $_rl_suite:incomplete($_rl_n/$_rl_plan) FAIL"
	elif [ "$_rl_rc" = 4 ] && [ "$_rl_n" = 0 ]; then
		mark "KSMTEST $_rl_suite $_rl_suite SKIP"
	elif [ "$_rl_rc" != 0 ] && [ "$_rl_failed" = 0 ]; then
		mark "KSMTEST $_rl_suite $_rl_suite:exit-code FAIL"
	elif [ "$_rl_n" = 0 ]; then
		mark "KSMTEST $_rl_suite $_rl_suite:no-results FAIL"
	fi
	if kernel_splats >/dev/null; then
		echo "harness: kernel splat during the $_rl_run run:"
		kernel_splats 20
		mark "KSMTEST $_rl_suite kernel_log FAIL"
	else
		mark "KSMTEST $_rl_suite kernel_log PASS"
	fi
	mark "KSMTEST-RC $_rl_suite $_rl_run rc=$_rl_rc time=${_rl_dur}s$_rl_to"
}
