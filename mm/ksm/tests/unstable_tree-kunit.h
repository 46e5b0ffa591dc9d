/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for the unstable hash table.
 *
 * Included at the end of unstable_tree.c so that static helpers can be
 * tested. Each test swaps in a private table under ksm_ctx.lock and puts
 * ksmd's back afterwards; ksmd is idle while KUnit runs at boot.
 */
#ifdef CONFIG_KSM_KUNIT_TEST
#ifndef _KSM_UNSTABLE_TREE_KUNIT_H
#define _KSM_UNSTABLE_TREE_KUNIT_H

#include <kunit/test.h>

#define KSM_TEST_BITS	4

struct ksm_unstable_test_ctx {
	struct ksm_unstable_bucket *saved_table;
	unsigned int saved_bits;
	unsigned long saved_entries;
	unsigned long saved_unshared;
};

static void ksm_unstable_test_begin(struct kunit *test,
				    struct ksm_unstable_test_ctx *t)
{
	struct ksm_unstable_bucket *table;

	table = kvcalloc(1 << KSM_TEST_BITS, sizeof(*table), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, table);
	mutex_lock(&ksm_ctx.lock);
	t->saved_table = ksm_ctx.unstable_table;
	t->saved_bits = ksm_ctx.unstable_bits;
	t->saved_entries = ksm_ctx.unstable_entries;
	t->saved_unshared = ksm_ctx.stats.pages_unshared;
	ksm_ctx.unstable_table = table;
	ksm_ctx.unstable_bits = KSM_TEST_BITS;
	ksm_ctx.unstable_entries = 0;
}

/* Free the test table (grown or not) and put ksmd's back. */
static void ksm_unstable_test_end(struct ksm_unstable_test_ctx *t)
{
	kvfree(ksm_ctx.unstable_table);
	ksm_ctx.unstable_table = t->saved_table;
	ksm_ctx.unstable_bits = t->saved_bits;
	ksm_ctx.unstable_entries = t->saved_entries;
	ksm_ctx.stats.pages_unshared = t->saved_unshared;
	mutex_unlock(&ksm_ctx.lock);
}

/* Items 0..nr-1 with the given hashes at addresses i pages apart. */
static struct ksm_rmap_item *ksm_test_items(struct kunit *test,
					    const u64 *hashes, int nr)
{
	struct ksm_rmap_item *items;
	int i;

	items = kunit_kcalloc(test, nr, sizeof(*items), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, items);
	for (i = 0; i < nr; i++) {
		items[i].hash = hashes[i];
		items[i].vpn = i;
		ksm_unstable_insert(&items[i], 0);
		KUNIT_EXPECT_EQ(test, (int)items[i].state, KSM_ITEM_UNSTABLE);
		KUNIT_EXPECT_EQ(test, items[i].pass, ksm_ctx.scan.pass);
	}
	return items;
}

/* Number of entries with @hash in its bucket. */
static int ksm_test_count(u64 hash)
{
	struct ksm_rmap_item *item = ksm_unstable_bucket(hash, 0)->head;
	int n = 0;

	for (; item; item = item->chain)
		n += item->hash == hash;
	return n;
}

/*
 * Every chained entry has its bit in its bucket's summary: a clear bit
 * must mean "not here", or lookups would miss twins.
 */
static void ksm_test_summaries_cover(struct kunit *test)
{
	struct ksm_unstable_bucket *bucket;
	struct ksm_rmap_item *item;
	unsigned long i;

	for (i = 0; i < 1UL << ksm_ctx.unstable_bits; i++) {
		bucket = &ksm_ctx.unstable_table[i];
		for (item = bucket->head; item; item = item->chain) {
			bool held = ksm_unstable_may_hold(bucket, item->hash,
							  item->nid);

			KUNIT_EXPECT_TRUE_MSG(test, held, "hash %llu",
					      item->hash);
		}
	}
}

/* Every inserted entry is found in its bucket, and counted. */
static void ksm_unstable_test_insert(struct kunit *test)
{
	static const u64 hashes[] = { 50, 30, 50, 90, 10, 50, 30 };
	struct ksm_unstable_test_ctx t;

	ksm_unstable_test_begin(test, &t);
	ksm_test_items(test, hashes, ARRAY_SIZE(hashes));
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.pages_unshared,
			t.saved_unshared + ARRAY_SIZE(hashes));
	KUNIT_EXPECT_EQ(test, ksm_test_count(50), 3);
	KUNIT_EXPECT_EQ(test, ksm_test_count(30), 2);
	KUNIT_EXPECT_EQ(test, ksm_test_count(77), 0);
	ksm_test_summaries_cover(test);
	/* A key whose bit no entry set is known absent without a walk. */
	KUNIT_EXPECT_FALSE(test, ksm_unstable_may_hold(ksm_unstable_bucket(3, 0),
						       3, 0));
	ksm_unstable_test_end(&t);
}

