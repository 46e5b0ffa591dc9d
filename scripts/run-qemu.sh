#!/bin/bash
# Boot a kernel variant with the harness initramfs under QEMU.
#
#   run-qemu.sh VARIANT MODE
#
# MODE is passed to the guest as ksm.harness=MODE (check, boot, shell, demo,
# bench, or any scripts/guest/MODE.sh; demo also gets a read-only 9p share
# of the host root, tag hostroot).  Console log:
# build/logs/<variant>-<mode>.log (kept); results channel (2nd serial port):
# build/logs/<variant>-<mode>.results.
#
# Environment:
#   ACCEL=auto|kvm|tcg   accelerator (auto: probe KVM for a few seconds,
#                        cache the verdict, else TCG)
#   GUEST_TIMEOUT=SECS   whole guest run (default 3600)
#   TEST_TIMEOUT=SECS    per test binary run in the guest (default 600)
#   RETRY=N              retries of a failed upstream ksm_tests mode (default 2)
#   ONLY=PAT[,PAT]       test filter (see README)
#   KERNEL=, INITRD=     override the bzImage / initramfs
#   APPEND="..."         extra kernel command line
#   V=1                  stream the whole console (default: a filtered view)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VARIANT=${1:?usage: $0 VARIANT MODE}
MODE=${2:?usage: $0 VARIANT MODE}
is_ours "$VARIANT" || true
# One run per log file at a time (another "make check" would clobber it).
ARGS_FOR_LOCK="$VARIANT $MODE"
lock "run-$VARIANT-$MODE"

KERNEL=${KERNEL:-$BUILD/$VARIANT/bzImage}
INITRD=${INITRD:-$BUILD/initramfs-$VARIANT.cpio.gz}
[[ -f $KERNEL ]] || die "no kernel at $KERNEL (run: make kernel for $VARIANT)"
[[ -f $INITRD ]] || die "no initramfs at $INITRD (run: make initramfs)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (package qemu-system-x86)"

LOG=$LOGS/$VARIANT-$MODE.log
RESULTS=$LOGS/$VARIANT-$MODE.results
INTERACTIVE=0
[[ $MODE == shell ]] && INTERACTIVE=1
# A hung test is the guest's own watchdog's to catch (TEST_TIMEOUT per
# binary, then the run is aborted); this bound is for a guest that stopped
# altogether, so it leaves room for a slow host: with stress-ng --cpu 2
# and another guest on the same two cores, make check's guest needed more
# than 1800 s.  CI's 90 minutes still hold a build and a full bound.
GUEST_TIMEOUT=${GUEST_TIMEOUT:-3600}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}

# --- accelerator -------------------------------------------------------------
# A KVM guest can hang in firmware (nested paravirtual KVM): probe with a
# short boot of this kernel, look for early kernel output, never wait long.
probe_kvm() {
	[[ -w /dev/kvm ]] || return 1
	local plog=$BUILD/kvm-probe.log pid i
	rm -f "$plog"
	qemu-system-x86_64 -accel kvm -cpu host -smp 1 -m 256 -kernel "$KERNEL" \
		-append "console=ttyS0 earlyprintk=ttyS0 panic=-1" -display none \
		-serial "file:$plog" -monitor none -no-reboot </dev/null >/dev/null 2>&1 &
	pid=$!
	for ((i = 0; i < ${KVM_PROBE_SECS:-8} * 4; i++)); do
		sleep 0.25
		if grep -q "Linux version" "$plog" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
	done
	kill "$pid" 2>/dev/null || true
	sleep 0.5
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	return 1
}

choose_accel() {
	case ${ACCEL:-auto} in
	kvm | tcg)
		echo "${ACCEL}"
		return
		;;
	auto) ;;
	*) die "ACCEL must be auto, kvm or tcg (got '$ACCEL')" ;;
	esac
	local cache=$BUILD/accel.cache key
	key="$(cat /proc/sys/kernel/random/boot_id 2>/dev/null) $(qemu-system-x86_64 --version | head -n1)"
	if [[ -f $cache ]] && [[ $(head -n1 "$cache") == "$key" ]]; then
		sed -n 2p "$cache"
		return
	fi
	local verdict=tcg
	probe_kvm && verdict=kvm
	printf '%s\n%s\n' "$key" "$verdict" >"$cache"
	echo "$verdict"
}

