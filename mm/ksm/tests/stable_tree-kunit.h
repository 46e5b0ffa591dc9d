/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for the stable tree's chain bookkeeping
 * (stable_node_chains, stable_node_dups), for a KSM page's mapper
 * array and for the page compare that orders the tree. Included at the
 * end of stable_tree.c.
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

/* Mappers of a test node: items with a fake mm and a pinned anon_vma. */
struct ksm_test_mappers {
	struct ksm_stable_key key;
	struct ksm_stable_node node;
	struct anon_vma anon_vma;
	struct mm_struct *mm;
	struct ksm_rmap_item *items;
	struct ksm_stats saved;
};

static void ksm_test_mappers_init(struct kunit *test,
				  struct ksm_test_mappers *t, unsigned int n)
{
	t->saved = ksm_ctx.stats;
	t->mm = kunit_kzalloc(test, sizeof(*t->mm), GFP_KERNEL);
	t->items = kunit_kcalloc(test, n, sizeof(*t->items), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->mm);
	KUNIT_ASSERT_NOT_NULL(test, t->items);
	INIT_LIST_HEAD(&t->key.copies);
	atomic_set(&t->anon_vma.refcount, 1);
	t->node.key = &t->key;
	list_add(&t->node.copy_link, &t->key.copies);
	t->key.nr_copies = 1;
	KUNIT_ASSERT_EQ(test, ksm_node_resize(&t->node, KSM_NODE_MIN_ORDER),
			0);
}

static void ksm_test_mappers_add(struct kunit *test,
				 struct ksm_test_mappers *t,
				 struct ksm_rmap_item *item)
{
	item->mm = t->mm;
	item->anon_vma = &t->anon_vma;
	get_anon_vma(&t->anon_vma);
	KUNIT_ASSERT_EQ(test, ksm_stable_make_room(&t->node), 0);
	ksm_stable_add_item(&t->node, item);
}

static void ksm_test_mappers_remove(struct ksm_test_mappers *t,
				    struct ksm_rmap_item *item)
{
	ksm_stable_unlink_item(&t->node, item);
	ksm_stable_account_leave(&t->node, item);
}

/* Every mapper sits at the slot it records, and nothing else is listed. */
static void ksm_test_mappers_check(struct kunit *test,
				   struct ksm_test_mappers *t, unsigned int n)
{
	struct ksm_stable_node *node = &t->node;
	unsigned int i, merged = 0;

	for (i = 0; i < n; i++) {
		struct ksm_rmap_item *item = &t->items[i];

		if (item->state != KSM_ITEM_STABLE)
			continue;
		merged++;
		KUNIT_ASSERT_LT(test, item->stable_slot, node->nr_items);
		KUNIT_ASSERT_PTR_EQ(test, node->mappers[item->stable_slot],
				    item);
	}
	KUNIT_EXPECT_EQ(test, node->nr_items, merged);
	KUNIT_EXPECT_EQ(test, t->mm->ksm_merging_pages, (unsigned long)merged);
	KUNIT_EXPECT_EQ(test, atomic_read(&t->anon_vma.refcount),
			(int)merged + 1);
	/* The array neither overflows nor stays much larger than needed. */
	KUNIT_EXPECT_LE(test, node->nr_items, ksm_node_capacity(node));
	KUNIT_EXPECT_LE(test, ksm_node_capacity(node),
			max_t(unsigned int, 4 * node->nr_items,
			      2 * KSM_NODE_MIN_CAPACITY));
}

static void ksm_test_mappers_exit(struct ksm_test_mappers *t)
{
	kvfree(t->node.mappers);
	ksm_ctx.stats = t->saved;
}

/*
 * Add 4096 mappers, remove them in a scattered order, add some back:
 * each item always knows its slot, the counters follow, the array shrinks.
 */
static void ksm_stable_test_mapper_array(struct kunit *test)
{
	const unsigned int n = 4096;
	struct ksm_test_mappers t = {};
	unsigned int i, step;

	mutex_lock(&ksm_ctx.lock);
	ksm_test_mappers_init(test, &t, n);
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.mapper_bytes,
			t.saved.mapper_bytes + 2 * sizeof(void *));
	for (i = 0; i < n; i++)
		ksm_test_mappers_add(test, &t, &t.items[i]);
	ksm_test_mappers_check(test, &t, n);
	KUNIT_EXPECT_EQ(test, ksm_node_capacity(&t.node), n);
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.mapper_bytes,
			t.saved.mapper_bytes + n * sizeof(void *));

	/* 1031 is prime and coprime with n: visits every item once. */
	for (i = 0, step = 0; step < n - 3; step++, i = (i + 1031) % n) {
		ksm_test_mappers_remove(&t, &t.items[i]);
		if (step % 512 == 0)
			ksm_test_mappers_check(test, &t, n);
	}
	ksm_test_mappers_check(test, &t, n);
	KUNIT_EXPECT_EQ(test, t.node.nr_items, 3U);

	for (i = 0; i < n; i += 2)
		if (t.items[i].state != KSM_ITEM_STABLE)
			ksm_test_mappers_add(test, &t, &t.items[i]);
	ksm_test_mappers_check(test, &t, n);
	for (i = 0; i < n; i++)
		if (t.items[i].state == KSM_ITEM_STABLE)
			ksm_test_mappers_remove(&t, &t.items[i]);
	ksm_test_mappers_check(test, &t, n);
	/* The array shrank, and its bytes are counted as it is now. */
	KUNIT_EXPECT_LT(test, ksm_node_capacity(&t.node), n);
	KUNIT_EXPECT_EQ(test, ksm_ctx.stats.mapper_bytes,
			t.saved.mapper_bytes +
			ksm_node_capacity(&t.node) * sizeof(void *));
	ksm_test_mappers_exit(&t);
	mutex_unlock(&ksm_ctx.lock);
}

