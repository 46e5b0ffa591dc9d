/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for /sys/kernel/mm/ksm parsing. Only input that must be
 * refused is fed to the store handlers, so the tests change no state.
 * Included at the end of sysfs.c.
 */
#ifdef CONFIG_KSM_KUNIT_TEST
#ifndef _KSM_SYSFS_KUNIT_H
#define _KSM_SYSFS_KUNIT_H

#include <kunit/test.h>

static ssize_t ksm_test_store(struct kobj_attribute *attr, const char *buf)
{
	return attr->store(mm_kobj, attr, buf, strlen(buf));
}

/* Garbage, negative and out-of-range input: -EINVAL, value unchanged. */
static void ksm_sysfs_test_rejects(struct kunit *test)
{
	static const char * const bad_uint[] = {
		"", "abc", "-1", "1.5", "4294967296", "12x",
	};
	struct ksm_knobs before = ksm_ctx.knobs;
	int i;

	for (i = 0; i < ARRAY_SIZE(bad_uint); i++) {
		KUNIT_EXPECT_EQ(test, ksm_test_store(&pages_to_scan_knob.attr,
						     bad_uint[i]), -EINVAL);
		KUNIT_EXPECT_EQ(test, ksm_test_store(&sleep_millisecs_knob.attr,
						     bad_uint[i]), -EINVAL);
		KUNIT_EXPECT_EQ(test, ksm_test_store(&run_attr, bad_uint[i]),
				-EINVAL);
	}
	KUNIT_EXPECT_EQ(test, ksm_test_store(&run_attr, "3"), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_test_store(&max_page_sharing_attr, "1"),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_test_store(&max_page_sharing_attr, "-5"),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_test_store(&merge_across_nodes_attr, "2"),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_test_store(&use_zero_pages_knob.attr, "maybe"),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_test_store(&smart_scan_knob.attr, "2"), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_test_store(&advisor_mode_attr, "fast"),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_test_store(&advisor_target_scan_time_attr,
					     "0"), -EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_test_store(&advisor_max_cpu_attr, "-1"),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, memcmp(&before, &ksm_ctx.knobs, sizeof(before)),
			0);
}

/* The advisor owns pages_to_scan while it runs. */
static void ksm_sysfs_test_advisor_owns_pages(struct kunit *test)
{
	struct ksm_advisor_knobs saved = ksm_advisor;
	unsigned int pages = ksm_ctx.knobs.pages_to_scan;

	ksm_advisor.mode = KSM_ADVISOR_SCAN_TIME;
	KUNIT_EXPECT_EQ(test, ksm_test_store(&pages_to_scan_knob.attr, "100"),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, ksm_ctx.knobs.pages_to_scan, pages);
	ksm_advisor = saved;
}

/* advisor_mode lists both modes with the active one in brackets. */
static void ksm_sysfs_test_advisor_show(struct kunit *test)
{
	struct ksm_advisor_knobs saved = ksm_advisor;
	char *buf = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, buf);
	ksm_advisor.mode = KSM_ADVISOR_NONE;
	advisor_mode_show(mm_kobj, &advisor_mode_attr, buf);
	KUNIT_EXPECT_STREQ(test, buf, "[none] scan-time\n");
	ksm_advisor.mode = KSM_ADVISOR_SCAN_TIME;
	advisor_mode_show(mm_kobj, &advisor_mode_attr, buf);
	KUNIT_EXPECT_STREQ(test, buf, "none [scan-time]\n");
	ksm_advisor = saved;
}

static struct kunit_case ksm_sysfs_cases[] = {
	KUNIT_CASE(ksm_sysfs_test_rejects),
	KUNIT_CASE(ksm_sysfs_test_advisor_owns_pages),
	KUNIT_CASE(ksm_sysfs_test_advisor_show),
	{}
};

static struct kunit_suite ksm_sysfs_suite = {
	.name = "ksm_sysfs",
	.test_cases = ksm_sysfs_cases,
};

kunit_test_suite(ksm_sysfs_suite);

#endif /* _KSM_SYSFS_KUNIT_H */
#endif /* CONFIG_KSM_KUNIT_TEST */