ACCEL_USED=$(choose_accel)
if [[ $ACCEL_USED == kvm ]]; then
	ACCEL_ARGS=(-accel kvm -cpu host)
	info "accelerator: KVM"
else
	ACCEL_ARGS=(-accel tcg,thread=multi)
	info "accelerator: TCG (-accel tcg,thread=multi; KVM ${ACCEL:-auto}: not used)"
fi

# --- kernel command line -----------------------------------------------------
[[ ${RETRY:-2} =~ ^[0-9]+$ ]] || die "RETRY must be a number (got '$RETRY')"
CMDLINE="console=ttyS0 panic=-1 printk.time=1 ksm.harness=$MODE ksm.timeout=$TEST_TIMEOUT ksm.retry=${RETRY:-2}"
if [[ -n ${ONLY:-} ]]; then
	[[ $ONLY =~ ^[][A-Za-z0-9_.:*?,-]+$ ]] ||
		die "ONLY may only contain letters, digits and _ . : * ? , - [ ] (got '$ONLY')"
	CMDLINE+=" ksm.only=$ONLY"
	# KUnit: "kunit:SUITE[.TEST]" patterns become kunit.filter_glob; without
	# any, KUnit is switched off for a filtered run.
	kglob=$(tr ',' '\n' <<<"$ONLY" | sed -n 's/^kunit://p' | paste -sd, -)
	if [[ -n $kglob ]]; then
		CMDLINE+=" kunit.filter_glob=$kglob"
	else
		CMDLINE+=" kunit.enable=0"
	fi
fi
# The demo starts QEMU guests inside the guest: the host's qemu and its
# libraries come from a read-only 9p share of the host root (mounted at
# /host), the guests boot this same kernel and initramfs, read from there.
VIRTFS=()
if [[ $MODE == demo ]]; then
	for f in "$KERNEL" "$INITRD"; do
		[[ $(readlink -f "$f") =~ ^/[A-Za-z0-9_./+-]+$ ]] ||
			die "demo: the path of $f must not contain spaces or other special characters"
	done
	CMDLINE+=" ksm.demo_kernel=$(readlink -f "$KERNEL") ksm.demo_initrd=$(readlink -f "$INITRD")"
	VIRTFS=(-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap)
fi
[[ -n ${APPEND:-} ]] && CMDLINE+=" $APPEND"

# merge=off: the guest's RAM is not offered to the host's own KSM, which
# would otherwise merge guest pages behind the guest's back (a host ksmd
# at full speed made ksm_domain_test's store-timing oracle see merges the
# guest kernel never made).
QEMU=(qemu-system-x86_64 "${ACCEL_ARGS[@]}"
	-smp 2,sockets=2,cores=1,threads=1 -m 4G
	-object memory-backend-ram,id=m0,size=2G,merge=off
	-object memory-backend-ram,id=m1,size=2G,merge=off
	-numa node,nodeid=0,cpus=0,memdev=m0
	-numa node,nodeid=1,cpus=1,memdev=m1
	-kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE"
	"${VIRTFS[@]}" -nographic -no-reboot)

rm -f "$LOG" "$RESULTS"
: >"$RESULTS"
info "booting $VARIANT ($(cat "$BUILD/$VARIANT/version" 2>/dev/null || echo '?')), mode $MODE, timeout ${GUEST_TIMEOUT}s; console: build/logs/$(basename "$LOG")"
start=$SECONDS
set +e
if [[ $INTERACTIVE == 1 ]]; then
	# Interactive: console (and the QEMU monitor, Ctrl-A c) on the terminal.
	timeout --foreground -k 5 "$GUEST_TIMEOUT" "${QEMU[@]}" \
		-serial mon:stdio -serial "file:$RESULTS" 2>&1 | tee "$LOG"
	rc=${PIPESTATUS[0]}