/* A copy that fills up goes last; one with room again goes first. */
static void ksm_stable_test_full_copies_last(struct kunit *test)
{
	unsigned int saved_max = ksm_ctx.knobs.max_page_sharing;
	struct ksm_stable_node other = {};
	struct ksm_test_mappers t = {};

	mutex_lock(&ksm_ctx.lock);
	ksm_ctx.knobs.max_page_sharing = 2;
	ksm_test_mappers_init(test, &t, 3);
	other.key = &t.key;
	list_add_tail(&other.copy_link, &t.key.copies);

	ksm_test_mappers_add(test, &t, &t.items[0]);
	KUNIT_EXPECT_PTR_EQ(test, list_first_entry(&t.key.copies,
						   struct ksm_stable_node,
						   copy_link), &t.node);
	ksm_test_mappers_add(test, &t, &t.items[1]);
	KUNIT_EXPECT_PTR_EQ(test, list_first_entry(&t.key.copies,
						   struct ksm_stable_node,
						   copy_link), &other);
	/* Over the limit (a forked KSM page joining itself): still last. */
	ksm_test_mappers_add(test, &t, &t.items[2]);
	ksm_test_mappers_remove(&t, &t.items[2]);
	KUNIT_EXPECT_PTR_EQ(test, list_last_entry(&t.key.copies,
						  struct ksm_stable_node,
						  copy_link), &t.node);
	ksm_test_mappers_remove(&t, &t.items[0]);
	KUNIT_EXPECT_PTR_EQ(test, list_first_entry(&t.key.copies,
						   struct ksm_stable_node,
						   copy_link), &t.node);
	ksm_test_mappers_remove(&t, &t.items[1]);
	ksm_test_mappers_check(test, &t, 3);
	ksm_test_mappers_exit(&t);
	ksm_ctx.knobs.max_page_sharing = saved_max;
	mutex_unlock(&ksm_ctx.lock);
}

/* ksm_bytes_cmp() orders pages as memcmp() does, wherever they differ. */
static void ksm_stable_test_bytes_cmp(struct kunit *test)
{
	static const unsigned int offsets[] = {
		0, 7, 8, 63, 64, 65, 2048, PAGE_SIZE - 64, PAGE_SIZE - 1,
	};
	u8 *a = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	u8 *b = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, a);
	KUNIT_ASSERT_NOT_NULL(test, b);
	memset(a, 0x5a, PAGE_SIZE);
	memset(b, 0x5a, PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, ksm_bytes_cmp(a, b), 0);
	for (i = 0; i < ARRAY_SIZE(offsets); i++) {
		b[offsets[i]] = 0x5b;
		KUNIT_EXPECT_LT_MSG(test, ksm_bytes_cmp(a, b), 0,
				    "offset %u", offsets[i]);
		KUNIT_EXPECT_GT_MSG(test, ksm_bytes_cmp(b, a), 0,
				    "offset %u", offsets[i]);
		/* A later, opposite difference must not change the order. */
		a[PAGE_SIZE - 1] = offsets[i] == PAGE_SIZE - 1 ? 0x5a : 0x7f;
		KUNIT_EXPECT_LT_MSG(test, ksm_bytes_cmp(a, b), 0,
				    "offset %u, later difference", offsets[i]);
		a[PAGE_SIZE - 1] = 0x5a;
		b[offsets[i]] = 0x5a;
	}
	KUNIT_EXPECT_EQ(test, ksm_bytes_cmp(a, b), 0);
}

static struct kunit_case ksm_stable_tree_cases[] = {
	KUNIT_CASE(ksm_stable_test_chain_counts),
	KUNIT_CASE(ksm_stable_test_two_chains),
	KUNIT_CASE(ksm_stable_test_mapper_array),
	KUNIT_CASE(ksm_stable_test_full_copies_last),
	KUNIT_CASE(ksm_stable_test_bytes_cmp),
	{}
};

static struct kunit_suite ksm_stable_tree_suite = {
	.name = "ksm_stable_tree",
	.test_cases = ksm_stable_tree_cases,
};

kunit_test_suite(ksm_stable_tree_suite);

#endif /* _KSM_STABLE_TREE_KUNIT_H */
#endif /* CONFIG_KSM_KUNIT_TEST */
