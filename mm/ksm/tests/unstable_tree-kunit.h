/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for the hash ordering of the unstable tree.
 *
 * Included at the end of unstable_tree.c so that static helpers can be
 * tested. The items live in a private tree; nothing touches ksmd's.
 */
#ifdef CONFIG_KSM_KUNIT_TEST
#ifndef _KSM_UNSTABLE_TREE_KUNIT_H
#define _KSM_UNSTABLE_TREE_KUNIT_H

#include <kunit/test.h>

static struct ksm_rmap_item *ksm_test_items(struct kunit *test,
					    const u64 *hashes, int nr,
					    struct rb_root *root)
{
	struct ksm_rmap_item *items;
	unsigned long unshared = ksm_ctx.stats.pages_unshared;
	int i;

	items = kunit_kcalloc(test, nr, sizeof(*items), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, items);
	for (i = 0; i < nr; i++) {
		items[i].hash = hashes[i];
		items[i].address = i;
		ksm_unstable_insert(root, &items[i], 0);
		KUNIT_EXPECT_EQ(test, (int)items[i].state, KSM_ITEM_UNSTABLE);
		KUNIT_EXPECT_EQ(test, items[i].pass, ksm_ctx.scan.pass);
	}
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.pages_unshared, unshared + nr);
	ksm_ctx.stats.pages_unshared = unshared;
	return items;
}

/* An in-order walk sees hashes sorted, equal ones in insertion order. */
static void ksm_unstable_test_order(struct kunit *test)
{
	static const u64 hashes[] = { 50, 30, 50, 90, 10, 50, 30 };
	struct rb_root root = RB_ROOT;
	struct ksm_rmap_item *prev = NULL, *item;
	struct rb_node *node;
	int seen = 0;

	ksm_test_items(test, hashes, ARRAY_SIZE(hashes), &root);
	for (node = rb_first(&root); node; node = rb_next(node), seen++) {
		item = ksm_unstable_entry(node);
		if (prev) {
			KUNIT_EXPECT_LE(test, prev->hash, item->hash);
			if (prev->hash == item->hash)
				KUNIT_EXPECT_LT(test, prev->address,
						item->address);
		}
		prev = item;
	}
	KUNIT_EXPECT_EQ(test, seen, (int)ARRAY_SIZE(hashes));
}

/* The lookup starts at the first of a run of equal hashes. */
static void ksm_unstable_test_first_of_run(struct kunit *test)
{
	static const u64 hashes[] = { 7, 3, 7, 7, 1, 9, 7, 5 };
	struct rb_root root = RB_ROOT;
	struct rb_node *node;
	int run = 0;

	ksm_test_items(test, hashes, ARRAY_SIZE(hashes), &root);
	node = ksm_unstable_first(&root, 7);
	KUNIT_ASSERT_NOT_NULL(test, node);
	KUNIT_EXPECT_EQ(test, ksm_unstable_entry(node)->address, 0UL);
	if (rb_prev(node))
		KUNIT_EXPECT_LT(test, ksm_unstable_entry(rb_prev(node))->hash,
				7ULL);
	for (; node && ksm_unstable_entry(node)->hash == 7; node = rb_next(node))
		run++;
	KUNIT_EXPECT_EQ(test, run, 4);
	KUNIT_EXPECT_NULL(test, ksm_unstable_first(&root, 8));
	KUNIT_EXPECT_NULL(test, ksm_unstable_first(&RB_ROOT, 7));
}

/* Items of an older pass are no longer linked and must not be erased. */
static void ksm_unstable_test_stale_pass(struct kunit *test)
{
	struct ksm_rmap_item item = {
		.state = KSM_ITEM_UNSTABLE,
		.pass = ksm_ctx.scan.pass - 1,
	};

	KUNIT_EXPECT_FALSE(test, ksm_unstable_linked(&item));
	item.pass = ksm_ctx.scan.pass;
	KUNIT_EXPECT_TRUE(test, ksm_unstable_linked(&item));
	item.state = KSM_ITEM_NEW;
	KUNIT_EXPECT_FALSE(test, ksm_unstable_linked(&item));
}

static struct kunit_case ksm_unstable_tree_cases[] = {
	KUNIT_CASE(ksm_unstable_test_order),
	KUNIT_CASE(ksm_unstable_test_first_of_run),
	KUNIT_CASE(ksm_unstable_test_stale_pass),
	{}
};

static struct kunit_suite ksm_unstable_tree_suite = {
	.name = "ksm_unstable_tree",
	.test_cases = ksm_unstable_tree_cases,
};

kunit_test_suite(ksm_unstable_tree_suite);

#endif /* _KSM_UNSTABLE_TREE_KUNIT_H */
#endif /* CONFIG_KSM_KUNIT_TEST */
