#!/bin/sh
# ksm.harness=profile: where ksmd's CPU goes, sampled by perf in the guest.
# "make profile" runs it, with an initramfs that holds the host's perf
# and its libraries (build-initramfs.sh with PERF=1).
#
# Parameters (kernel command line): ksm.profile_workload=NAME, one of
# nodups, alldups, mix, pairs (the ksm_bench workloads of those names),
# threads_nodups2, threads_alldups2 or threads_pairs2 (the same with two
# ksmd threads); ksm.timeout=SECS bounds every wait of the workload.
#
# perf samples every CPU at 2 kHz (cpu-clock: TCG has no hardware
# counters) with kernel call chains for as long as the workload runs; the
# report keeps only the samples of ksmd threads.  Under TCG a sample lands
# where the interrupted block of translated code ends, often just after a
# call returns: read "self" with that in mind, "total" is sound.  Results
# on the results channel (build/logs/<variant>-profile.results):
#
#   PROFILE samples <n>                   ksmd samples in all
#   PROFILE self <percent> <symbol>       time in the function itself
#   PROFILE total <percent> <symbol>      time in it and what it calls
#   PROFILE hot <n> <symbol+offset>       samples of one instruction
#                                         (0.5% of all or more)
#   PROFILE lockwait <percent> <symbol+offset>
#                                         time in mutex_lock() (spinning or
#                                         going to sleep) by its KSM caller
#   BENCH ...                             the workload's own figures
#   PROFILE-DONE
B=/tools/ksm_bench
T=${KSM_TIMEOUT:-900}
WL=${KSM_PROFILE_WORKLOAD:-nodups}
SCAN="-s 4000 -S 0"
PERF=/usr/bin/perf
DATA=/tmp/perf.data

. "${0%/*}/lib.sh"

case $WL in
nodups) set -- nodups -p 1 -m 512 -n 4 $SCAN ;;
alldups) set -- alldups -p 3 -m 128 $SCAN ;;
mix) set -- mix -p 8 -m 64 $SCAN ;;
pairs) set -- pairs -p 2 -m 256 $SCAN ;;
threads_nodups2) set -- nodups -p 1 -m 512 -n 4 -k ksmd_threads=2 $SCAN ;;
threads_alldups2) set -- alldups -p 4 -m 128 -k ksmd_threads=2 $SCAN ;;
threads_pairs2) set -- pairs -p 2 -m 256 -k ksmd_threads=2 $SCAN ;;
*)
	mark "PROFILE-ERROR unknown workload '$WL'"
	exit 1
	;;
esac
if [ ! -x $PERF ] || [ ! -x $B ]; then
	mark "PROFILE-ERROR no $PERF or $B in the initramfs"
	exit 1
fi
mark "PROFILE info kernel $(uname -r) workload $WL"

# perf resolves kernel symbols through /proc/kallsyms.
echo 0 >/proc/sys/kernel/kptr_restrict
echo -1 >/proc/sys/kernel/perf_event_paranoid

$B reset
$PERF record -N -a -g -F 2000 -e cpu-clock -o $DATA >/tmp/perf.out 2>&1 &
perf_pid=$!
sleep 1
$B -t "$T" -l "$WL" "$@" 2>&1 | grep -v '^BENCHSAMPLE' | while IFS= read -r line; do
	mark "$line"
done
kill -INT $perf_pid
wait $perf_pid
sed 's/^/perf: /' /tmp/perf.out

# Every sample with its kernel call chain: a header line (the command),
# then one "address symbol+offset" line per frame, innermost first.
$PERF script -i $DATA -F comm,ip,sym,symoff 2>/dev/null >/tmp/samples.txt
awk -v limit=0.5 '
function flush(   s) {
	if (keep && nf) {
		n++
		self[first]++
		hot[firstoff]++
		for (s in seen)
			total[s]++
		if (waiter != "")
			lockwait[waiter]++
	}
	waiter = ""
	keep = 0
	nf = 0
	inlock = 0
	delete seen
}
/^[^\t]/ && NF { flush(); keep = $1 ~ /^ksmd/; next }
NF >= 2 && keep {
	sym = $2
	sub(/\+0x[0-9a-f]+$/, "", sym)
	if (!nf) { first = sym; firstoff = $2 }
	nf++
	seen[sym] = 1
	# The KSM function that called into a contended mutex.
	if (sym ~ /^(__)?mutex_lock/ || sym == "mutex_spin_on_owner")
		inlock = 1
	else if (inlock && sym ~ /^ksm/) {
		waiter = $2
		inlock = 0
	}
}
END {
	flush()
	if (!n) { print "PROFILE-ERROR no ksmd samples"; exit }
	print "PROFILE samples " n
	for (s in self)
		if (100 * self[s] / n >= limit)
			printf "PROFILE self %.2f %s\n", 100 * self[s] / n, s
	for (s in total)
		if (100 * total[s] / n >= limit)
			printf "PROFILE total %.2f %s\n", 100 * total[s] / n, s
	for (s in hot)
		if (hot[s] >= n / 200)
			printf "PROFILE hot %d %s\n", hot[s], s
	for (s in lockwait)
		printf "PROFILE lockwait %.2f %s\n", 100 * lockwait[s] / n, s
}' /tmp/samples.txt | sort -k2,2 -k3,3nr >/tmp/profile.txt
while IFS= read -r line; do
	mark "$line"
done </tmp/profile.txt
grep -q '^PROFILE-ERROR' /tmp/profile.txt && exit 1
mark "PROFILE-DONE"
