// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: the unstable tree.
 *
 * Pages that did not change between two visits but have no KSM twin yet
 * wait here for a partner during one pass. The tree is ordered by the hash
 * each item had when it went in, which never changes while it is in the
 * tree, so the tree stays well ordered however the pages are written to.
 * Items with equal hashes sit next to each other; a lookup compares whole
 * pages only within that run.
 *
 * The trees are thrown away wholesale at the start of every pass by bumping
 * ksm_ctx.scan.pass: an item whose ->pass is older is no longer linked.
 *
 * Everything here runs under ksm_ctx.lock.
 */

#include <linux/mm.h>

#include "internal.h"

/* Most equal-hash entries one lookup compares against. */
#define KSM_UNSTABLE_MAX_COMPARES	8

static struct ksm_rmap_item *ksm_unstable_entry(struct rb_node *node)
{
	return rb_entry(node, struct ksm_rmap_item, unstable_node);
}

static bool ksm_unstable_linked(struct ksm_rmap_item *item)
{
	return item->state == KSM_ITEM_UNSTABLE &&
	       item->pass == ksm_ctx.scan.pass;
}

/**
 * ksm_unstable_remove() - unlink an item in state KSM_ITEM_UNSTABLE
 * @item: the item.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_unstable_remove(struct ksm_rmap_item *item)
{
	ksm_assert_locked();
	if (ksm_unstable_linked(item))
		rb_erase(&item->unstable_node,
			 &ksm_ctx.unstable_roots[item->nid]);
	ksm_ctx.stats.pages_unshared--;
	item->state = KSM_ITEM_NEW;
}

/**
 * ksm_unstable_reset() - forget every unstable tree
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_unstable_reset(void)
{
	int i;

	ksm_assert_locked();
	for (i = 0; i < ksm_ctx.nr_trees; i++)
		ksm_ctx.unstable_roots[i] = RB_ROOT;
	ksm_ctx.scan.pass++;
}

/* Leftmost entry whose hash equals @hash, or NULL. */
static struct rb_node *ksm_unstable_first(struct rb_root *root, u64 hash)
{
	struct rb_node *node = root->rb_node, *found = NULL;

	while (node) {
		u64 key = ksm_unstable_entry(node)->hash;

		if (hash < key) {
			node = node->rb_left;
		} else if (hash > key) {
			node = node->rb_right;
		} else {
			found = node;
			node = node->rb_left;
		}
	}
	return found;
}

/*
 * Return a referenced page of @tree_item identical to @page, or NULL.
 * Pages that moved to another node do not match when merging per node.
 * An entry whose address no longer maps an ordinary anonymous page (it
 * was unmapped, or merged: mapped to a KSM page or the zero page) is
 * taken out of the tree, so that it stops using up the compare budget of
 * every later lookup of its hash.
 */
static struct page *ksm_unstable_match(struct ksm_rmap_item *tree_item,
				       struct page *page, int nid)
{
	struct page *tree_page = ksm_item_page(tree_item);

	if (!tree_page || PageKsm(tree_page)) {
		ksm_unstable_remove(tree_item);
		goto no_match;
	}
	if (tree_page == page ||
	    ksm_tree_index(page_to_nid(tree_page)) != nid ||
	    !pages_identical(page, tree_page))
		goto no_match;
	return tree_page;

no_match:
	if (tree_page)
		put_page(tree_page);
	return NULL;
}

static void ksm_unstable_insert(struct rb_root *root,
				struct ksm_rmap_item *item, int nid)
{
	struct rb_node **link = &root->rb_node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (item->hash < ksm_unstable_entry(parent)->hash)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&item->unstable_node, parent, link);
	rb_insert_color(&item->unstable_node, root);

	item->state = KSM_ITEM_UNSTABLE;
	item->pass = ksm_ctx.scan.pass;
	item->nid = nid;
	ksm_ctx.stats.pages_unshared++;
}

/**
 * ksm_unstable_keep() - keep a page smart scan skips findable by others
 * @item: an item in state KSM_ITEM_NEW whose ->hash and ->nid are from
 *        its previous visit.
 *
 * The page is not read; it goes back into this pass's tree under its old
 * hash, so pages visited later can still find it. A page that changed
 * meanwhile only costs a failed compare.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_unstable_keep(struct ksm_rmap_item *item)
{
	ksm_assert_locked();
	if (item->hashed && item->nid < ksm_ctx.nr_trees)
		ksm_unstable_insert(&ksm_ctx.unstable_roots[item->nid], item,
				    item->nid);
}

/**
 * ksm_unstable_has_other() - is a page with this hash waiting elsewhere?
 * @hash: a content hash.
 * @nid: index of the unstable tree to look in.
 * @mm: with @start and @end, a range whose own pages do not count.
 * @start: first address of the range.
 * @end: end of the range.
 *
 * Only hashes are compared: good enough for estimates, never for merging.
 *
 * Context: ksm_ctx.lock held.
 * Return: true if an item with @hash outside the range is in the tree.
 */
bool ksm_unstable_has_other(u64 hash, int nid, struct mm_struct *mm,
			    unsigned long start, unsigned long end)
{
	struct rb_node *node;
	int budget = KSM_UNSTABLE_MAX_COMPARES;

	ksm_assert_locked();
	node = ksm_unstable_first(&ksm_ctx.unstable_roots[nid], hash);
	for (; node && budget--; node = rb_next(node)) {
		struct ksm_rmap_item *item = ksm_unstable_entry(node);

		if (item->hash != hash)
			break;
		if (item->mm != mm || item->address < start ||
		    item->address >= end)
			return true;
	}
	return false;
}

/**
 * ksm_unstable_find_or_insert() - find a twin of a page, or wait for one
 * @item: the page's item, state KSM_ITEM_NEW, ->hash up to date.
 * @page: the page, referenced by the caller.
 * @match: set to the twin's page (referenced) when one is found.
 *
 * Context: ksm_ctx.lock held; may sleep (takes other mms' mmap_lock).
 * Return: the twin's item, still linked in the tree; or NULL after
 * inserting @item.
 */
struct ksm_rmap_item *ksm_unstable_find_or_insert(struct ksm_rmap_item *item,
						  struct page *page,
						  struct page **match)
{
	int nid = ksm_tree_index(page_to_nid(page));
	struct rb_root *root = &ksm_ctx.unstable_roots[nid];
	struct rb_node *node = ksm_unstable_first(root, item->hash);
	int budget = KSM_UNSTABLE_MAX_COMPARES;

	ksm_assert_locked();
	while (node && budget--) {
		struct ksm_rmap_item *tree_item = ksm_unstable_entry(node);

		if (tree_item->hash != item->hash)
			break;
		/* The match may unlink a stale entry: step past it first. */
		node = rb_next(node);
		*match = ksm_unstable_match(tree_item, page, nid);
		if (*match)
			return tree_item;
	}

	ksm_unstable_insert(root, item, nid);
	return NULL;
}

#include "tests/unstable_tree-kunit.h"
