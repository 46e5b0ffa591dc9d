/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for the stable tree's chain bookkeeping
 * (stable_node_chains, stable_node_dups). Included at the end of
 * stable_tree.c.
 */
#ifdef CONFIG_KSM_KUNIT_TEST
#ifndef _KSM_STABLE_TREE_KUNIT_H
#define _KSM_STABLE_TREE_KUNIT_H

#include <kunit/test.h>

/* A content with one KSM page is no chain; with n > 1 it is n dups. */
static void ksm_stable_test_chain_counts(struct kunit *test)
{
	static const struct {
		int delta;
		unsigned long chains, dups;
	} steps[] = {
		{ 1, 0, 0 }, { 1, 1, 2 }, { 1, 1, 3 }, { 1, 1, 4 },
		{ -1, 1, 3 }, { -1, 1, 2 }, { -1, 0, 0 }, { -1, 0, 0 },
	};
	struct ksm_stats saved = ksm_ctx.stats;
	struct ksm_stable_key key = {};
	int i;

	ksm_ctx.stats.chains = 0;
	ksm_ctx.stats.chain_copies = 0;
	for (i = 0; i < ARRAY_SIZE(steps); i++) {
		ksm_key_account_copies(&key, steps[i].delta);
		KUNIT_EXPECT_EQ_MSG(test, ksm_ctx.stats.chains, steps[i].chains,
				    "step %d", i);
		KUNIT_EXPECT_EQ_MSG(test, ksm_ctx.stats.chain_copies,
				    steps[i].dups, "step %d", i);
	}
	KUNIT_EXPECT_EQ(test, key.nr_copies, 0U);
	ksm_ctx.stats = saved;
}

/* Two contents counted independently. */
static void ksm_stable_test_two_chains(struct kunit *test)
{
	struct ksm_stats saved = ksm_ctx.stats;
	struct ksm_stable_key a = {}, b = {};

	ksm_ctx.stats.chains = 0;
	ksm_ctx.stats.chain_copies = 0;
	ksm_key_account_copies(&a, 1);
	ksm_key_account_copies(&a, 1);
	ksm_key_account_copies(&b, 1);
	ksm_key_account_copies(&b, 1);
	ksm_key_account_copies(&b, 1);
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.chains, 2UL);
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.chain_copies, 5UL);
	ksm_key_account_copies(&a, -1);
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.chains, 1UL);
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.chain_copies, 3UL);
	ksm_ctx.stats = saved;
}

static struct kunit_case ksm_stable_tree_cases[] = {
	KUNIT_CASE(ksm_stable_test_chain_counts),
	KUNIT_CASE(ksm_stable_test_two_chains),
	{}
};

static struct kunit_suite ksm_stable_tree_suite = {
	.name = "ksm_stable_tree",
	.test_cases = ksm_stable_tree_cases,
};

kunit_test_suite(ksm_stable_tree_suite);

#endif /* _KSM_STABLE_TREE_KUNIT_H */
#endif /* CONFIG_KSM_KUNIT_TEST */
