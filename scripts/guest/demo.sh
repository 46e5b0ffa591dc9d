#!/bin/sh
# ksm.harness=demo: "make demo" (README, "What make demo shows").
#
#   1. workload   PROCS processes hold the same data, half opted in with
#                 madvise(MADV_MERGEABLE), half with prctl(PR_SET_MEMORY_MERGE)
#   2. ksm_run    an unmodified program started by /tools/ksm_run (like
#                 systemd's MemoryKSM=): the exec'd program and its children
#                 merge
#   3. stress-ng  the host's stress-ng (read-only 9p share of the host root),
#                 with --ksm where it has that option, else through ksm_run;
#                 skipped when the host has no stress-ng
#   4. QEMU       NVMS guests of the host's qemu-system-x86_64 (same share),
#                 TCG, booting this kernel and initramfs; ksmd merges their RAM
#
# Every wait is bounded and says so when it runs out.  A background
# ksm_stat appends time,pages_sharing,saved_mib every second; at the end
# the samples go to the results channel as "KSMDEMO-CSV <line>", with
# "KSMDEMO-PHASE <epoch> <name>" for each phase, and the host plots them
# (scripts/demo-report.py).  Exits non-zero when anything did not merge.
#
# Kernel command line (run-qemu.sh sets the first two):
#   ksm.demo_kernel=, ksm.demo_initrd=   host paths of the bzImage and
#                                        initramfs for the QEMU guests
#   ksm.demo_procs=4 ksm.demo_mib=32 ksm.demo_secs=15   workload
#   ksm.demo_vms=3 ksm.demo_vm_mib=192   QEMU guests
#   ksm.demo_vm_target=24                MiB each guest should merge ...
#   ksm.demo_vm_min_secs=60              ... watched for at least this long
#   ksm.demo_vm_secs=180                 ... and at most this long
. "${0%/*}/lib.sh"

PROCS=${KSM_DEMO_PROCS:-4}
MIB=${KSM_DEMO_MIB:-32}
SECS=${KSM_DEMO_SECS:-15}
NVMS=${KSM_DEMO_VMS:-3}
VM_MIB=${KSM_DEMO_VM_MIB:-192}
VM_TARGET=${KSM_DEMO_VM_TARGET:-24}
VM_MIN_SECS=${KSM_DEMO_VM_MIN_SECS:-60}
VM_SECS=${KSM_DEMO_VM_SECS:-180}
HOST=/host
CSV=/tmp/demo.csv
FAILED=
PAGE_KB=4

fail() {
	echo "demo: ERROR: $*"
	FAILED="$FAILED $1"
}

# phase NAME TEXT...: a heading; the host marks the phase in the plot.
phase() {
	echo "KSMDEMO-PHASE $(date +%s) $1" >&3
	_ph=$1
	shift
	echo
	echo "=== demo: $_ph: $*"
}

# field PID KEY: a number from /proc/PID/ksm_stat (0 if absent).
field() {
	_v=$(sed -n "s/^$2:* //p" "/proc/$1/ksm_stat" 2>/dev/null)
	echo "${_v:-0}"
}

# pages_mib PAGES: "12.3" (MiB, one decimal).
pages_mib() {
	echo "$1 $PAGE_KB" | awk '{ printf "%.1f", $1 * $2 / 1024 }'
}

# descendants PID: PID and every process below it.
descendants() {
	ps -o pid,ppid | awk -v root="$1" '
		NR > 1 { parent[$1] = $2; pids[NR] = $1 }
		END {
			want[root] = 1; print root
			do {
				more = 0
				for (i in pids) {
					p = pids[i]
					if (!(p in want) && (parent[p] in want)) {
						want[p] = 1; print p; more = 1
					}
				}
			} while (more)
		}'
}

