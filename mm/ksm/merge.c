// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: rewriting page table entries.
 *
 * Merging one page into a KSM page (or the zero page) is always the same
 * steps, with one TLB flush:
 *
 * 1. lock the page's folio (trylock: ksmd never waits for a busy page) and
 *    split it if it is large; lock the KSM folio (a new one), or check
 *    under its lock that it is still its node's (one of the stable tree:
 *    ksm_kfolio_check());
 * 2. under the page table lock, clear the PTE and flush it, and prove
 *    nobody can write to the page behind the page tables: the refcount
 *    must equal mappers + our reference + swap cache. A pinned page
 *    (O_DIRECT, RDMA, vfio) is refused (ksm_swap_pte() says why a pin
 *    cannot appear afterwards);
 * 3. still under that lock, compare the bytes, now that they cannot
 *    change, and install the KSM page's PTE, or put the old one back.
 *
 * ksm_join_pages() does this for up to KSM_BATCH pages of one page table
 * that join one KSM page: clear all their PTEs, one range flush, then step
 * 3 for each.
 *
 * Turning a page into a new KSM page in place (ksm_promote_page()) only
 * write-protects its PTE, with the same refcount proof.
 *
 * Unmerging is left to the fault handler: an FAULT_FLAG_UNSHARE fault on a
 * KSM page gives the mm its own copy.
 *
 * Callers hold the mm's mmap_lock (read). Joining a KSM page of the stable
 * tree runs without ksm_ctx.lock, making a new KSM page under it. The
 * unmerge helpers are called by the madvise() and prctl() paths with
 * mmap_lock held for write and without ksm_ctx.lock.
 */

#include <linux/highmem.h>
#include <linux/huge_mm.h>
#include <linux/hugetlb.h>	/* x86 flush_tlb_range() */
#include <linux/mmu_notifier.h>
#include <linux/pagewalk.h>
#include <linux/rmap.h>
#include <linux/swap.h>
#include <linux/swapops.h>

#include "internal.h"
#include <trace/events/ksm.h>

/**
 * ksm_find_vma() - the mergeable VMA covering an address, if any
 * @mm: the mm; its mmap_lock is held.
 * @address: user address.
 *
 * Return: the VMA, or NULL if the mm is exiting, nothing is mapped there,
 * the VMA is not mergeable or has no anonymous memory yet.
 */
struct vm_area_struct *ksm_find_vma(struct mm_struct *mm,
				    unsigned long address)
{
	struct vm_area_struct *vma = NULL;

	if (!ksm_mm_exiting(mm))
		vma = vma_lookup(mm, address);
	return vma && (vma->vm_flags & VM_MERGEABLE) && vma->anon_vma ?
	       vma : NULL;
}

/**
 * ksm_item_page() - the anonymous page an item's address maps now
 * @item: the item.
 *
 * Context: may sleep; takes the item's mmap_lock for read.
 * Return: the page with a reference on its folio, or NULL.
 */
struct page *ksm_item_page(struct ksm_rmap_item *item)
{
	struct mm_struct *mm = item->mm;
	struct vm_area_struct *vma;
	struct page *page = NULL;
	struct folio_walk fw;
	struct folio *folio;

	mmap_read_lock(mm);
	vma = ksm_find_vma(mm, ksm_item_addr(item));
	if (!vma)
		goto out;
	folio = folio_walk_start(&fw, vma, ksm_item_addr(item), 0);
	if (folio) {
		if (folio_test_anon(folio) && !folio_is_zone_device(folio)) {
			folio_get(folio);
			page = fw.page;
		}
		folio_walk_end(&fw, vma);
	}
	if (page) {
		flush_anon_page(vma, page, ksm_item_addr(item));
		flush_dcache_page(page);
	}
out:
	mmap_read_unlock(mm);
	return page;
}

/*
 * Does @folio (small, its PTE just cleared and flushed) have no references
 * but one per mapping, the caller's and the swap cache's? A pin taken by
 * O_DIRECT, RDMA or vfio would show here.
 */
static bool ksm_folio_unpinned(struct folio *folio)
{
	return folio_ref_count(folio) ==
	       folio_mapcount(folio) + 1 + folio_test_swapcache(folio);
}

/*
 * Make the PTE at @pvmw read-only and clean, sharing the anonymous page.
 * Fails when someone holds a reference we cannot account for.
 */
static int ksm_wrprotect_pte(struct page_vma_mapped_walk *pvmw,
			     struct folio *folio)
{
	struct vm_area_struct *vma = pvmw->vma;
	bool exclusive = PageAnonExclusive(&folio->page);
	pte_t pte;

