# Build the statically linked guest test binaries.  Invoked by
# scripts/build-tests.sh; not meant to be run by hand.
#
#   PRISTINE  pristine kernel tree (upstream selftest sources, kselftest headers)
#   UAPI      installed uapi headers for upstream tests (.../include)
#   OURS_UAPI installed uapi headers for our tests
#   OUT       output directory
#   OURS_SRC  our selftest sources (repo tools/testing/selftests/mm/ksm_*_test.c)
#   TOOLS_SRC our userspace tools (repo tools/mm/ksm_*.c), e.g. for the demo

SELFTESTS := $(PRISTINE)/tools/testing/selftests
MMDIR     := $(SELFTESTS)/mm
CC        ?= gcc

# Same flags as upstream's tools/testing/selftests/mm/Makefile, plus -static.
BASE_CFLAGS = -Wall -O2 -U_FORTIFY_SOURCE -I $(PRISTINE) \
	-isystem $(PRISTINE)/tools/include/uapi
CFLAGS_UP   = $(BASE_CFLAGS) -isystem $(UAPI)
CFLAGS_OURS = $(BASE_CFLAGS) -isystem $(OURS_UAPI) -I $(MMDIR) -I $(SELFTESTS)
LDFLAGS     = -static
LDLIBS      = -lrt -lpthread -lm

UP_BINS   := $(OUT)/upstream/ksm_tests $(OUT)/upstream/ksm_functional_tests
OURS_BINS := $(patsubst %.c,$(OUT)/ours/%,$(notdir $(OURS_SRC)))
TOOLS_BINS := $(patsubst %.c,$(OUT)/tools/%,$(notdir $(TOOLS_SRC)))

.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules
.PHONY: all
all: $(UP_BINS) $(OURS_BINS) $(TOOLS_BINS)

# Upstream helpers, built once per uapi flavour.
$(OUT)/upstream/%.o: $(MMDIR)/%.c $(MMDIR)/vm_util.h $(MMDIR)/thp_settings.h $(UAPI)/.stamp
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_UP) -c -o $@ $<

$(OUT)/upstream/libmmutil.a: $(OUT)/upstream/vm_util.o $(OUT)/upstream/thp_settings.o
	rm -f $@ && ar rcs $@ $^

$(OUT)/upstream/ksm_tests: $(MMDIR)/ksm_tests.c $(OUT)/upstream/libmmutil.a
	$(CC) $(CFLAGS_UP) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lnuma

$(OUT)/upstream/ksm_functional_tests: $(MMDIR)/ksm_functional_tests.c $(OUT)/upstream/libmmutil.a
	$(CC) $(CFLAGS_UP) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/ours/%.o: $(MMDIR)/%.c $(OURS_UAPI)/.stamp
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_OURS) -c -o $@ $<

$(OUT)/ours/libmmutil.a: $(OUT)/ours/vm_util.o $(OUT)/ours/thp_settings.o
	rm -f $@ && ar rcs $@ $^

# Our selftests' shared headers (ksm_test_util.h, ksm_test_harness.h):
# a change to one rebuilds every selftest.
OURS_HDRS := $(wildcard $(sort $(dir $(OURS_SRC)))ksm_*.h)

# Each of our selftests: one binary, linked with the upstream helpers
# (pulled from the archive only when referenced) and libnuma.
define ours_rule
$(OUT)/ours/$(basename $(notdir $(1))): $(1) $(OURS_HDRS) $(OUT)/ours/libmmutil.a $(OURS_UAPI)/.stamp
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_OURS) $$(LDFLAGS) -o $$@ $(1) $(OUT)/ours/libmmutil.a $$(LDLIBS) -lnuma
endef
$(foreach s,$(OURS_SRC),$(eval $(call ours_rule,$(s))))

# Our tools (tools/mm/ksm_*.c): plain static programs.
define tools_rule
$(OUT)/tools/$(basename $(notdir $(1))): $(1) $(OURS_UAPI)/.stamp
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) -isystem $$(OURS_UAPI) $$(LDFLAGS) -o $$@ $(1) $$(LDLIBS)
endef
$(foreach s,$(TOOLS_SRC),$(eval $(call tools_rule,$(s))))
