#!/bin/sh
# ksm.harness=profile: where ksmd's CPU goes, sampled by perf in the guest.
# "make profile" (scripts/profile.sh) runs it; the initramfs then holds
# the host's perf and its libraries (build-initramfs.sh with PERF=1).
#
# Parameters (kernel command line): ksm.profile_workload=NAME, one of
# nodups, alldups, mix (the "make bench" workloads of those names) or
# threads_alldups2 (all dups with two ksmd threads); ksm.timeout=SECS
# bounds every wait of the workload.
#
# perf samples every CPU at 2 kHz (cpu-clock: TCG has no hardware
# counters) with kernel call chains for as long as the workload runs; the
# report keeps only the samples of ksmd threads.  Results on the results
# channel (build/logs/<variant>-profile.results):
#
#   PROFILE self <percent> <symbol>       time in the function itself
#   PROFILE total <percent> <symbol>      time in it and what it calls
#   PROFILE samples <n>                   ksmd samples in all
#   PROFILE hot <n> <symbol+offset>       samples of one instruction
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
threads_alldups2) set -- alldups -p 4 -m 128 -k ksmd_threads=2 $SCAN ;;
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

comms=$($PERF report -i $DATA --stdio --no-children --sort comm -g none 2>/dev/null |
	awk '$1 ~ /%$/ && $2 ~ /^ksmd/ { printf "%s%s", sep, $2; sep = "," }')
if [ -z "$comms" ]; then
	mark "PROFILE-ERROR no ksmd samples"
	exit 1
fi
mark "PROFILE comms $comms"
mark "PROFILE samples $($PERF report -i $DATA --stdio --comms "$comms" \
	--no-children --sort comm -g none --show-nr-samples 2>/dev/null |
	awk '$1 ~ /%$/ { n += $2 } END { print n + 0 }')"
# report MODE: one line per symbol above 0.5% of ksmd's samples.
report() {
	$PERF report -i $DATA --stdio --comms "$comms" --sort sym -g none \
		--percentage relative --percent-limit 0.5 "--$1" 2>/dev/null |
		awk -v kind="$2" '$1 ~ /%$/ && $0 !~ /^#/ {
			sub(/%$/, "", $1)
			# --children prints two columns: total, then self
			p = $1
			sym = $NF
			print "PROFILE " kind " " p " " sym
		}' | while IFS= read -r line; do mark "$line"; done
}
report no-children self
report children total
# The 30 hottest instructions, as symbol+offset (objdump -d of the
# kernel's vmlinux finds them; KASLR moves addresses, not offsets).
$PERF script -i $DATA --comms "$comms" -F ip,sym,symoff -G 2>/dev/null |
	awk 'NF >= 2 { n[$2]++ } END { for (s in n) print n[s], s }' |
	sort -rn | head -n 30 |
	while read -r n s; do mark "PROFILE hot $n $s"; done
mark "PROFILE-DONE"
