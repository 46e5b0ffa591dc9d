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