	flush_cache_page(vma, pvmw->address, folio_pfn(folio));
	/* Clearing first keeps GUP-fast from pinning during the check. */
	pte = ptep_clear_flush(vma, pvmw->address, pvmw->pte);
	if (!ksm_folio_unpinned(folio) ||
	    (exclusive && folio_try_share_anon_rmap_pte(folio, &folio->page))) {
		set_pte_at(vma->vm_mm, pvmw->address, pvmw->pte, pte);
		return -EBUSY;
	}
	if (pte_dirty(pte))
		folio_mark_dirty(folio);
	set_pte_at(vma->vm_mm, pvmw->address, pvmw->pte,
		   pte_wrprotect(pte_mkclean(pte)));
	return 0;
}

/* Write-protect @folio's PTE in @vma; the folio is small and locked. */
static int ksm_write_protect(struct vm_area_struct *vma, struct folio *folio)
{
	DEFINE_FOLIO_VMA_WALK(pvmw, folio, vma, 0, 0);
	struct mmu_notifier_range range;
	int err = -EFAULT;
	pte_t pte;

	pvmw.address = page_address_in_vma(&folio->page, vma);
	if (pvmw.address == -EFAULT)
		return -EFAULT;

	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, vma->vm_mm,
				pvmw.address, pvmw.address + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	if (!page_vma_mapped_walk(&pvmw))
		goto out_notify;
	if (WARN_ONCE(!pvmw.pte, "ksm: PMD-mapped small folio"))
		goto out_walk;

	pte = ptep_get(pvmw.pte);
	if (pte_write(pte) || pte_dirty(pte) ||
	    PageAnonExclusive(&folio->page) || mm_tlb_flush_pending(vma->vm_mm))
		err = ksm_wrprotect_pte(&pvmw, folio);
	else
		err = 0;
out_walk:
	page_vma_mapped_walk_done(&pvmw);
out_notify:
	mmu_notifier_invalidate_range_end(&range);
	return err;
}

/* The PTE that will map @kpage at @addr in @vma. */
static pte_t ksm_make_pte(struct vm_area_struct *vma, unsigned long addr,
			  struct page *kpage)
{
	struct mm_struct *mm = vma->vm_mm;
	struct folio *kfolio = page_folio(kpage);

	if (is_zero_pfn(page_to_pfn(kpage))) {
		/* A dirty zero-page PTE marks a page KSM emptied. */
		ksm_map_zero_page(mm);
		dec_mm_counter(mm, MM_ANONPAGES);
		return pte_mkdirty(pte_mkspecial(pfn_pte(page_to_pfn(kpage),
							 vma->vm_page_prot)));
	}
	folio_get(kfolio);
	folio_add_anon_rmap_pte(kfolio, kpage, vma, addr, RMAP_NONE);
	return mk_pte(kpage, vma->vm_page_prot);
}

/*
 * The second half of a merge, for a PTE that mapped @folio as @pte and has
 * been cleared and flushed: map @kpage at @addr if nothing can write
 * @folio behind the page tables and the bytes are the same, else put @pte
 * back. The page table lock is held.
 */
static int ksm_install_kpage(struct vm_area_struct *vma, unsigned long addr,
			     pte_t *ptep, pte_t pte, struct folio *folio,
			     struct page *kpage)
{
	pte_t newpte;
	int err;

	err = -EBUSY;
	if (!ksm_folio_unpinned(folio))
		goto restore;
	err = -EFAULT;
	if (!ksm_pages_identical(&folio->page, kpage))
		goto restore;
	if (pte_dirty(pte))
		folio_mark_dirty(folio);
	newpte = ksm_make_pte(vma, addr, kpage);
	/* A write must still reach the userfaultfd that protects the page. */
	if (pte_uffd_wp(pte))
		newpte = pte_mkuffd_wp(newpte);
	set_pte_at(vma->vm_mm, addr, ptep, newpte);
	folio_remove_rmap_pte(folio, &folio->page, vma);
	return 0;

restore:
	set_pte_at(vma->vm_mm, addr, ptep, pte);
	return err;
}

/*
 * Point the PTE at @pvmw, which maps @folio, at @kpage if the bytes are
 * the same; one TLB flush in all. The PTE is cleared and flushed under the
 * page table lock and stays clear until the lock is dropped:
 *
 * - no CPU can write @folio through it any more, and a fault on it waits
 *   for the lock, then finds whichever PTE we left;
 * - GUP-fast takes its folio reference first and then re-reads the PTE,
 *   dropping the reference if the PTE changed. A GUP-fast that read the
 *   PTE before the clear either raised the refcount before we read it
 *   (and the merge is refused) or fails. So with the refcount equal to
 *   the mappings, our reference and the swap cache, nothing can write the
 *   page behind the page tables (O_DIRECT, RDMA and vfio pin first), and
 *   the compare that follows is final.
 *
 * On any failure the cleared PTE is put back as it was.
 */
