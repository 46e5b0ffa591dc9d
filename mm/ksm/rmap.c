// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: what the rest of mm asks of KSM folios.
 *
 * A KSM folio has no anon_vma of its own; its mappers are the rmap items
 * on its stable node. Each item remembers the anon_vma of the VMA it was
 * merged in, and every VMA hanging off that anon_vma that covers the
 * item's address may map the folio: the merger's own, and those of
 * processes forked from it since.
 *
 * Walkers hold the folio lock, which keeps the node's item list still
 * (see "Locking" in internal.h); none of these functions takes
 * ksm_ctx.lock.
 */

#include <linux/memcontrol.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/rmap.h>
#include <linux/swap.h>

#include "internal.h"

/* Is @vma in another mm than the one @item was merged in? */
static bool ksm_vma_is_fork(struct vm_area_struct *vma,
			    struct ksm_rmap_item *item)
{
	return vma->vm_mm != item->mm;
}

/**
 * ksm_item_vma_range() - the page offsets at which to look for a mapper's VMAs
 * @item: a merged item.
 * @first: set to the first page offset to look up in its anon_vma.
 * @last: set to the last one.
 *
 * Normally the one offset the merge recorded, where an interval tree
 * lookup finds the VMAs that may map the page in O(log VMAs). When no VMA
 * there holds the item's address, the layout changed in a way the offset
 * cannot follow (mremap() does not unmerge a swapped-out KSM page and can
 * move it onto an address another mapper had), or the offset was not
 * recorded: then every VMA of the anon_vma is looked at, as it takes.
 *
 * Context: @item->anon_vma locked.
 */
void ksm_item_vma_range(const struct ksm_rmap_item *item, pgoff_t *first,
			pgoff_t *last)
{
	unsigned long addr = ksm_item_addr(item);
	struct anon_vma_chain *avc;

	*first = 0;
	*last = ULONG_MAX;
	if (item->pgoff_delta == KSM_PGOFF_UNKNOWN)
		return;
	*first = item->vpn + item->pgoff_delta;
	*last = *first;
	anon_vma_interval_tree_foreach(avc, &item->anon_vma->rb_root, *first,
				       *last) {
		if (addr >= avc->vma->vm_start && addr < avc->vma->vm_end)
			return;
	}
	*first = 0;
	*last = ULONG_MAX;
}

/*
 * Call @rwc->rmap_one for the VMAs under @item's anon_vma that cover its
 * address, in the merger's mm (@forks false) or in other mms (@forks true).
 * Only the VMAs covering the page's offset are looked at (see
 * ksm_item_vma_range()): O(log n) in the VMAs of the anon_vma, not O(n).
 * Returns false when the walk must stop.
 */
static bool ksm_rmap_walk_item(struct folio *folio, struct ksm_rmap_item *item,
			       struct rmap_walk_control *rwc, bool forks)
{
	struct anon_vma *anon_vma = item->anon_vma;
	unsigned long addr = ksm_item_addr(item);
	struct anon_vma_chain *avc;
	pgoff_t first, last;
	bool more = true;

	if (!anon_vma_trylock_read(anon_vma)) {
		if (rwc->try_lock) {
			rwc->contended = true;
			return false;
		}
		anon_vma_lock_read(anon_vma);
	}
	ksm_item_vma_range(item, &first, &last);
	anon_vma_interval_tree_foreach(avc, &anon_vma->rb_root, first, last) {
		struct vm_area_struct *vma = avc->vma;

		cond_resched();
		if (addr < vma->vm_start || addr >= vma->vm_end)
			continue;
		if (ksm_vma_is_fork(vma, item) != forks)
			continue;
		if (rwc->invalid_vma && rwc->invalid_vma(vma, rwc->arg))
			continue;
		if (!rwc->rmap_one(folio, vma, addr, rwc->arg) ||
		    (rwc->done && rwc->done(folio))) {
			more = false;
			break;
		}
	}
	anon_vma_unlock_read(anon_vma);
	return more;
}

/**
 * rmap_walk_ksm() - visit every mapping of a KSM folio
 * @folio: the locked KSM folio.
 * @rwc: what to do with each mapping.
 *
 * Mergers' own mappings come first, then those of their forks, so that
 * walks that stop early (@rwc->done) usually stop sooner.
 */
