#!/bin/bash
# "make bench": our KSM against stock 6.12 KSM, side by side.
#
# Builds (or reuses) the lean stock and ours kernels and their initramfs,
# then boots them one after the other in the same QEMU configuration,
# REPS times, alternating (stock, ours, stock, ours, ...) so that a change
# in host load hits both alike.  Each boot runs scripts/guest/bench.sh.
# scripts/bench-report.py turns the results into the table (stdout),
# build/bench/results.csv and build/bench/bench.svg.
#
# Environment:
#   REPS=N               repetitions per kernel (default 3; quick: 1)
#   BENCH_QUICK=1        small sizes, for trying things out
#   BENCH_ONLY=a,b       only these workloads (nodups, alldups, mix, scale,
#                        threads, ksm_tests (or one of ksm_tests_P, _H, _D,
#                        _C), corunner, mappers, vmas, thp)
#   KSM_IMAGE=, STOCK_IMAGE=   use these bzImages instead of building
#   TEST_TIMEOUT=SECS    bound of every wait inside a workload (default 900)
#   GUEST_TIMEOUT=SECS   one guest boot (default 3600; quick: 900)
#   ACCEL, APPEND, V     as for the other targets (scripts/run-qemu.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
	REPS=${REPS:-1}
	GUEST_TIMEOUT=${GUEST_TIMEOUT:-900}
else
	REPS=${REPS:-3}
	GUEST_TIMEOUT=${GUEST_TIMEOUT:-3600}
fi
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive number (got '$REPS')"
ONLY=${BENCH_ONLY:-}
[[ $ONLY =~ ^[A-Za-z0-9_,]*$ ]] || die "BENCH_ONLY may only contain letters, digits, _ and , (got '$ONLY')"
OUT=$BUILD/bench
VARIANTS=(stock ksm)

# Kernels: one build at a time (build-kernel.sh also locks its object dir).
for v in "${VARIANTS[@]}"; do
	img_var=${v^^}_IMAGE
	if [[ -n ${!img_var:-} ]]; then
		[[ -f ${!img_var} ]] || die "$img_var=${!img_var}: no such file"
		info "$v: using ${!img_var} ($img_var)"
	else
		"$REPO/scripts/build-kernel.sh" "$v"
	fi
done
for v in "${VARIANTS[@]}"; do
	"$REPO/scripts/build-initramfs.sh" "$v"
done

rm -rf "$OUT"
mkdir -p "$OUT"
GUEST_APPEND="slab_nomerge ksm.bench_quick=$QUICK${ONLY:+ ksm.bench_only=$ONLY} ${APPEND:-}"
info "bench: $REPS repetition(s) per kernel, $([[ $QUICK == 1 ]] && echo quick || echo full) sizes; results in build/bench/"
start=$SECONDS
for ((rep = 1; rep <= REPS; rep++)); do
	for v in "${VARIANTS[@]}"; do
		img_var=${v^^}_IMAGE
		kernel=${!img_var:-$BUILD/$v/bzImage}
		info "bench: repetition $rep/$REPS, $v"
		rc=0
		KERNEL=$kernel APPEND="$GUEST_APPEND" GUEST_TIMEOUT=$GUEST_TIMEOUT \
			TEST_TIMEOUT=${TEST_TIMEOUT:-900} \
			"$REPO/scripts/run-qemu.sh" "$v" bench || rc=$?
		cp "$LOGS/$v-bench.results" "$OUT/$v-rep$rep.results"
		cp "$LOGS/$v-bench.log" "$OUT/$v-rep$rep.log"
		cp "$LOGS/$v-bench.time" "$OUT/$v-rep$rep.time" 2>/dev/null || true
		if [[ $rc != 0 ]]; then
			echo "WARNING: bench run $v repetition $rep failed (rc=$rc); its figures are partial (console: build/bench/$v-rep$rep.log)"
		fi
	done
done
info "bench: guests ran $((SECONDS - start))s"
exec python3 "$REPO/scripts/bench-report.py" "$OUT"