static int ksm_swap_pte(struct page_vma_mapped_walk *pvmw,
			struct folio *folio, struct page *kpage)
{
	struct vm_area_struct *vma = pvmw->vma;
	pte_t pte;

	flush_cache_page(vma, pvmw->address, folio_pfn(folio));
	pte = ptep_clear_flush(vma, pvmw->address, pvmw->pte);
	return ksm_install_kpage(vma, pvmw->address, pvmw->pte, pte, folio,
				 kpage);
}

/*
 * Map @kpage in place of @folio (small, locked) in @vma. The folio's
 * reference from its PTE is dropped here, after the page table lock.
 */
static int ksm_replace_folio(struct vm_area_struct *vma, struct folio *folio,
			     struct page *kpage)
{
	DEFINE_FOLIO_VMA_WALK(pvmw, folio, vma, 0, 0);
	struct mmu_notifier_range range;
	int err = -EFAULT;

	pvmw.address = page_address_in_vma(&folio->page, vma);
	if (pvmw.address == -EFAULT)
		return -EFAULT;

	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, vma->vm_mm,
				pvmw.address, pvmw.address + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	if (!page_vma_mapped_walk(&pvmw))
		goto out_notify;
	if (WARN_ONCE(!pvmw.pte, "ksm: PMD-mapped small folio"))
		err = -EFAULT;
	else
		err = ksm_swap_pte(&pvmw, folio, kpage);
	page_vma_mapped_walk_done(&pvmw);
	if (!err) {
		if (!folio_mapped(folio))
			folio_free_swap(folio);
		folio_put(folio);
	}
out_notify:
	mmu_notifier_invalidate_range_end(&range);
	return err;
}

/*
 * KSM zero pages are PTEs. A walk with only a pte_entry splits every huge
 * PMD on its way; leave those (and THP migration entries) alone instead.
 */
static int ksm_skip_huge_pmd(pmd_t *pmd, unsigned long addr,
			     unsigned long next, struct mm_walk *walk)
{
	pmd_t pmdval = pmdp_get_lockless(pmd);

	if (!pmd_present(pmdval) || pmd_leaf(pmdval))
		walk->action = ACTION_CONTINUE;
	return 0;
}

/**
 * struct ksm_split_range - where a large folio about to be split is mapped
 * @start: the address of its first page in the VMA.
 * @first_pfn: pfn of its first page.
 * @nr_pages: its pages.
 * @mapped: bit i set when @start + i pages mapped a page of the folio.
 *
 * Only there can the split leave zero pages behind (remap_page()); a zero
 * page found elsewhere in the range was mapped before, by a read fault.
 * A large anonymous folio fits in a PMD, so in PTRS_PER_PTE bits.
 */
struct ksm_split_range {
	unsigned long start;
	unsigned long first_pfn;
	unsigned long nr_pages;
	DECLARE_BITMAP(mapped, PTRS_PER_PTE);
};

static int ksm_note_folio_pmd(pmd_t *pmd, unsigned long addr,
			      unsigned long next, struct mm_walk *walk)
{
	struct ksm_split_range *range = walk->private;
	pmd_t pmdval = pmdp_get_lockless(pmd);

	if (pmd_present(pmdval) && !pmd_leaf(pmdval))
		return 0;	/* a page table: look at its PTEs */
	if (pmd_present(pmdval) && pmd_pfn(pmdval) == range->first_pfn)
		bitmap_set(range->mapped, (addr - range->start) >> PAGE_SHIFT,
			   (next - addr) >> PAGE_SHIFT);
	walk->action = ACTION_CONTINUE;
	return 0;
}

static int ksm_note_folio_pte(pte_t *ptep, unsigned long addr,
			      unsigned long next, struct mm_walk *walk)
{
	struct ksm_split_range *range = walk->private;
	pte_t pte = ptep_get(ptep);

	if (pte_present(pte) &&
	    pte_pfn(pte) - range->first_pfn < range->nr_pages)
		__set_bit((addr - range->start) >> PAGE_SHIFT, range->mapped);
	return 0;
}

static const struct mm_walk_ops ksm_note_folio_ops = {
	.pmd_entry = ksm_note_folio_pmd,
	.pte_entry = ksm_note_folio_pte,
	.walk_lock = PGWALK_RDLOCK,
};

static int ksm_claim_zero_pte(pte_t *ptep, unsigned long addr,
			      unsigned long next, struct mm_walk *walk)
{
	struct ksm_split_range *range = walk->private;
	pte_t pte = ptep_get(ptep);

	if (pte_present(pte) && is_zero_pfn(pte_pfn(pte)) && !pte_dirty(pte) &&
	    test_bit((addr - range->start) >> PAGE_SHIFT, range->mapped)) {
		set_pte_at(walk->mm, addr, ptep, pte_mkdirty(pte));
		ksm_map_zero_page(walk->mm);
	}
	return 0;
}