void rmap_walk_ksm(struct folio *folio, struct rmap_walk_control *rwc)
{
	struct ksm_stable_node *node;
	unsigned int i;
	int forks;

	VM_WARN_ON_ONCE_FOLIO(!folio_test_ksm(folio), folio);
	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(folio), folio);

	node = ksm_folio_node(folio);
	if (!node)
		return;
	for (forks = 0; forks < 2; forks++) {
		for (i = 0; i < node->nr_items; i++) {
			cond_resched();
			if (!ksm_rmap_walk_item(folio, node->mappers[i], rwc,
						forks))
				return;
		}
	}
}

/**
 * folio_migrate_ksm() - hand a KSM folio's node over to its new copy
 * @newfolio: the destination folio, locked, ->mapping already copied.
 * @folio: the source folio, locked.
 */
void folio_migrate_ksm(struct folio *newfolio, struct folio *folio)
{
	struct ksm_stable_node *node = ksm_folio_node(folio);

	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(folio), folio);
	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(newfolio), newfolio);
	if (!node)
		return;
	WRITE_ONCE(node->kpfn, folio_pfn(newfolio));
	/*
	 * Publish the new pfn before the old folio stops pointing to the
	 * node; pairs with smp_rmb() in ksm_stable_folio_try().
	 */
	smp_wmb();
	ksm_folio_set_node(folio, NULL);
}

/* Does @folio, swapped in at @addr of @vma, need a private copy? */
static bool ksm_swapin_needs_copy(struct folio *folio,
				  struct vm_area_struct *vma,
				  unsigned long addr)
{
	struct anon_vma *anon_vma;

	if (folio_test_ksm(folio))
		return !ksm_folio_node(folio) ||
		       (READ_ONCE(ksm_ctx.knobs.run) & KSM_RUN_UNMERGE);
	anon_vma = folio_anon_vma(folio);
	if (!anon_vma)
		return false;
	/* Once KSM, ->index may not fit this VMA's linear layout. */
	return folio->index != linear_page_index(vma, addr) ||
	       anon_vma->root != vma->anon_vma->root;
}

/**
 * ksm_might_need_to_copy() - copy a swapped-in folio KSM cannot map here
 * @folio: the locked folio found in the swap cache.
 * @vma: the VMA faulting it in.
 * @addr: the faulting address.
 *
 * A folio that was a KSM page when it was swapped out may come back at an
 * address, or under an anon_vma, that its ->index and ->mapping cannot
 * describe; the faulting mm then gets its own copy, and ksmd may merge it
 * again later.
 *
 * Return: @folio, a new locked copy, NULL without memory, or
 * ERR_PTR(-EHWPOISON) if the data is lost.
 */
struct folio *ksm_might_need_to_copy(struct folio *folio,
				     struct vm_area_struct *vma,
				     unsigned long addr)
{
	struct page *page = folio_page(folio, 0);
	struct folio *copy;

	if (folio_test_large(folio) || !ksm_swapin_needs_copy(folio, vma, addr))
		return folio;
	if (PageHWPoison(page))
		return ERR_PTR(-EHWPOISON);
	if (!folio_test_uptodate(folio))
		return folio;	/* do_swap_page() reports the I/O error */

	copy = vma_alloc_folio(GFP_HIGHUSER_MOVABLE, 0, vma, addr, false);
	if (!copy)
		return NULL;
	if (mem_cgroup_charge(copy, vma->vm_mm, GFP_KERNEL))
		goto fail;
	if (copy_mc_user_highpage(folio_page(copy, 0), page, addr, vma)) {
		folio_put(copy);
		return ERR_PTR(-EHWPOISON);
	}
	folio_set_dirty(copy);
	__folio_mark_uptodate(copy);
	__folio_set_locked(copy);
	if (IS_ENABLED(CONFIG_SWAP))
		count_vm_event(KSM_SWPIN_COPY);
	return copy;

fail:
	folio_put(copy);
	return NULL;
}

/**
 * ksm_process_profit() - memory an mm saves through KSM, net of metadata
 * @mm: the mm.
 *
 * Return: bytes saved by merged and zero-mapped pages, minus the size of
 * the mm's rmap items; may be negative.
 */
long ksm_process_profit(struct mm_struct *mm)
{
	/*
	 * Counters that change under ksm_ctx.lock, read without it for
	 * /proc/PID/ksm_stat: benign, a moment-old figure is what a reader
	 * gets anyway, and word-sized loads do not tear.
	 */
	return data_race(ksm_profit(mm->ksm_merging_pages +
				    mm_ksm_zero_pages(mm),
				    mm->ksm_rmap_items));
}