# wait_scans SECS WHAT CMD...: run CMD after every full scan of ksmd
# until it succeeds; after SECS seconds give up, saying what did not
# happen.  Never waits longer.
wait_scans() {
	_ws_secs=$1
	_ws_end=$(($(date +%s) + $1))
	_ws_what=$2
	shift 2
	_ws_last=$(cat $KSM/full_scans)
	while ! "$@"; do
		if [ "$(date +%s)" -ge "$_ws_end" ]; then
			echo "demo: TIMEOUT: $_ws_what: not within ${_ws_secs}s" \
				"(full_scans=$(cat $KSM/full_scans))"
			return 1
		fi
		# the next full scan, or the deadline
		while [ "$(cat $KSM/full_scans)" = "$_ws_last" ] &&
			[ "$(date +%s)" -lt "$_ws_end" ]; do
			sleep 0.5
		done
		_ws_last=$(cat $KSM/full_scans)
	done
	return 0
}

# wait_line FILE PATTERN SECS: wait for PATTERN in FILE.
wait_line() {
	_wl_n=$(($3 * 10))
	until grep -q "$2" "$1" 2>/dev/null; do
		_wl_n=$((_wl_n - 1))
		[ $_wl_n -le 0 ] && return 1
		sleep 0.1
	done
	return 0
}

# stop PID...: TERM, up to 10 s, then KILL; reaps them.
stop() {
	kill "$@" 2>/dev/null
	_st_n=100
	while [ $_st_n -gt 0 ]; do
		_st_alive=
		for _st_p; do
			kill -0 "$_st_p" 2>/dev/null && _st_alive=1
		done
		[ -z "$_st_alive" ] && break
		_st_n=$((_st_n - 1))
		sleep 0.1
	done
	[ -n "$_st_alive" ] && kill -9 "$@" 2>/dev/null
	wait "$@" 2>/dev/null
	return 0
}

echo "demo: kernel $(uname -r)"
if [ ! -d $KSM ]; then
	echo "demo: ERROR: no $KSM in this kernel"
	echo "KSMDEMO-FAIL"
	exit 1
fi
reset_ksm 60 || { echo "demo: ERROR: resetting KSM hung"; echo "KSMDEMO-FAIL"; exit 1; }
ksm_set pages_to_scan 1000
ksm_set sleep_millisecs 20
rm -f $CSV
/tools/ksm_stat --table --watch 1 --csv $CSV >/dev/null &
SAMPLER=$!

# --- 1. workload: madvise and prctl ------------------------------------------
phase workload "$PROCS processes x $MIB MiB, 75% the same data in all; half opt in" \
	"with madvise(MADV_MERGEABLE), half with prctl(PR_SET_MEMORY_MERGE)"
# It fills its memory, keeps it SECS + 10 seconds, verifies every byte.
/tools/ksm_workload -p "$PROCS" -m "$MIB" -s $((SECS + 10)) >/tmp/workload.out 2>&1 &
WL=$!
if ! wait_line /tmp/workload.out "processes filled" 60; then
	cat /tmp/workload.out
	fail workload "the workload did not fill its memory within 60 s"
fi
cat /tmp/workload.out
echo "demo: starting ksmd (run=1, pages_to_scan=1000, sleep_millisecs=20)"
ksm_set run 1
/tools/ksm_stat --table --watch 1 --count "$SECS"
echo
echo "demo: per-process /proc/PID/ksm_stat:"
for p in $(descendants $WL); do
	[ "$p" = $WL ] && continue
	echo "  pid $p ($(cat /proc/$p/comm 2>/dev/null)): $(tr '\n' ' ' </proc/$p/ksm_stat 2>/dev/null)"
done
echo
/tools/ksm_stat
shared=$(cat $KSM/pages_shared)
sharing=$(cat $KSM/pages_sharing)
zero=$(cat $KSM/ksm_zero_pages)
scans=$(cat $KSM/full_scans)
total=$((PROCS * MIB * 1024 / PAGE_KB))
echo
echo "demo: waiting for the workload to verify its memory"
if wait_line /tmp/workload.out "verified their memory" $((SECS + 120)); then
	wait $WL
	rc=$?
else
	echo "demo: TIMEOUT: the workload did not verify its memory within $((SECS + 120))s"
	stop $(descendants $WL)
	rc=timeout