static const struct mm_walk_ops ksm_claim_zero_ops = {
	.pmd_entry = ksm_skip_huge_pmd,
	.pte_entry = ksm_claim_zero_pte,
	.walk_lock = PGWALK_RDLOCK,
};

/*
 * Note in @range where @vma maps the large @folio, whose first page would
 * be at @start: false if the folio does not fit the range's bitmap.
 */
static bool ksm_note_folio_range(struct vm_area_struct *vma,
				 struct folio *folio, unsigned long start,
				 struct ksm_split_range *range)
{
	if (WARN_ON_ONCE(folio_nr_pages(folio) > PTRS_PER_PTE))
		return false;
	range->start = start;
	range->first_pfn = folio_pfn(folio);
	range->nr_pages = folio_nr_pages(folio);
	bitmap_zero(range->mapped, PTRS_PER_PTE);
	walk_page_range_vma(vma, max(start, vma->vm_start),
			    min(start + folio_size(folio), vma->vm_end),
			    &ksm_note_folio_ops, range);
	return true;
}

/*
 * Splitting an anonymous THP maps its zero-filled pages to the shared
 * zero page (see remap_page()). Those pages were freed on KSM's behalf,
 * so they become KSM zero pages: counted in ksm_zero_pages, unshared by
 * MADV_UNMERGEABLE, just as if KSM had merged them one by one. Only where
 * the folio was mapped (@range, noted before the split).
 */
static void ksm_claim_split_zero_pages(struct vm_area_struct *vma,
				       struct ksm_split_range *range)
{
	unsigned long start = max(range->start, vma->vm_start);
	unsigned long end = min(range->start + (range->nr_pages << PAGE_SHIFT),
				vma->vm_end);

	if (start < end)
		walk_page_range_vma(vma, start, end, &ksm_claim_zero_ops, range);
}

/*
 * Split the large folio of locked @page. The lock and the caller's
 * reference follow @page through the split.
 */
static int ksm_split_folio(struct vm_area_struct *vma, struct page *page)
{
	struct folio *folio = page_folio(page);
	unsigned long addr = page_address_in_vma(page, vma);
	struct ksm_split_range range;

	if (addr == -EFAULT || !ksm_huge_may_split(folio))
		return -EBUSY;
	addr -= (unsigned long)folio_page_idx(folio, page) << PAGE_SHIFT;
	if (!ksm_note_folio_range(vma, folio, addr, &range))
		return -EBUSY;
	if (split_huge_page(page))
		return -EBUSY;
	atomic_long_inc(&ksm_ctx.stats.huge_split);
	ksm_claim_split_zero_pages(vma, &range);
	return 0;
}

/*
 * Lock @page's folio and split it if it is large. Returns 0 with the (now
 * small) folio locked.
 */
static int ksm_lock_small(struct vm_area_struct *vma, struct page *page)
{
	if (!PageAnon(page))
		return -EFAULT;
	if (!trylock_page(page))
		return -EBUSY;
	if (PageTransCompound(page) && ksm_split_folio(vma, page)) {
		unlock_page(page);
		return -EBUSY;
	}
	return 0;
}

/*
 * Lock a new KSM folio (not in the stable tree yet) that is about to get
 * one more mapper, and make sure it is dirty (ksm_kfolio_mark_mapped()
 * says why); the lock keeps MADV_FREE from cleaning it until our PTE is
 * in. It is made under ksm_ctx.lock, where nothing waits: trylock only.
 */
static int ksm_kfolio_lock_dirty(struct folio *kfolio)
{
	if (!folio_trylock(kfolio))
		return -EBUSY;
	folio_mark_dirty(kfolio);
	return 0;
}

/*
 * Is @kfolio, found in the stable tree with @node, still @node's folio?
 * The lookup did not lock it, so it may have been migrated meanwhile:
 * migration retires the old folio's ->mapping under the folio lock, and
 * once we have seen it unchanged under that lock, our reference keeps any
 * later migration from completing. The lock is held for the check only,
 * so that threads joining one KSM page do their PTE work side by side.
 */
static int ksm_kfolio_check(struct folio *kfolio,
			    const struct ksm_stable_node *node)
{
	int err = 0;

	lockdep_assert_not_held(&ksm_ctx.lock);
	folio_lock(kfolio);
	if (ksm_folio_node(kfolio) != node)
		err = -EAGAIN;
	folio_unlock(kfolio);
	return err;
}

