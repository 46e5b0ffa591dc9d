// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: the scan-time advisor.
 *
 * With advisor_mode "scan-time", pages_to_scan is not the administrator's
 * to set: after every full pass the advisor scales it so that the next
 * pass takes about advisor_target_scan_time seconds, without letting ksmd
 * use more than advisor_max_cpu percent of a CPU, and within
 * [advisor_min_pages_to_scan, advisor_max_pages_to_scan].
 *
 * The pass hooks run in ksmd under ksm_ctx.lock; the knobs are plain
 * words read with READ_ONCE().
 */

#include <linux/ktime.h>
#include <linux/math64.h>

#include "internal.h"
#include <trace/events/ksm.h>

/* Default pages_to_scan when the administrator is in charge. */
#define KSM_DEFAULT_PAGES_TO_SCAN	100

struct ksm_advisor_knobs ksm_advisor = {
	.mode = KSM_ADVISOR_NONE,
	.max_cpu = 70,
	.min_pages = 500,
	.max_pages = 30000,
	.target_scan_time = 200,
};

/**
 * struct ksm_advisor_pass - measurements of the pass under way
 * @start: when it started.
 * @cpu_start: CPU time of all ksmd threads then, in nanoseconds.
 */
static struct ksm_advisor_pass {
	ktime_t start;
	u64 cpu_start;
} ksm_advisor_pass;

/**
 * ksm_advisor_set_mode() - switch the advisor on or off
 * @mode: the new mode.
 *
 * Switching resets pages_to_scan: to the 6.12 default when turning the
 * advisor off, to advisor_min_pages_to_scan when turning it on.
 */
void ksm_advisor_set_mode(enum ksm_advisor_mode mode)
{
	unsigned long pages = KSM_DEFAULT_PAGES_TO_SCAN;

	if (READ_ONCE(ksm_advisor.mode) == mode)
		return;
	if (mode == KSM_ADVISOR_SCAN_TIME)
		pages = READ_ONCE(ksm_advisor.min_pages);
	WRITE_ONCE(ksm_ctx.knobs.pages_to_scan, pages);
	WRITE_ONCE(ksm_advisor.mode, mode);
}

/**
 * ksm_advisor_pass_start() - note when and at what CPU cost a pass starts
 */
void ksm_advisor_pass_start(void)
{
	ksm_advisor_pass.start = ktime_get();
	ksm_advisor_pass.cpu_start = ksm_threads_runtime();
}

/* The pages_to_scan that makes a pass of @ms ms last the target time. */
static unsigned long ksm_advisor_for_time(unsigned long pages, u64 ms)
{
	u64 target_ms = (u64)READ_ONCE(ksm_advisor.target_scan_time) *
			MSEC_PER_SEC;

	return div64_u64((u64)pages * ms, max_t(u64, target_ms, 1));
}

/* The most pages_to_scan allowed when @pages cost @cpu_pct percent. */
static unsigned long ksm_advisor_cpu_cap(unsigned long pages,
					 unsigned long cpu_pct)
{
	return pages * READ_ONCE(ksm_advisor.max_cpu) / max(cpu_pct, 1UL);
}

/**
 * ksm_advisor_pass_end() - retune pages_to_scan after a full pass
 */
void ksm_advisor_pass_end(void)
{
	unsigned long pages = READ_ONCE(ksm_ctx.knobs.pages_to_scan);
	unsigned long cpu_pct, wanted;
	u64 ms, cpu_ms;

	if (READ_ONCE(ksm_advisor.mode) != KSM_ADVISOR_SCAN_TIME)
		return;

	ms = max_t(u64, ktime_ms_delta(ktime_get(), ksm_advisor_pass.start), 1);
	cpu_ms = div_u64(ksm_threads_runtime() -
			 ksm_advisor_pass.cpu_start, NSEC_PER_MSEC);
	cpu_pct = div64_u64(cpu_ms * 100, ms);

	/* Halfway between the current value and the ideal one: no swings. */
	wanted = ksm_advisor_for_time(pages, ms);
	wanted = min(wanted, ksm_advisor_cpu_cap(pages, cpu_pct));
	wanted = (pages + wanted) / 2;
	wanted = clamp(wanted, READ_ONCE(ksm_advisor.min_pages),
		       READ_ONCE(ksm_advisor.max_pages));

	WRITE_ONCE(ksm_ctx.knobs.pages_to_scan, wanted);
	trace_ksm_advisor(div_u64(ms, MSEC_PER_SEC), wanted, cpu_pct);
}

#include "tests/advisor-kunit.h"