fi
tail -n 1 /tmp/workload.out
mark "KSMDEMO-SUMMARY: $PROCS processes x $MIB MiB: $(pages_mib $((sharing + zero))) MiB saved of $((PROCS * MIB)) MiB ($((100 * (sharing + zero) / total))%), pages_shared=$shared pages_sharing=$sharing, full_scans=$scans, data verified: $([ $rc = 0 ] && echo yes || echo NO)"
[ $rc = 0 ] || fail workload "the workload's data did not verify (exit $rc)"
[ "$sharing" -gt 0 ] || fail workload "nothing merged"

# --- 2. ksm_run: a whole process tree opted in --------------------------------
phase ksm_run "prctl(PR_SET_MEMORY_MERGE, 1), then exec an unmodified program:" \
	"it and the children it forks merge (systemd's MemoryKSM=)"
# -o none: the workload itself neither madvises nor prctls; -P: the
# exec'd parent holds memory too.  6.12's /proc/PID/ksm_stat has no
# ksm_merge_any line (later kernels have): each process reports
# prctl(PR_GET_MEMORY_MERGE) itself, and "mg" (VM_MERGEABLE) in the
# VmFlags of /proc/PID/smaps shows it from outside.
echo "demo: /tools/ksm_run /tools/ksm_workload -o none -P -p 2 -m 16 -s 60"
/tools/ksm_run /tools/ksm_workload -o none -P -p 2 -m 16 -s 60 >/tmp/run.out 2>&1 &
RUN=$!
wait_line /tmp/run.out "processes filled" 60 || fail ksm_run "ksm_run's workload did not fill its memory within 60 s"
cat /tmp/run.out
CHILD=$(sed -n 's/.*process 0 (pid \([0-9]*\)) opts.*/\1/p' /tmp/run.out)
CHILD=${CHILD:-0}
both_merge() {
	[ "$(field $RUN ksm_merging_pages)" -gt 0 ] && [ "$(field $CHILD ksm_merging_pages)" -gt 0 ]
}
wait_scans 60 "the exec'd program (pid $RUN) and its child (pid $CHILD) both merging" both_merge
/tools/ksm_stat --table --watch 1 --count 5
ok=yes
summary=
for p in $RUN $CHILD; do
	role="forked child"
	[ "$p" = $RUN ] && role="exec'd program"
	any=$(sed -n "s/.*(pid $p): prctl(PR_GET_MEMORY_MERGE) = //p" /tmp/run.out)
	mg=$(grep -c '^VmFlags:.* mg' /proc/$p/smaps 2>/dev/null)
	m=$(field $p ksm_merging_pages)
	echo "  pid $p, $role: PR_GET_MEMORY_MERGE ${any:-?}, $mg VM_MERGEABLE VMAs; ksm_stat: $(tr '\n' ' ' </proc/$p/ksm_stat 2>/dev/null)"
	summary="${summary:+$summary; }$role pid $p: merge_any ${any:-?}, $m merging pages ($(pages_mib "$m") MiB)"
	[ "$any" = 1 ] && [ "$m" -gt 0 ] || ok=no
done
mark "KSMDEMO-RUN: ksm_run ksm_workload -o none: $summary: $([ $ok = yes ] && echo ok || echo FAILED)"
[ $ok = yes ] || fail ksm_run "the exec'd program and its child did not both merge with PR_GET_MEMORY_MERGE 1"
stop $(descendants $RUN)

# --- host programs through the 9p share --------------------------------------
mkdir -p $HOST
if ! grep -q " $HOST 9p " /proc/mounts; then
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot $HOST 2>/tmp/mount.err ||
		echo "demo: cannot mount the host root (9p tag hostroot): $(cat /tmp/mount.err)"
fi
HOSTLD=
for f in $HOST/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 $HOST/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 \
	$HOST/usr/lib64/ld-linux-x86-64.so.2; do
	[ -x "$f" ] && HOSTLD=$f && break
