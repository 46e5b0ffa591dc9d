/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Checks shared by the KSM selftests built on kselftest_harness.h.
 * Include after kselftest_harness.h and ksm_test_util.h.
 */
#ifndef KSM_TEST_HARNESS_H
#define KSM_TEST_HARNESS_H

/* Run ksmd for at least @n more full scans (then stop it), or fail. */
#define KSM_RUN_PASSES(n) do {						\
	unsigned long __start = 0, __seen = 0;				\
	int __e = ksm_run_passes((n), &__start, &__seen);		\
	ASSERT_EQ(0, __e)						\
		TH_LOG("ksmd: full_scans %lu -> %lu, wanted +%d, none for %ds: %s", \
		       __start, __seen, (n), KSM_SCAN_TIMEOUT_SEC,	\
		       strerror(-__e));					\
} while (0)

/* Expect /sys/kernel/mm/ksm/@name to read @val. */
#define KSM_EXPECT(name, val) do {					\
	unsigned long __v = ksm_get(name);				\
	EXPECT_EQ((unsigned long)(val), __v)				\
		TH_LOG("/sys/kernel/mm/ksm/%s", name);			\
} while (0)

/* /proc/@pid/ksm_stat (@pid 0: ourselves); fails the test if unreadable. */
static inline struct ksm_proc_stat
ksm_expect_proc_stat(struct __test_metadata *_metadata, pid_t pid)
{
	struct ksm_proc_stat st = { 0 };
	int err = ksm_read_proc_stat(pid, &st);
	char raw[512] = "";
	ssize_t n = 0;

	if (err)
		n = ksm_read_proc(pid, "ksm_stat", raw, sizeof(raw));
	ASSERT_EQ(0, err) TH_LOG("ksm_stat of %d: %s (%zd bytes now):\n%s",
				 pid, strerror(-err), n, raw);
	return st;
}

#endif /* KSM_TEST_HARNESS_H */
