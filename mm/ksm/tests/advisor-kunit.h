/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for the scan-time advisor's arithmetic. Included at the end
 * of advisor.c.
 */
#ifdef CONFIG_KSM_KUNIT_TEST
#ifndef _KSM_ADVISOR_KUNIT_H
#define _KSM_ADVISOR_KUNIT_H

#include <kunit/test.h>

/* A pass twice as long as the target asks for twice the pages. */
static void ksm_advisor_test_for_time(struct kunit *test)
{
	struct ksm_advisor_knobs saved = ksm_advisor;

	ksm_advisor.target_scan_time = 200;
	KUNIT_EXPECT_EQ(test, ksm_advisor_for_time(100, 400 * MSEC_PER_SEC),
			200UL);
	KUNIT_EXPECT_EQ(test, ksm_advisor_for_time(100, 100 * MSEC_PER_SEC),
			50UL);
	KUNIT_EXPECT_EQ(test, ksm_advisor_for_time(1000, 200 * MSEC_PER_SEC),
			1000UL);
	ksm_advisor = saved;
}

/* The CPU cap scales pages by max_cpu over the measured percentage. */
static void ksm_advisor_test_cpu_cap(struct kunit *test)
{
	struct ksm_advisor_knobs saved = ksm_advisor;

	ksm_advisor.max_cpu = 70;
	KUNIT_EXPECT_EQ(test, ksm_advisor_cpu_cap(1000, 35), 2000UL);
	KUNIT_EXPECT_EQ(test, ksm_advisor_cpu_cap(1000, 70), 1000UL);
	/* A pass that used no measurable CPU counts as 1%. */
	KUNIT_EXPECT_EQ(test, ksm_advisor_cpu_cap(10, 0), 700UL);
	ksm_advisor = saved;
}

/* Switching mode resets pages_to_scan; re-selecting a mode does not. */
static void ksm_advisor_test_mode_switch(struct kunit *test)
{
	struct ksm_advisor_knobs saved = ksm_advisor;
	unsigned int pages = ksm_ctx.knobs.pages_to_scan;

	ksm_advisor.mode = KSM_ADVISOR_NONE;
	ksm_advisor.min_pages = 777;
	ksm_advisor_set_mode(KSM_ADVISOR_SCAN_TIME);
	KUNIT_EXPECT_EQ(test, ksm_ctx.knobs.pages_to_scan, 777U);
	ksm_ctx.knobs.pages_to_scan = 5000;
	ksm_advisor_set_mode(KSM_ADVISOR_SCAN_TIME);
	KUNIT_EXPECT_EQ(test, ksm_ctx.knobs.pages_to_scan, 5000U);
	ksm_advisor_set_mode(KSM_ADVISOR_NONE);
	KUNIT_EXPECT_EQ(test, ksm_ctx.knobs.pages_to_scan,
			KSM_DEFAULT_PAGES_TO_SCAN);

	ksm_advisor = saved;
	ksm_ctx.knobs.pages_to_scan = pages;
}

static struct kunit_case ksm_advisor_cases[] = {
	KUNIT_CASE(ksm_advisor_test_for_time),
	KUNIT_CASE(ksm_advisor_test_cpu_cap),
	KUNIT_CASE(ksm_advisor_test_mode_switch),
	{}
};

static struct kunit_suite ksm_advisor_suite = {
	.name = "ksm_advisor",
	.test_cases = ksm_advisor_cases,
};

kunit_test_suite(ksm_advisor_suite);

#endif /* _KSM_ADVISOR_KUNIT_H */
#endif /* CONFIG_KSM_KUNIT_TEST */