done
HOSTLIBS=$HOST/usr/lib/x86_64-linux-gnu:$HOST/lib/x86_64-linux-gnu:$HOST/usr/lib64:$HOST/usr/lib
# host PROGRAM ARGS...: run a program of the host with the host's dynamic
# loader and libraries.
host() {
	"$HOSTLD" --library-path "$HOSTLIBS" "$@"
}

# --- 3. stress-ng ------------------------------------------------------------
phase stress-ng "2 vm workers, 16 MiB in all, of one byte value, kept (--vm-hang 0)"
SNG=$HOST/usr/bin/stress-ng
if [ -z "$HOSTLD" ] || [ ! -x $SNG ]; then
	mark "KSMDEMO-STRESSNG: skipped: no stress-ng on the host (Debian package stress-ng)"
else
	# stress-ng 0.15.06 (Debian 12) has no --ksm; later ones call
	# prctl(PR_SET_MEMORY_MERGE) in every stressor with it.
	host $SNG --help >/tmp/stress-ng.help 2>&1
	ver=$(sed -n '1s/.*version \([^ ]*\).*/\1/p' /tmp/stress-ng.help)
	if grep -q -- '--ksm' /tmp/stress-ng.help; then
		how="stress-ng $ver --ksm"
		set -- "$HOSTLD" --library-path "$HOSTLIBS" $SNG --ksm
	else
		how="ksm_run stress-ng (stress-ng $ver has no --ksm)"
		set -- /tools/ksm_run "$HOSTLD" --library-path "$HOSTLIBS" $SNG
	fi
	echo "demo: $how --vm 2 --vm-bytes 16m --vm-method zero-one --vm-hang 0 --timeout 120s"
	(cd /tmp && exec "$@" --vm 2 --vm-bytes 16m --vm-method zero-one --vm-hang 0 --timeout 120s) \
		>/tmp/stress-ng.out 2>&1 &
	SNGPID=$!
	sng_merging() {
		_sm=0
		for p in $(descendants $SNGPID); do
			_sm=$((_sm + $(field "$p" ksm_merging_pages)))
		done
		echo $_sm
	}
	# --vm-bytes is shared by the workers: 16 MiB of 0xff bytes in all,
	# every page but one can merge
	sng_merged() {
		[ "$(sng_merging)" -ge 3072 ]
	}
	wait_scans 90 "stress-ng's workers merging 12 MiB" sng_merged
	/tools/ksm_stat --table --watch 1 --count 5
	/tools/ksm_stat | sed -n '/PID/,$p'
	sm=$(sng_merging)
	n=$(descendants $SNGPID | wc -l)
	stop $(descendants $SNGPID)
	mark "KSMDEMO-STRESSNG: $how: $n processes, $sm merging pages ($(pages_mib "$sm") MiB)"
	if [ "$sm" -eq 0 ]; then
		tail -n 5 /tmp/stress-ng.out
		fail stress-ng "stress-ng's memory did not merge"
	fi
fi

# --- 4. QEMU guests ----------------------------------------------------------
phase qemu "$NVMS QEMU guests (TCG, $VM_MIB MiB, mem-merge=on) boot this kernel and initramfs"
QEMU=$HOST/usr/bin/qemu-system-x86_64
VMS=
if [ -z "$HOSTLD" ] || [ ! -x $QEMU ]; then
	fail qemu "no $QEMU (the host root is not shared, or has no qemu-system-x86)"
elif [ ! -f "$HOST$KSM_DEMO_KERNEL" ] || [ ! -f "$HOST$KSM_DEMO_INITRD" ]; then
	fail qemu "no kernel/initramfs at $HOST${KSM_DEMO_KERNEL:-<ksm.demo_kernel unset>}, $HOST${KSM_DEMO_INITRD:-<ksm.demo_initrd unset>}"
