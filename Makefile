# KSM harness: build, boot and test our KSM for Linux 6.12 (and stock KSM
# for comparison).  See README, section "Harness".
#
#   make kernel [STOCK=1] [DEBUG=1|KCSAN=1]   build a kernel variant
#   make initramfs [STOCK=1] [DEBUG=1|KCSAN=1]
#   make check [STOCK=1] [LEAN=1|KCSAN=1] [ONLY=...] [TEST_TIMEOUT=s] [GUEST_TIMEOUT=s]
#              [PATCH_TEST=1]         (1: make patch-test instead of patch)
#   make boot [STOCK=1] [DEBUG=1]     boot, print basics, power off
#   make shell [STOCK=1] [DEBUG=1]    interactive busybox shell in the guest
#   make demo [STOCK=1] [DEBUG=1]     the KSM demo (scripts/guest/demo.sh)
#   make lint                         checkpatch, kernel-doc, W=1, sparse
#   make htmldocs                     render our docs with the kernel's Sphinx
#   make stress [DURATION=30m] [PHASES=a,b] [SCALE=0] [STOCK=1] [LEAN=1|KCSAN=1]
#                                     long ksm_stress_test on the debug kernel
#   make fuzz [DURATION=30m] [SEED=n] [PROCS=n] [STOCK=1] [LEAN=1]
#                                     ksm_fuzz_test on the debug kernel
#   make run MODE=<mode>              boot with ksm.harness=<mode>
#                                     (any scripts/guest/<mode>.sh)
#   make bench [REPS=3] [BENCH_QUICK=1] [BENCH_ONLY=a,b]
#                                     ours vs stock KSM, side by side
#   make profile [WORKLOAD=nodups|alldups|mix|pairs|threads_nodups2|threads_alldups2|threads_pairs2]
#                [STOCK=1]            where ksmd's CPU goes (perf in the guest)
#   make patch                        git format-patch series against 6.12
#                                     in build/patch/, checkpatch'ed
#   make patch-test [BISECT=0] [KEEP=1]
#                                     git am the series onto a fresh 6.12
#                                     extract, build every step (lean)
#   make deps | clean | distclean

SHELL := /bin/bash
.DEFAULT_GOAL := help
S := scripts

# Variant selection.
ifeq ($(STOCK),1)
BASE := stock
else
BASE := ksm
endif
ifeq ($(DEBUG),1)
VARIANT := $(BASE)-debug
else
VARIANT := $(BASE)
endif
# "make check" boots the debug variant unless LEAN=1.
ifeq ($(LEAN),1)
CHECK_VARIANT := $(BASE)
else
CHECK_VARIANT := $(BASE)-debug
endif
# KCSAN=1: the data-race detector build instead (it excludes KASAN).
ifeq ($(KCSAN),1)
VARIANT := $(BASE)-kcsan
CHECK_VARIANT := $(BASE)-kcsan
endif

# Passed through to the scripts.
export ONLY TEST_TIMEOUT GUEST_TIMEOUT RETRY ACCEL V APPEND OURTESTS
export REPS BENCH_QUICK BENCH_ONLY KSM_IMAGE STOCK_IMAGE
export BISECT KEEP

.PHONY: help deps source kernel initramfs tests check lint htmldocs patch patch-test stress fuzz boot shell demo run bench profile clean distclean

help:
	@sed -n '4,28s/^# \{0,1\}//p' Makefile

deps:
	@$(S)/install-deps.sh

source: deps
	@$(S)/prepare-source.sh pristine
	@if [ "$(BASE)" = ksm ]; then $(S)/prepare-source.sh overlay; fi

kernel: deps
	@$(S)/build-kernel.sh $(VARIANT)

initramfs: deps
	@$(S)/build-initramfs.sh $(VARIANT)

tests: deps
	@$(S)/build-tests.sh $(if $(filter ksm,$(BASE)),--ours)

# (KCSAN=1 skips lint, htmldocs and patch: they do not depend on the
# variant, and plain "make check" runs them.)
check: deps
	@start=$$SECONDS; \
	$(S)/build-kernel.sh $(CHECK_VARIANT) && \
	$(if $(filter ksm,$(BASE)),$(if $(filter 1,$(KCSAN)),,$(S)/lint.sh $(CHECK_VARIANT) && $(S)/htmldocs.sh && \
		$(if $(filter 1,$(PATCH_TEST)),$(S)/patch-test.sh,$(S)/make-patch.sh) &&)) \
	$(S)/build-initramfs.sh $(CHECK_VARIANT) && \
	echo "==> build steps took $$((SECONDS - start))s" && \
	$(S)/run-qemu.sh $(CHECK_VARIANT) check

# checkpatch --strict, kernel-doc, W=1 and sparse on our code.
lint: deps
	@$(S)/lint.sh $(CHECK_VARIANT)