/*
 * @kfolio, a KSM folio of the stable tree, was just mapped in place of a
 * page: make sure it is dirty, while our reference on it still stands.
 * MADV_FREE by the only mapper of a KSM page makes it clean and lazily
 * freeable, and reclaim drops a clean lazyfree folio from every mapping:
 * the data of a page merged into it would go. Reclaim drops it only when
 * isolation and the mappings hold the only references
 * (try_to_unmap_one()), so not while we hold ours. madvise_free_pte_range()
 * clears the dirty flag under the folio lock and only while the folio has
 * a single mapper: taking that lock here, after our PTE went in, orders
 * us after any clearing that saw one mapper, and any later one sees two.
 */
static void ksm_kfolio_mark_mapped(struct folio *kfolio)
{
	folio_lock(kfolio);
	folio_mark_dirty(kfolio);
	folio_unlock(kfolio);
}

/**
 * ksm_merge_into() - map a KSM page in place of an identical page
 * @vma: the VMA mapping @page.
 * @page: an anonymous page, referenced by the caller.
 * @kpage: a KSM page (or the zero page), referenced by the caller.
 * @node: @kpage's node when it was found in the stable tree; NULL for the
 *        zero page or a KSM page not in the tree yet.
 *
 * Context: @vma's mmap_lock held for read; ksm_ctx.lock held only when
 * @node is NULL.
 * Return: 0 when @page's PTE now maps @kpage, a negative errno otherwise.
 */
int ksm_merge_into(struct vm_area_struct *vma, struct page *page,
		   struct page *kpage, const struct ksm_stable_node *node)
{
	struct folio *kfolio = NULL;
	int err;

	if (page == kpage)	/* a forked KSM page: already merged */
		return 0;
	/* Wait for the KSM folio's lock before taking the page's, not under it. */
	if (node) {
		err = ksm_kfolio_check(page_folio(kpage), node);
		if (err)
			return err;
	}
	err = ksm_lock_small(vma, page);
	if (err)
		return err;
	if (!node && !is_zero_pfn(page_to_pfn(kpage))) {
		kfolio = page_folio(kpage);
		err = ksm_kfolio_lock_dirty(kfolio);
		if (err)
			goto unlock;
	}
	err = ksm_replace_folio(vma, page_folio(page), kpage);
	if (kfolio)
		folio_unlock(kfolio);
unlock:
	unlock_page(page);
	if (node && !err)
		ksm_kfolio_mark_mapped(page_folio(kpage));
	return err;
}

/*
 * Lock the folios of @nr pages mapped at @addrs (one page table) for a
 * group merge. Returns a mask of those locked, small and still mapped
 * where the walk found them; the others get their error in @errs.
 */
static u32 ksm_lock_group(struct vm_area_struct *vma, struct page **pages,
			  const unsigned long *addrs, unsigned int nr,
			  int *errs)
{
	u32 locked = 0;
	unsigned int i;

	for (i = 0; i < nr; i++) {
		struct folio *folio = page_folio(pages[i]);

		errs[i] = -EBUSY;
		if (!folio_trylock(folio))
			continue;
		if (!folio_test_anon(folio) || folio_test_large(folio) ||
		    page_address_in_vma(pages[i], vma) != addrs[i]) {
			folio_unlock(folio);
			continue;
		}
		locked |= BIT(i);
	}
	return locked;
}

/*
 * Under the page table lock at @table (mapping @start onwards), clear the
 * PTEs in @todo that still map their page, saving them in @old; a single
 * TLB flush for all of them follows. Returns the mask of cleared PTEs.
 */
static u32 ksm_clear_group(struct vm_area_struct *vma, pte_t *table,
			   unsigned long start, struct page **pages,
			   const unsigned long *addrs, u32 todo, pte_t *old,
			   int *errs)
{
	unsigned long i, cleared = 0, mask = todo;

	for_each_set_bit(i, &mask, KSM_BATCH) {
		pte_t *ptep = table + ((addrs[i] - start) >> PAGE_SHIFT);
		pte_t pte = ptep_get(ptep);

		errs[i] = -EFAULT;
		if (!pte_present(pte) || pte_pfn(pte) != page_to_pfn(pages[i]))
			continue;
		flush_cache_page(vma, addrs[i], pte_pfn(pte));
		old[i] = ptep_get_and_clear(vma->vm_mm, addrs[i], ptep);
		__set_bit(i, &cleared);
	}
	return cleared;
}

