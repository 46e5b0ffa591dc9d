/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for the scanner's per-page bookkeeping: change detection
 * and smart-scan skipping. Included at the end of scan.c.
 */
#ifdef CONFIG_KSM_KUNIT_TEST
#ifndef _KSM_SCAN_KUNIT_H
#define _KSM_SCAN_KUNIT_H

#include <kunit/test.h>

/* New and unchanged pages are settled; a page that changed is not. */
static void ksm_scan_test_settled(struct kunit *test)
{
	struct ksm_rmap_item item = {};

	KUNIT_EXPECT_TRUE(test, ksm_scan_settled(&item, 42));
	KUNIT_EXPECT_TRUE(test, item.hashed);
	KUNIT_EXPECT_EQ(test, item.hash, 42ULL);
	KUNIT_EXPECT_TRUE(test, ksm_scan_settled(&item, 42));
	KUNIT_EXPECT_FALSE(test, ksm_scan_settled(&item, 43));
	KUNIT_EXPECT_EQ(test, item.hash, 43ULL);
	KUNIT_EXPECT_TRUE(test, ksm_scan_settled(&item, 43));
}

/* Skips grow with fruitless visits and saturate; a change resets them. */
static void ksm_scan_test_skip_growth(struct kunit *test)
{
	static const unsigned int want[] = { 1, 1, 2, 2, 2, 4, 4, 4, 8, 8 };
	struct ksm_rmap_item item = {};
	int i;

	for (i = 0; i < ARRAY_SIZE(want); i++) {
		ksm_scan_note_fruitless(&item);
		KUNIT_EXPECT_EQ_MSG(test, (unsigned int)item.skip_left, want[i],
				    "after %d fruitless visits", i + 1);
	}
	for (i = 0; i < 40; i++)
		ksm_scan_note_fruitless(&item);
	KUNIT_EXPECT_EQ(test, (unsigned int)item.skip_age, KSM_SKIP_AGE_MAX);
	KUNIT_EXPECT_EQ(test, (unsigned int)item.skip_left, 8U);

	item.hashed = true;
	item.hash = 1;
	KUNIT_EXPECT_FALSE(test, ksm_scan_settled(&item, 2));
	KUNIT_EXPECT_EQ(test, (unsigned int)item.skip_age, 0U);
	KUNIT_EXPECT_EQ(test, (unsigned int)item.skip_left, 0U);
}

/* Skipping consumes the budget and counts, unless smart_scan is off. */
static void ksm_scan_test_skip(struct kunit *test)
{
	unsigned long skipped = ksm_ctx.stats.pages_skipped;
	bool smart = ksm_ctx.knobs.smart_scan;
	struct ksm_rmap_item item = { .skip_left = 2 };

	ksm_ctx.knobs.smart_scan = false;
	KUNIT_EXPECT_FALSE(test, ksm_scan_skip(&item));
	KUNIT_EXPECT_EQ(test, (unsigned int)item.skip_left, 2U);

	/* The item was never hashed, so no tree is touched. */
	ksm_ctx.knobs.smart_scan = true;
	mutex_lock(&ksm_ctx.lock);
	KUNIT_EXPECT_TRUE(test, ksm_scan_skip(&item));
	KUNIT_EXPECT_TRUE(test, ksm_scan_skip(&item));
	KUNIT_EXPECT_FALSE(test, ksm_scan_skip(&item));
	mutex_unlock(&ksm_ctx.lock);
	KUNIT_EXPECT_EQ(test, (int)item.state, KSM_ITEM_NEW);
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.pages_skipped, skipped + 2);

	ksm_ctx.stats.pages_skipped = skipped;
	ksm_ctx.knobs.smart_scan = smart;
}

static struct kunit_case ksm_scan_cases[] = {
	KUNIT_CASE(ksm_scan_test_settled),
	KUNIT_CASE(ksm_scan_test_skip_growth),
	KUNIT_CASE(ksm_scan_test_skip),
	{}
};

static struct kunit_suite ksm_scan_suite = {
	.name = "ksm_scan",
	.test_cases = ksm_scan_cases,
};

kunit_test_suite(ksm_scan_suite);

#endif /* _KSM_SCAN_KUNIT_H */
#endif /* CONFIG_KSM_KUNIT_TEST */