# Our two documents through the kernel's Sphinx and kernel-doc setup; any
# warning in them fails (about 15 s, so "make check" runs it too).
htmldocs: deps
	@$(S)/htmldocs.sh

# Our KSM as a git format-patch series against pristine 6.12, checkpatch
# --strict on every patch (build/patch/; README, "make patch").
patch: deps
	@$(S)/make-patch.sh

# The series applied with git am to a fresh extract of the tarball and
# built with the lean configuration after every patch; PASS or FAIL.
patch-test: deps
	@$(S)/patch-test.sh

# DURATION is seconds or a number with s, m or h; the guest gets twice
# that plus 15 minutes before the host gives up on it.
stress: deps
	@secs=$$($(S)/duration-secs.sh "$(or $(DURATION),10m)") && \
	$(S)/build-kernel.sh $(CHECK_VARIANT) && \
	$(S)/build-initramfs.sh $(CHECK_VARIANT) && \
	APPEND="$(APPEND) ksm.duration=$$secs$(if $(PHASES), ksm.phases=$(PHASES))$(if $(SCALE), ksm.scale=$(SCALE))" \
	GUEST_TIMEOUT=$${GUEST_TIMEOUT:-$$((secs * 2 + 900 + 3600))} \
	$(S)/run-qemu.sh $(CHECK_VARIANT) stress

# The guest gets the duration plus 10 minutes to finish, the host 15 more.
fuzz: deps
	@secs=$$($(S)/duration-secs.sh "$(or $(DURATION),30m)") && \
	$(S)/build-kernel.sh $(CHECK_VARIANT) && \
	$(S)/build-initramfs.sh $(CHECK_VARIANT) && \
	APPEND="$(APPEND) ksm.duration=$$secs$(if $(SEED), ksm.seed=$(SEED))$(if $(PROCS), ksm.procs=$(PROCS))" \
	GUEST_TIMEOUT=$${GUEST_TIMEOUT:-$$((secs + 600 + 900))} \
	$(S)/run-qemu.sh $(CHECK_VARIANT) fuzz

boot: deps
	@$(S)/build-kernel.sh $(VARIANT) && \
	$(S)/build-initramfs.sh $(VARIANT) && \
	$(S)/run-qemu.sh $(VARIANT) boot

shell: deps
	@$(S)/build-kernel.sh $(VARIANT) && \
	$(S)/build-initramfs.sh $(VARIANT) && \
	$(S)/run-qemu.sh $(VARIANT) shell

# The guest bounds each of its waits; 10 minutes is the backstop.
demo: deps
	@$(S)/build-kernel.sh $(VARIANT) && \
	$(S)/build-initramfs.sh $(VARIANT) && \
	GUEST_TIMEOUT=$${GUEST_TIMEOUT:-600} $(S)/run-qemu.sh $(VARIANT) demo

run: deps
	@test -n "$(MODE)" || { echo "ERROR: make run needs MODE=<mode> (scripts/guest/<mode>.sh)" >&2; exit 1; }
	@test -f scripts/guest/$(MODE).sh || { echo "ERROR: no guest script scripts/guest/$(MODE).sh" >&2; exit 1; }
	@test "$(MODE)" != lib || { echo "ERROR: scripts/guest/lib.sh holds helpers, it is not a mode" >&2; exit 1; }
	@$(S)/build-kernel.sh $(VARIANT) && \
	$(S)/build-initramfs.sh $(VARIANT) && \
	$(S)/run-qemu.sh $(VARIANT) $(MODE)

# Lean stock and ours kernels, booted one after the other REPS times; the
# table, build/bench/results.csv and build/bench/bench.svg (README,
# "Benchmarks").  Reports missed targets, does not fail on them.
bench: deps
	@$(S)/bench.sh

# One bench workload under perf on the lean kernel; the profile of ksmd
# threads in build/logs/<variant>-profile.results (scripts/guest/profile.sh).
profile: deps
	@$(S)/build-kernel.sh $(VARIANT) && \
	PERF=1 $(S)/build-initramfs.sh $(VARIANT) && { \
	APPEND="$(APPEND) ksm.profile_workload=$(or $(WORKLOAD),nodups)" \
	$(S)/run-qemu.sh $(VARIANT) profile; rc=$$?; \
	grep -h '^PROFILE\|^BENCH' build/logs/$(VARIANT)-profile.results; exit $$rc; }

clean:
	rm -rf build/obj build/ksm build/ksm-debug build/stock build/stock-debug \
		build/initramfs build/initramfs-*.cpio.gz* build/bench build/tests build/uapi build/uapi-ksm \
		build/patch build/patch-test \
		build/src/ksm build/src/ksm.manifest* build/accel.cache build/kvm-probe.log

distclean:
	rm -rf build