/**
 * ksm_join_pages() - map one KSM page in place of several identical pages
 * @vma: the VMA mapping all the pages, within one page table.
 * @kpage: the KSM page, referenced by the caller; none of @pages.
 * @node: its node, as the stable tree lookup found it.
 * @pages: small anonymous pages, referenced by the caller.
 * @addrs: their addresses, increasing, all in one PMD's range.
 * @nr: how many: 1 to KSM_BATCH.
 * @errs: for each page, 0 when its PTE now maps @kpage, else an errno.
 *
 * ksm_merge_into() for many pages at the cost of one TLB flush: under the
 * page table lock, every PTE is cleared, the range is flushed once, and
 * then each page is checked, compared and replaced as in ksm_swap_pte().
 * Until that flush a CPU may still write a page through a stale TLB
 * entry, which is why nothing is checked or compared before it. After it,
 * ksm_swap_pte()'s argument holds for every cleared PTE: the lock keeps
 * faults out until each PTE is final, and a GUP-fast that read a PTE
 * before it was cleared either raised the folio's refcount before we read
 * it (the page is refused) or sees the PTE change and backs off, so a pin
 * (O_DIRECT, RDMA, vfio) cannot appear behind the compare.
 *
 * Context: @vma's mmap_lock held for read, ksm_ctx.lock not held; may
 * sleep.
 */
void ksm_join_pages(struct vm_area_struct *vma, struct page *kpage,
		    const struct ksm_stable_node *node, struct page **pages,
		    const unsigned long *addrs, unsigned int nr, int *errs)
{
	struct mm_struct *mm = vma->vm_mm;
	unsigned long start = addrs[0], end = addrs[nr - 1] + PAGE_SIZE;
	struct folio *kfolio = page_folio(kpage);
	struct mmu_notifier_range range;
	unsigned long i, locked, cleared = 0;
	pte_t old[KSM_BATCH], *table;
	spinlock_t *ptl;	/* page table lock */
	pmd_t *pmd;

	mmap_assert_locked(mm);
	for (i = 0; i < nr; i++)
		errs[i] = -EBUSY;
	if (WARN_ON_ONCE(nr > KSM_BATCH ||
			 (start & PMD_MASK) != ((end - 1) & PMD_MASK)))
		return;
	if (ksm_kfolio_check(kfolio, node))
		return;
	locked = ksm_lock_group(vma, pages, addrs, nr, errs);
	if (!locked)
		return;

	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, mm, start, end);
	mmu_notifier_invalidate_range_start(&range);
	pmd = mm_find_pmd(mm, start);
	table = pmd ? pte_offset_map_lock(mm, pmd, start, &ptl) : NULL;
	if (table) {
		cleared = ksm_clear_group(vma, table, start, pages, addrs,
					  locked, old, errs);
		if (cleared)
			flush_tlb_range(vma, start, end);
		for_each_set_bit(i, &cleared, KSM_BATCH) {
			pte_t *ptep = table + ((addrs[i] - start) >> PAGE_SHIFT);

			errs[i] = ksm_install_kpage(vma, addrs[i], ptep, old[i],
						    page_folio(pages[i]), kpage);
		}
		pte_unmap_unlock(table, ptl);
	}
	for_each_set_bit(i, &locked, KSM_BATCH) {
		struct folio *folio = page_folio(pages[i]);

		if (!errs[i]) {
			/* The reference of the PTE we replaced. */
			if (!folio_mapped(folio))
				folio_free_swap(folio);
			folio_put(folio);
		}
	}
	mmu_notifier_invalidate_range_end(&range);
	for_each_set_bit(i, &locked, KSM_BATCH)
		folio_unlock(page_folio(pages[i]));
	for_each_set_bit(i, &cleared, KSM_BATCH) {
		if (!errs[i]) {
			ksm_kfolio_mark_mapped(kfolio);
			break;
		}
	}
}

/**
 * ksm_promote_page() - turn an anonymous page into a KSM page, in place
 * @vma: the VMA mapping @page.
 * @page: the page, referenced by the caller.
 *
 * The page keeps its frame and PTE (now read-only); it becomes a KSM folio
 * with no stable node yet, which ksm_stable_insert() gives it.
 *
 * Context: @vma's mmap_lock held for read.
 * Return: 0 or a negative errno.
 */
int ksm_promote_page(struct vm_area_struct *vma, struct page *page)
{
	struct folio *folio;
	int err;

	err = ksm_lock_small(vma, page);
	if (err)
		return err;
	folio = page_folio(page);
	err = ksm_write_protect(vma, folio);
	if (err) {
		folio_unlock(folio);
		return err;
	}
	ksm_folio_set_node(folio, NULL);
	folio_mark_accessed(folio);
	/* Reclaim must swap a KSM page out, never just drop it. */
	if (!folio_test_dirty(folio))
		folio_set_dirty(folio);
	folio_unlock(folio);
	return 0;
}