/* Removing the head, a middle and the last entry of a chain. */
static void ksm_unstable_test_remove(struct kunit *test)
{
	static const u64 hashes[] = { 7, 7, 7, 7 };
	struct ksm_unstable_test_ctx t;
	struct ksm_rmap_item *items;

	ksm_unstable_test_begin(test, &t);
	items = ksm_test_items(test, hashes, ARRAY_SIZE(hashes));
	ksm_unstable_remove(&items[3]);		/* head: inserted last */
	ksm_unstable_remove(&items[1]);
	ksm_unstable_remove(&items[0]);		/* tail */
	KUNIT_EXPECT_EQ(test, ksm_test_count(7), 1);
	KUNIT_EXPECT_PTR_EQ(test, ksm_unstable_bucket(7, 0)->head, &items[2]);
	ksm_test_summaries_cover(test);
	KUNIT_EXPECT_NULL(test, items[2].chain);
	KUNIT_EXPECT_EQ(test, (int)items[1].state, KSM_ITEM_NEW);
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.pages_unshared, t.saved_unshared + 1);
	ksm_unstable_test_end(&t);
}

/* Entries of the same mm and range do not count as "elsewhere". */
static void ksm_unstable_test_has_other(struct kunit *test)
{
	static const u64 hashes[] = { 5, 5, 6 };
	struct ksm_unstable_test_ctx t;
	unsigned long end = 2 * PAGE_SIZE;

	ksm_unstable_test_begin(test, &t);
	ksm_test_items(test, hashes, ARRAY_SIZE(hashes));
	KUNIT_EXPECT_FALSE(test, ksm_unstable_has_other(5, 0, NULL, 0, end));
	KUNIT_EXPECT_TRUE(test, ksm_unstable_has_other(5, 0, NULL, 0, PAGE_SIZE));
	KUNIT_EXPECT_TRUE(test, ksm_unstable_has_other(6, 0, NULL, 0, end));
	KUNIT_EXPECT_FALSE(test, ksm_unstable_has_other(6, 1, NULL, 0, 0));
	ksm_unstable_test_end(&t);
}

/* Filing many more entries than buckets grows the table; none is lost. */
static void ksm_unstable_test_grow(struct kunit *test)
{
	const int nr = (KSM_UNSTABLE_LOAD << KSM_TEST_BITS) + 8;
	struct ksm_unstable_test_ctx t;
	u64 hashes[(KSM_UNSTABLE_LOAD << KSM_TEST_BITS) + 8];
	int i, found = 0;

	for (i = 0; i < nr; i++)
		hashes[i] = i % 10;
	ksm_unstable_test_begin(test, &t);
	ksm_test_items(test, hashes, nr);
	KUNIT_EXPECT_EQ(test, ksm_ctx.unstable_bits, KSM_TEST_BITS + 2U);
	KUNIT_EXPECT_EQ(test, ksm_ctx.unstable_entries, (unsigned long)nr);
	for (i = 0; i < 10; i++)
		found += ksm_test_count(i);
	KUNIT_EXPECT_EQ(test, found, nr);
	ksm_test_summaries_cover(test);
	ksm_unstable_test_end(&t);
}

/* Items of an older pass are no longer linked and must not be unlinked. */
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

/* The item stays at 48 bytes on 64-bit: the point of the layout. */
static void ksm_unstable_test_item_size(struct kunit *test)
{
	if (IS_ENABLED(CONFIG_64BIT))
		KUNIT_EXPECT_EQ(test, sizeof(struct ksm_rmap_item), (size_t)48);
}

static struct kunit_case ksm_unstable_tree_cases[] = {
	KUNIT_CASE(ksm_unstable_test_insert),
	KUNIT_CASE(ksm_unstable_test_remove),
	KUNIT_CASE(ksm_unstable_test_has_other),
	KUNIT_CASE(ksm_unstable_test_grow),
	KUNIT_CASE(ksm_unstable_test_stale_pass),
	KUNIT_CASE(ksm_unstable_test_item_size),
	{}
};

static struct kunit_suite ksm_unstable_tree_suite = {
	.name = "ksm_unstable_tree",
	.test_cases = ksm_unstable_tree_cases,
};

kunit_test_suite(ksm_unstable_tree_suite);

#endif /* _KSM_UNSTABLE_TREE_KUNIT_H */
#endif /* CONFIG_KSM_KUNIT_TEST */
