// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: lifetime of rmap items, the per-page records
 * ksmd keeps for every mergeable page it has visited.
 *
 * An item is created the first time ksmd finds a page at an address and
 * lives on its mm's address-ordered list until the page disappears, the
 * VMA stops being mergeable, the mm exits or KSM is unmerged. All of this
 * happens under ksm_ctx.lock.
 */

#include <linux/slab.h>

#include "internal.h"

static struct kmem_cache *ksm_rmap_item_cache;

/**
 * ksm_rmap_item_new() - allocate the item of one page
 * @mm: the page's mm.
 * @address: page-aligned user address.
 *
 * The item is in state KSM_ITEM_NEW and not yet counted: the caller links
 * it where only it can see it, then counts it with ksm_rmap_item_count().
 *
 * Context: any sleepable context; no lock needed.
 * Return: the item, or NULL without memory.
 */
struct ksm_rmap_item *ksm_rmap_item_new(struct mm_struct *mm,
					unsigned long address)
{
	struct ksm_rmap_item *item;

	item = kmem_cache_zalloc(ksm_rmap_item_cache, GFP_KERNEL |
				 __GFP_NORETRY | __GFP_NOWARN);
	if (item) {
		item->mm = mm;
		item->vpn = address >> PAGE_SHIFT;
		item->state = KSM_ITEM_NEW;
	}
	return item;
}

/**
 * ksm_rmap_item_count() - count a new item in the global and mm counters
 * @item: from ksm_rmap_item_new().
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_rmap_item_count(struct ksm_rmap_item *item)
{
	ksm_assert_locked();
	ksm_ctx.stats.rmap_items++;
	item->mm->ksm_rmap_items++;
}

/**
 * ksm_rmap_item_forget() - take an item out of whichever tree holds it
 * @item: the item.
 *
 * Afterwards the item is in state KSM_ITEM_NEW but keeps its last hash,
 * so a page that did not change can go straight back into a tree.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_rmap_item_forget(struct ksm_rmap_item *item)
{
	ksm_assert_locked();

	switch (item->state) {
	case KSM_ITEM_STABLE:
		ksm_stable_remove_item(item);
		break;
	case KSM_ITEM_UNSTABLE:
		ksm_unstable_remove(item);
		break;
	case KSM_ITEM_MERGING:
		/* The merging thread owns it until it records the pair. */
		WARN_ON_ONCE(1);
		return;
	default:
		break;
	}
	item->state = KSM_ITEM_NEW;
}

/*
 * An item in state KSM_ITEM_MERGING belongs to the ksmd thread merging its
 * page (scan.c) until that thread records the pair under ksm_ctx.lock;
 * meanwhile the thread reads the item's ->mm and address and pins its VMA
 * without the lock. An owner that lets go of such an item (its page went,
 * its mm exits) only orphans it: the item no longer counts, ->pass says
 * so, and the merging thread frees it when it records the pair. ->pass
 * has no other use in that state, and it is the one field neither side
 * touches while the other may.
 */

/**
 * ksm_rmap_item_free() - forget an item and free it
 * @item: an item already unlinked from its mm's list.
 *
 * An item being merged (KSM_ITEM_MERGING) is orphaned instead; see above.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_rmap_item_free(struct ksm_rmap_item *item)
{
	ksm_assert_locked();
	ksm_ctx.stats.rmap_items--;
	item->mm->ksm_rmap_items--;
	if (item->state == KSM_ITEM_MERGING) {
		item->pass = 1;
		return;
	}
	ksm_rmap_item_forget(item);
	kmem_cache_free(ksm_rmap_item_cache, item);
}

/**
 * ksm_rmap_item_claim() - take an item that is in no tree for a merge
 * @item: an item in state KSM_ITEM_NEW.
 *
 * Until ksm_rmap_item_unclaim(), the item is the caller's: nobody else
 * changes or frees it (see above).
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_rmap_item_claim(struct ksm_rmap_item *item)
{
	ksm_assert_locked();
	WARN_ON_ONCE(item->state != KSM_ITEM_NEW);
	item->state = KSM_ITEM_MERGING;
	item->pass = 0;
}

/**
 * ksm_rmap_item_unclaim() - end a merge's hold on an item
 * @item: an item in state KSM_ITEM_MERGING.
 *
 * Return: true if the item lives on, in state KSM_ITEM_NEW; false if its
 * owner let go of it meanwhile, in which case it was freed here.
 *
 * Context: ksm_ctx.lock held.
 */
bool ksm_rmap_item_unclaim(struct ksm_rmap_item *item)
{
	ksm_assert_locked();
	if (item->pass) {
		kmem_cache_free(ksm_rmap_item_cache, item);
		return false;
	}
	item->state = KSM_ITEM_NEW;
	return true;
}

/**
 * ksm_rmap_list_free() - free the tail of an mm's item list
 * @link: the pointer to the first item to free; set to NULL.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_rmap_list_free(struct ksm_rmap_item **link)
{
	struct ksm_rmap_item *item = *link;

	*link = NULL;
	while (item) {
		struct ksm_rmap_item *next = item->next;

		ksm_rmap_item_free(item);
		item = next;
		cond_resched();
	}
}

/**
 * ksm_mm_items_free() - free the items of an mm's blocks in a range
 * @slot: the mm.
 * @start: first address of the range.
 * @end: last address of the range, inclusive.
 *
 * Frees every block of @slot that starts within [@start, @end]; no block
 * of the range may be claimed.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_mm_items_free(struct ksm_mm *slot, unsigned long start,
		       unsigned long end)
{
	struct ksm_rmap_item *head;
	unsigned long index;

	ksm_assert_locked();
	xa_for_each_range(&slot->blocks, index, head,
			  start >> KSM_BLOCK_SHIFT, end >> KSM_BLOCK_SHIFT) {
		xa_erase(&slot->blocks, index);
		ksm_rmap_list_free(&head);
	}
}

/**
 * ksm_rmap_item_cache_init() - create the slab cache for items
 *
 * Return: 0 or -ENOMEM.
 */
int __init ksm_rmap_item_cache_init(void)
{
	ksm_rmap_item_cache = KMEM_CACHE(ksm_rmap_item, 0);
	return ksm_rmap_item_cache ? 0 : -ENOMEM;
}