else
	# Debian's QEMU loads its TCG accelerator as a module.
	export QEMU_MODULE_DIR=$HOST/usr/lib/x86_64-linux-gnu/qemu
	start=$(date +%s)
	scans0=$(cat $KSM/full_scans)
	i=1
	while [ $i -le "$NVMS" ]; do
		# not through host(): $! must be QEMU's pid, not a subshell's
		"$HOSTLD" --library-path "$HOSTLIBS" $QEMU -L $HOST/usr/share/qemu -L $HOST/usr/share/seabios \
			-name "demo-vm$i,process=qemu-vm$i" -machine pc,mem-merge=on -accel tcg \
			-m "$VM_MIB" -smp 1 -nodefaults -no-user-config -display none -monitor none \
			-serial file:/tmp/vm$i.log -no-reboot \
			-kernel "$HOST$KSM_DEMO_KERNEL" -initrd "$HOST$KSM_DEMO_INITRD" \
			-append "console=ttyS0 panic=-1 quiet kunit.enable=0 ksm.harness=idle ksm.duration=$((VM_SECS + 300))" \
			</dev/null >/tmp/vm$i.err 2>&1 &
		VMS="$VMS $!"
		echo "demo: vm$i: pid $!"
		i=$((i + 1))
	done
	# ksmd scans a guest's RAM once QEMU has marked it mergeable; the
	# guests fill it with the same firmware, kernel and initramfs.
	vms_merged() {
		[ $(($(cat $KSM/full_scans) - scans0)) -ge 2 ] || return 1
		[ $(($(date +%s) - start)) -ge "$VM_MIN_SECS" ] || return 1
		for p in $VMS; do
			kill -0 "$p" 2>/dev/null || return 0	# died: stop waiting
			[ "$(field "$p" ksm_merging_pages)" -ge $((VM_TARGET * 1024 / PAGE_KB)) ] || return 1
		done
	}
	last=0
	vms_progress() {
		now=$(date +%s)
		if [ $((now - last)) -ge 10 ]; then
			last=$now
			line="demo: $((now - start))s:"
			for p in $VMS; do
				line="$line $(cat /proc/"$p"/comm 2>/dev/null || echo "$p gone") $(pages_mib "$(field "$p" ksm_merging_pages)") MiB,"
			done
			echo "$line pages_sharing $(cat $KSM/pages_sharing), full_scans $(cat $KSM/full_scans)"
		fi
		vms_merged
	}
	echo "demo: watching the guests for ${VM_MIN_SECS}s, until every one merges ${VM_TARGET} MiB (at most ${VM_SECS}s)"
	wait_scans "$VM_SECS" "every QEMU guest merging ${VM_TARGET} MiB" vms_progress
	echo
	/tools/ksm_stat
	echo
	i=1
	for p in $VMS; do
		if ! kill -0 "$p" 2>/dev/null; then
			echo "demo: vm$i (pid $p) exited early:"
			tail -n 5 /tmp/vm$i.err
		fi
		echo "  vm$i pid $p: $(tr '\n' ' ' </proc/$p/ksm_stat 2>/dev/null)"
		up=no
		grep -q KSMIDLE-UP /tmp/vm$i.log 2>/dev/null && up=yes
		m=$(field "$p" ksm_merging_pages)
		mark "KSMDEMO-QEMU: vm$i (pid $p, $VM_MIB MiB): ksm_merging_pages $m ($(pages_mib "$m") MiB), ksm_process_profit $(field "$p" ksm_process_profit | awk '{ printf "%.1f", $1 / 1048576 }') MiB, guest userspace up: $up"
		[ "$m" -gt 0 ] || fail qemu "vm$i merged nothing"
		i=$((i + 1))
	done
	sharing=$(cat $KSM/pages_sharing)
	mark "KSMDEMO-QEMU: $NVMS guests after $(($(date +%s) - start))s: pages_sharing=$sharing pages_shared=$(cat $KSM/pages_shared) ($(pages_mib "$sharing") MiB saved), full_scans=$(cat $KSM/full_scans)"
	# shellcheck disable=SC2086
	stop $VMS
fi

# --- the end -----------------------------------------------------------------
stop $SAMPLER
sed 's/^/KSMDEMO-CSV /' $CSV >&3
ksm_set run 2
if [ -n "$FAILED" ]; then
	mark "KSMDEMO-FAIL:$FAILED"
	exit 1
fi
mark "KSMDEMO-OK"