else
	# "check" shows a filtered console unless V=1; other modes show it all.
	if [[ ${V:-0} == 1 || $MODE != check ]]; then
		filter=(cat)
	else
		filter=(grep --line-buffered -aE
			'KSMTEST|harness:|Linux version|# Subtest: ksm|Kernel panic|BUG:|WARNING:|Oops|KASAN|KFENCE|Call Trace|circular locking|lock state|RCU usage|blocked for more than|stall')
	fi
	timeout -k 5 "$GUEST_TIMEOUT" "${QEMU[@]}" -monitor none \
		-serial stdio -serial "file:$RESULTS" </dev/null 2>&1 |
		tee "$LOG" | tr -d '\r' | sed -u 's/\x1b\[[0-9;?]*[A-Za-z]//g' | { "${filter[@]}" || true; }
	rc=${PIPESTATUS[0]}
fi
set -e
ELAPSED=$((SECONDS - start))
echo "$ACCEL_USED $ELAPSED" >"$LOGS/$VARIANT-$MODE.time"

STATUS=ok
killer=$(grep -ao 'terminating on signal [0-9]* from pid [0-9]*[^)]*)' "$LOG" | tail -n1 || true)
if [[ $rc == 124 || $rc == 137 ]]; then
	STATUS=timeout
	echo "ERROR: guest did not finish within ${GUEST_TIMEOUT}s (killed; console log: build/logs/$(basename "$LOG"))"
elif [[ -n $killer ]]; then
	STATUS=killed
	echo "ERROR: qemu was killed from outside the harness: $killer (console log: build/logs/$(basename "$LOG"))"
elif [[ $rc != 0 ]]; then
	STATUS=exit:$rc
	echo "ERROR: qemu exited with status $rc (console log: build/logs/$(basename "$LOG"))"
fi
info "guest ran ${ELAPSED}s ($ACCEL_USED)"

# Which data-race reports are ours (build-kernel.sh lists mm/ksm/'s functions).
SYMS=()
[[ -f $BUILD/$VARIANT/ksm-symbols ]] && SYMS=(--ours-symbols "$BUILD/$VARIANT/ksm-symbols")
if [[ $MODE == check || $MODE == stress || $MODE == fuzz ]]; then
	exec python3 "$REPO/scripts/report.py" check --log "$LOG" --results "$RESULTS" "${SYMS[@]}" \
		--known "$REPO/tests/known-failures.txt" --guest-status "$STATUS" --only "${ONLY:-}"
fi
python3 "$REPO/scripts/report.py" splat "${SYMS[@]}" "$LOG" || die "kernel splat on the console ($VARIANT, mode $MODE)"
[[ $STATUS == ok ]] || exit 1
if [[ $MODE == boot ]] && ! grep -aq KSMBOOT-OK "$LOG"; then
	die "guest did not reach userspace (KSMBOOT-OK missing; console log: build/logs/$(basename "$LOG"))"
fi
# The guest's /init reports the mode script's exit status.
if [[ $MODE != shell ]]; then
	mrc=$(tr -d '\r' <"$LOG" | sed -n "s/.*harness: mode $MODE finished (exit \([0-9]*\)).*/\1/p" | tail -n1)
	[[ -n $mrc ]] || die "guest mode $MODE did not finish (console log: build/logs/$(basename "$LOG"))"
	# The demo's summary and its plot of memory saved over time (also
	# after a failed demo: it shows what did merge).
	if [[ $MODE == demo ]]; then
		python3 "$REPO/scripts/demo-report.py" "$RESULTS" "$BUILD/demo" ||
			die "demo: no plot of the demo (results channel: build/logs/$(basename "$RESULTS"))"
	fi
	[[ $mrc == 0 ]] || die "guest mode $MODE failed (exit $mrc; console log: build/logs/$(basename "$LOG"))"
fi
exit 0