/**
 * ksm_fresh_frame() - a new KSM page holding a copy of an anonymous page
 * @vma: the VMA mapping @page; the copy is charged to its mm.
 * @page: the page, referenced by the caller.
 *
 * The copy is a KSM folio with no stable node yet, not mapped anywhere,
 * on the LRU; ksm_merge_into() maps it in place of @page (and checks that
 * @page still holds the same bytes once write-protected). A new KSM page
 * in a frame nobody chose keeps a process from deciding, by writing a page
 * it owns, which physical frame other processes' data will end up in.
 *
 * Context: @vma's mmap_lock held for read.
 * Return: the folio with one reference, or NULL without memory.
 */
struct folio *ksm_fresh_frame(struct vm_area_struct *vma, struct page *page)
{
	gfp_t gfp = GFP_HIGHUSER_MOVABLE | __GFP_NORETRY | __GFP_NOWARN;
	struct folio *folio;

	/* Merging per node: the copy must stay in @page's tree. */
	if (!READ_ONCE(ksm_ctx.knobs.merge_across_nodes))
		gfp |= __GFP_THISNODE;
	folio = __folio_alloc_node(gfp, 0, page_to_nid(page));
	if (!folio)
		return NULL;
	/* Never the memcg OOM killer: a merge can wait for another pass. */
	if (mem_cgroup_charge(folio, vma->vm_mm,
			      GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN)) {
		folio_put(folio);
		return NULL;
	}
	/* @page is writable: benign, the merge compares it with the copy. */
	kcsan_disable_current();
	copy_highpage(&folio->page, page);
	kcsan_enable_current();
	__folio_mark_uptodate(folio);
	__folio_set_swapbacked(folio);
	ksm_folio_set_node(folio, NULL);
	/* Reclaim must swap a KSM page out, never just drop it. */
	folio_set_dirty(folio);
	folio_add_lru(folio);
	return folio;
}

/**
 * ksm_merge_zero_page() - map the shared zero page in place of an empty page
 * @vma: the VMA mapping @page.
 * @page: the page, referenced by the caller.
 *
 * Context: @vma's mmap_lock held for read.
 * Return: 0 or a negative errno.
 */
int ksm_merge_zero_page(struct vm_area_struct *vma, struct page *page)
{
	unsigned long addr = page_address_in_vma(page, vma);

	if (addr == -EFAULT)
		return -EFAULT;
	return ksm_merge_into(vma, page, ZERO_PAGE(addr), NULL);
}

static int ksm_count_zero_pte(pte_t *pte, unsigned long addr,
			      unsigned long next, struct mm_walk *walk)
{
	long *nr = walk->private;

	if (is_ksm_zero_pte(ptep_get(pte)))
		(*nr)++;
	return 0;
}

static const struct mm_walk_ops ksm_count_zero_ops = {
	.pmd_entry = ksm_skip_huge_pmd,
	.pte_entry = ksm_count_zero_pte,
	.walk_lock = PGWALK_WRLOCK_VERIFY,
};

/**
 * ksm_zero_pages_inherited() - the KSM zero pages a fork gave the child
 * @oldmm: the parent, whose page tables were just copied.
 *
 * All of the parent's, except those in VMAs fork does not copy. The
 * parent's own count is stable here: fork holds its mmap_lock and has
 * write-locked every VMA, so neither ksmd nor a fault can change it.
 *
 * Context: @oldmm's mmap_lock held for write.
 * Return: the number of KSM zero pages now mapped by the child.
 */
long ksm_zero_pages_inherited(struct mm_struct *oldmm)
{
	VMA_ITERATOR(vmi, oldmm, 0);
	long nr = mm_ksm_zero_pages(oldmm);
	struct vm_area_struct *vma;

	mmap_assert_write_locked(oldmm);
	if (!nr)
		return 0;
	for_each_vma(vmi, vma) {
		long skipped = 0;

		if (!(vma->vm_flags & (VM_DONTCOPY | VM_WIPEONFORK)) ||
		    !vma->anon_vma)
			continue;
		walk_page_range_vma(vma, vma->vm_start, vma->vm_end,
				    &ksm_count_zero_ops, &skipped);
		nr -= skipped;
	}
	return nr;
}

/*
 * Merged pages found by one page table walk: unsharing needs faults,
 * which cannot run under the walk's page table lock, so the walk stops
 * once it has this many and they are unshared before it goes on. One walk
 * per KSM_UNSHARE_BATCH merged pages instead of one per page.
 */
#define KSM_UNSHARE_BATCH	32

struct ksm_find_merged {
	unsigned long addrs[KSM_UNSHARE_BATCH];
	unsigned int nr;
};

/*
 * Does @pte map a KSM page or KSM's zero page, or a KSM page being
 * migrated? The last counts too: mremap() unmerges a range before moving
 * it, and a migration entry it moved would never be restored by the walk
 * that ends the migration, which looks where the mappers merged.
 */
static bool ksm_pte_to_unshare(struct vm_area_struct *vma, unsigned long addr,
			       pte_t pte)
{
	swp_entry_t entry;

	if (pte_present(pte))
		return ksm_pte_is_merged(vma, addr, pte);
	if (pte_none(pte))
		return false;
	entry = pte_to_swp_entry(pte);
	return is_migration_entry(entry) &&
	       PageKsm(pfn_swap_entry_to_page(entry));
}

static int ksm_find_merged_pmd(pmd_t *pmd, unsigned long addr,
			       unsigned long end, struct mm_walk *walk)
{
	struct ksm_find_merged *found = walk->private;
	spinlock_t *ptl;	/* page table lock */
	pte_t *start, *ptep;
	int ret = 0;

	start = pte_offset_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start)
		return 0;	/* a huge or vanished PMD: no KSM page there */
	for (ptep = start; addr < end; ptep++, addr += PAGE_SIZE) {
		if (!ksm_pte_to_unshare(walk->vma, addr, ptep_get(ptep)))
			continue;
		found->addrs[found->nr++] = addr;
		if (found->nr == KSM_UNSHARE_BATCH) {
			ret = 1;
			break;
		}
	}
	pte_unmap_unlock(start, ptl);
	return ret;
}

static const struct mm_walk_ops ksm_find_merged_ops = {
	.pmd_entry = ksm_find_merged_pmd,
	.walk_lock = PGWALK_RDLOCK,
};

/* Does @addr map a KSM page, or a zero page KSM put there? */
static bool ksm_addr_is_merged(struct vm_area_struct *vma, unsigned long addr)
{
	struct folio_walk fw;
	struct folio *folio;
	bool merged;

	folio = folio_walk_start(&fw, vma, addr, FW_MIGRATION | FW_ZEROPAGE);
	if (!folio)
		return false;
	/* KSM folios are small, so fw.pte is valid here. */
	merged = !folio_test_large(folio) &&
		 (folio_test_ksm(folio) || is_ksm_zero_pte(fw.pte));
	folio_walk_end(&fw, vma);
	return merged;
}

/*
 * Give @addr a private copy of its KSM page with unsharing faults. A fault
 * may back out on a race (a concurrent accessed-bit update, say), so keep
 * faulting until the page is private; SIGBUS or SIGSEGV mean the mapping
 * went away under us, which unmaps the KSM page just as well.
 */
static int ksm_unshare_one(struct vm_area_struct *vma, unsigned long addr)
{
	vm_fault_t ret;

	while (ksm_addr_is_merged(vma, addr)) {
		ret = handle_mm_fault(vma, addr,
				      FAULT_FLAG_UNSHARE | FAULT_FLAG_REMOTE,
				      NULL);
		if (ret & VM_FAULT_OOM)
			return -ENOMEM;
		if (ret & (VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV))
			break;
		cond_resched();
	}
	return 0;
}

/**
 * ksm_unmerge_range() - give every merged page in a range back its own copy
 * @vma: a VMA with an anon_vma.
 * @start: first address.
 * @end: end of the range, within @vma.
 * @lock_vma: also write-lock the VMA against per-VMA-lock faults.
 *
 * Context: @vma's mmap_lock held (read or write); may sleep.
 * Return: 0, -ENOMEM, or -ERESTARTSYS on a pending signal.
 */
int ksm_unmerge_range(struct vm_area_struct *vma, unsigned long start,
		      unsigned long end, bool lock_vma)
{
	struct ksm_find_merged found;
	unsigned long addr = start;
	unsigned int i;
	int err;

	if (lock_vma)
		vma_start_write(vma);
	while (addr < end) {
		found.nr = 0;
		walk_page_range_vma(vma, addr, end, &ksm_find_merged_ops,
				    &found);
		for (i = 0; i < found.nr; i++) {
			if (signal_pending(current))
				return -ERESTARTSYS;
			/* Exit frees it all; faulting in would only delay it. */
			if (ksm_mm_exiting(vma->vm_mm))
				return 0;
			err = ksm_unshare_one(vma, found.addrs[i]);
			if (err)
				return err;
		}
		if (found.nr < KSM_UNSHARE_BATCH)
			break;	/* the walk reached @end */
		addr = found.addrs[found.nr - 1] + PAGE_SIZE;
	}
	return 0;
}

/**
 * ksm_unmerge_item() - undo the merge of one item's page
 * @item: the item; its page may or may not still be a KSM page.
 *
 * Context: may sleep; takes the item's mmap_lock for read.
 */
void ksm_unmerge_item(struct ksm_rmap_item *item)
{
	struct mm_struct *mm = item->mm;
	struct vm_area_struct *vma;

	mmap_read_lock(mm);
	vma = ksm_find_vma(mm, ksm_item_addr(item));
	if (vma)
		ksm_unshare_one(vma, ksm_item_addr(item));
	mmap_read_unlock(mm);
}
