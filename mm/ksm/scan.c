// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: the scanner.
 *
 * A pass walks the registered mms in list order and, within each, the
 * mergeable VMAs in address order. The address space of an mm is cut into
 * blocks (KSM_BLOCK_SIZE, aligned); the cursor (ksm_ctx.scan) hands them
 * out one at a time to the ksmd threads, and each block's rmap items form
 * a list of their own (ksm_mm.blocks), so a thread owns the list of the
 * block it claimed and threads never share a cursor.
 *
 * A page of a claimed block is visited in three steps:
 *
 * 1. a page table walk under the mmap_lock finds it (with a reference),
 *    with the pages that follow it (see KSM_BATCH);
 * 2. with no lock held, it gets its rmap item (the block's list belongs
 *    to the thread) and its content is hashed, unless it looks still
 *    merged or due for a smart-scan skip;
 * 3. under ksm_ctx.lock, a page still merged or skipped is done with; any
 *    other is looked up in the stable tree, then in the unstable tree. A
 *    page whose twin is a KSM page, or a page of the unstable tree (which
 *    leaves the tree, claimed), waits for the end of the batch;
 * 4. without ksm_ctx.lock, the pages waiting to join KSM pages are merged,
 *    those that join the same KSM page together, with one TLB flush
 *    (ksm_scan_join_all()), and each page waiting with its twin is
 *    compared with it and made a new KSM page that the twin is merged
 *    into (ksm_scan_pair_all()); ksm_ctx.lock is taken again, briefly, to
 *    record them all in the stable tree.
 *
 * Steps 1, 2 and 4, most of the cost of a page that does not merge and of
 * every merge, run in parallel on as many threads as the ksmd_threads
 * knob asks for; step 3 is one critical section per batch. A claimed twin
 * is found by nobody else: a later page of its content in the same batch
 * follows the pair and joins the new KSM page, and one of another thread
 * is visited again once that thread recorded the page (see
 * ksm_scan_pair_pending()), so the pass ends as a single thread's would.
 *
 * A pass is complete when every block was handed out and no claim is
 * left: full_scans goes up, and the next pass starts with an empty
 * unstable tree. The cursor's ->slot is changed under mm_list_lock,
 * because __ksm_enter() and __ksm_exit() read it to decide where a slot
 * goes.
 */

#include <linux/mm.h>
#include <linux/pagewalk.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/swap.h>

#include "internal.h"
#include <trace/events/ksm.h>

/*
 * Batches: pages collected by one page table walk, up to KSM_BATCH
 * (internal.h), then visited one after the other: one walk, one mmap_lock
 * round trip, one page table lock hold and one hold of ksm_ctx.lock per
 * batch rather than per page.
 *
 * A collected page is a snapshot: by its visit, a write may have changed
 * it in place, and a write fault, reclaim or an unmap may have taken it
 * out of its PTE (a KSM page or one shared since fork is copied by a
 * write). Whatever the visit decides is checked again where it matters: a
 * merge finds the PTE under its lock no longer mapping the page and gives
 * up, a twin found in the unstable tree is looked up anew. What is left is
 * a verdict like "still merged" about a page a write fault copied after
 * the walk; that write is noticed by the next pass. A batch is walked and
 * visited within one pass (the pass waits for every claim), so every pass
 * that starts after a write sees it, batched or not: the promise user
 * space waits for full scans on. Only a large folio is collected alone,
 * first and by a walk that ends with it: a merge may split it, and a split
 * needs our reference to be the only extra one.
 *
 * The batch's reference on a page goes as soon as its visit is over
 * (unless it waits for a merge or for another visit): per thread at most
 * a batch of frames and the twins of its pairs are pinned from migration
 * and compaction at a time, and none that another merge may need to find
 * unreferenced.
 */

/**
 * struct ksm_page_batch - anonymous pages found by one walk
 * @nr: pages collected.
 * @max: how many the walk may collect.
 * @next: address where the walk stopped.
 * @addr: user address of each page.
 * @page: each page, with a reference on its folio.
 */
struct ksm_page_batch {
	unsigned int nr;
	unsigned int max;
	unsigned long next;
	unsigned long addr[KSM_BATCH];
	struct page *page[KSM_BATCH];
};

/**
 * struct ksm_batch_wait - what a page of a batch waits for after the visits
 * @kfolio: the KSM folio the page joins, found in the stable tree; the
 *          batch holds a reference on it.
 * @node: its node, as the lookup found it.
 * @twin: the item of the page's twin in the unstable tree, in state
 *        KSM_ITEM_MERGING: out of the table, and freed by nobody else
 *        until the pair is recorded (see ksm_rmap_item_free()).
 * @twin_page: the twin's page, referenced.
 * @domain: the merge domain the new KSM page goes to.
 * @leader: the page of the batch whose new KSM page this one joins.
 *
 * @kfolio and @node when the page joins a KSM page, @twin, @twin_page and
 * @domain when it makes a new one with its twin, @leader when it is to
 * join one that an earlier page of the batch makes.
 */
struct ksm_batch_wait {
	union {
		struct {
			struct folio *kfolio;
			struct ksm_stable_node *node;
		};
		struct {
			struct ksm_rmap_item *twin;
			struct page *twin_page;
			u64 domain;
		};
		unsigned int leader;
	};
};

/**
 * struct ksm_visit_batch - a batch of pages and what their visits need
 * @walk: the pages.
 * @item: each page's rmap item (NULL without memory).
 * @content: each page's content hash, where @hashed says so.
 * @hashed: bit i set when @content[i] is valid.
 * @is_new: bit i set when @item[i] is new and not yet counted.
 * @joins: bit i set when page i waits to join a KSM page (@wait[i]).
 * @pairs: bit i set when page i waits to make a new KSM page with its
 *         twin (@wait[i]).
 * @followers: bit i set when page i waits to join the KSM page that a
 *             pair of the batch makes (@wait[i]); a join once it is made.
 * @retry: bit i set when page i is to be visited again once another
 *         thread made the KSM page of its content (see
 *         ksm_scan_pair_pending()).
 * @retry_after: the value of ksm_ctx.scan.pairs_done to wait past first.
 * @pair_keys: one bit for the key of each page in @pairs, picked by
 *             ksm_scan_pair_key_bit(): a clear bit means no such pair.
 * @wait: what page i waits for, where @joins, @pairs or @followers says.
 * @pairing: link on ksm_ctx.scan.pairing while @pairs is not empty.
 * @stale: items of the block that no longer have a page, to be freed.
 *
 * Pages of one batch lie in one block, so under one page table: those that
 * join the same KSM page are merged together by ksm_join_pages(), with one
 * TLB flush rather than one per page. When the merged process runs on
 * another CPU every flush interrupts it, and that interrupt is most of
 * what a merge costs. Both kinds of merge run after the visits, without
 * ksm_ctx.lock.
 */
struct ksm_visit_batch {
	struct ksm_page_batch walk;
	struct ksm_rmap_item *item[KSM_BATCH];
	u64 content[KSM_BATCH];
	u32 hashed;
	u32 is_new;
	u32 joins;
	u32 pairs;
	u32 followers;
	u32 retry;
	unsigned long retry_after;
	u64 pair_keys;
	struct ksm_batch_wait wait[KSM_BATCH];
	struct list_head pairing;
	struct ksm_rmap_item *stale;
};

/* A page ksmd may look at: anonymous memory in ordinary RAM. */
static struct folio *ksm_scan_candidate(struct page *page)
{
	struct folio *folio;

	if (!page)
		return NULL;
	folio = page_folio(page);
	if (!folio_test_anon(folio) || folio_is_zone_device(folio))
		return NULL;
	return folio;
}

/*
 * Add @page to the batch; a page that must go alone (see KSM_BATCH) only
 * as the first page, and then it closes the batch. Returns true when the
 * walk must stop.
 */
static bool ksm_batch_add(struct ksm_page_batch *batch, struct page *page,
			  unsigned long addr)
{
	struct folio *folio = page_folio(page);
	bool alone = folio_test_large(folio);

	if (alone && batch->nr) {
		batch->next = addr;
		return true;
	}
	folio_get(folio);
	batch->addr[batch->nr] = addr;
	batch->page[batch->nr++] = page;
	if (alone)
		batch->max = batch->nr;
	if (batch->nr == batch->max) {
		batch->next = addr + PAGE_SIZE;
		return true;
	}
	return false;
}

/* Collect from a PMD-mapped folio; -EAGAIN if it is no longer one. */
static int ksm_batch_huge_pmd(pmd_t *pmd, unsigned long addr,
			      struct mm_walk *walk)
{
	struct page *page;
	spinlock_t *ptl;	/* PMD lock */
	pmd_t pmdval;
	int ret = -EAGAIN;

	ptl = pmd_lock(walk->mm, pmd);
	pmdval = pmdp_get(pmd);
	if (pmd_present(pmdval) && pmd_leaf(pmdval)) {
		ret = 0;
		page = vm_normal_page_pmd(walk->vma, addr, pmdval);
		if (ksm_scan_candidate(page)) {
			page += (addr & ~PMD_MASK) >> PAGE_SHIFT;
			ret = ksm_batch_add(walk->private, page, addr);
		}
	}
	spin_unlock(ptl);
	return ret;
}

static int ksm_batch_pmd_entry(pmd_t *pmd, unsigned long addr,
			       unsigned long end, struct mm_walk *walk)
{
	struct ksm_page_batch *batch = walk->private;
	pte_t *start, *ptep;
	spinlock_t *ptl;	/* page table lock */
	int stop = 0;

	if (ksm_mm_exiting(walk->mm))
		return 1;
	cond_resched();
	if (IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE) &&
	    pmd_leaf(pmdp_get_lockless(pmd))) {
		stop = ksm_batch_huge_pmd(pmd, addr, walk);
		if (stop != -EAGAIN)
			return stop;
		stop = 0;
	}

	start = pte_offset_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start)
		return 0;
	for (ptep = start; addr < end; ptep++, addr += PAGE_SIZE) {
		pte_t pte = ptep_get(ptep);
		struct page *page;

		if (!pte_present(pte))
			continue;
		page = vm_normal_page(walk->vma, addr, pte);
		if (!ksm_scan_candidate(page))
			continue;
		stop = ksm_batch_add(batch, page, addr);
		if (stop)
			break;
	}
	pte_unmap_unlock(start, ptl);
	return stop;
}

static const struct mm_walk_ops ksm_batch_ops = {
	.pmd_entry = ksm_batch_pmd_entry,
	.walk_lock = PGWALK_RDLOCK,
};

/*
 * Collect up to @batch->max anonymous pages of @mm in mergeable VMAs at or
 * after *@from and before @end, in address order, and move *@from past the
 * last. The pages come with a reference each. Returns how many; none when
 * there are none left. The walk skips unpopulated page tables whole, so
 * holes cost little.
 */
static unsigned int ksm_find_pages(struct mm_struct *mm, unsigned long *from,
				   unsigned long end,
				   struct ksm_page_batch *batch)
{
	VMA_ITERATOR(vmi, mm, *from);
	struct vm_area_struct *vma;
	unsigned long stop;

	batch->nr = 0;
	mmap_read_lock(mm);
	for_each_vma_range(vmi, vma, end) {
		if (ksm_mm_exiting(mm))
			break;
		if (!(vma->vm_flags & VM_MERGEABLE) || !vma->anon_vma)
			continue;
		stop = min(vma->vm_end, end);
		batch->next = stop;
		walk_page_range_vma(vma, max(*from, vma->vm_start), stop,
				    &ksm_batch_ops, batch);
		*from = batch->next;
		/* Stopped before the VMA's end: full, or a page goes alone. */
		if (batch->next < stop || batch->nr == batch->max)
			break;
	}
	mmap_read_unlock(mm);
	return batch->nr;
}

/*
 * The first anonymous page of @mm in a mergeable VMA at or after *@from,
 * as ksm_find_pages(); its address in *@addr. NULL when there is none.
 * Not inlined: its batch would add to ksm_scan_batch()'s stack frame.
 */
static noinline_for_stack struct page *
ksm_find_page(struct mm_struct *mm, unsigned long *from, unsigned long end,
	      unsigned long *addr)
{
	struct ksm_page_batch batch = { .max = 1 };

	if (!ksm_find_pages(mm, from, end, &batch))
		return NULL;
	*addr = batch.addr[0];
	return batch.page[0];
}

/* The next pages of @claim's block, as ksm_find_pages(). */
static unsigned int ksm_claim_next_pages(struct ksm_claim *claim,
					 struct ksm_page_batch *batch)
{
	if (ksm_find_pages(claim->slot->slot.mm, &claim->address, claim->end,
			   batch))
		return batch->nr;
	claim->address = claim->end;
	return 0;
}

/* Index of @claim's block in its mm's ->blocks. */
static unsigned long ksm_claim_index(const struct ksm_claim *claim)
{
	return (claim->end - 1) >> KSM_BLOCK_SHIFT;
}

/* Take up @claim's block list, the cursor at claim->address. */
static void ksm_claim_load(struct ksm_claim *claim)
{
	struct ksm_rmap_item **link;

	ksm_assert_locked();
	claim->head = xa_load(&claim->slot->blocks, ksm_claim_index(claim));
	link = &claim->head;
	while (*link && ksm_item_addr(*link) < claim->address)
		link = &(*link)->next;
	claim->link = link;
}

/*
 * Put @claim's block list back where everybody finds it. Without memory
 * for a new entry, the block's items are dropped: they are made again on
 * the next visit.
 */
static void ksm_claim_store(struct ksm_claim *claim)
{
	struct xarray *blocks = &claim->slot->blocks;
	void *old;

	ksm_assert_locked();
	if (!claim->head) {
		xa_erase(blocks, ksm_claim_index(claim));
		return;
	}
	old = xa_store(blocks, ksm_claim_index(claim), claim->head,
		       GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN);
	if (xa_is_err(old))
		ksm_rmap_list_free(&claim->head);
}

/* An item's address, read while another thread may change its state bits. */
static unsigned long ksm_item_addr_racy(const struct ksm_rmap_item *item)
{
	/* Benign: ->vpn never changes; only the state bits next to it do. */
	return data_race(ksm_item_addr(item));
}

/*
 * The item for @addr: the claim's next item, or a new one linked in its
 * place (*@is_new is then set; it still has to be counted). Items before
 * @addr no longer have a page: they are unlinked and handed back in
 * *@stale, for the caller to free under ksm_ctx.lock. NULL without memory.
 *
 * No lock is needed: only the thread holding the claim changes the
 * block's list, and nobody else can reach a new item yet.
 */
static struct ksm_rmap_item *ksm_claim_item_at(struct ksm_claim *claim,
					       unsigned long addr,
					       struct ksm_rmap_item **stale,
					       bool *is_new)
{
	struct ksm_rmap_item *item = *claim->link, *last;

	*stale = NULL;
	*is_new = false;
	if (item && ksm_item_addr_racy(item) < addr) {
		last = item;
		while (last->next && ksm_item_addr_racy(last->next) < addr)
			last = last->next;
		*stale = item;
		*claim->link = last->next;
		last->next = NULL;
	}
	item = *claim->link;
	if (!item || ksm_item_addr_racy(item) != addr) {
		item = ksm_rmap_item_new(claim->slot->slot.mm, addr);
		if (!item)
			return NULL;
		*is_new = true;
		item->next = *claim->link;
		*claim->link = item;
	}
	claim->link = &item->next;
	return item;
}

static bool ksm_scan_start_pass(void)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;
	struct ksm_mm *first;

	spin_lock(&ksm_ctx.mm_list_lock);
	first = list_first_entry_or_null(&ksm_ctx.mm_head.slot.mm_node,
					 struct ksm_mm, slot.mm_node);
	if (first)
		WRITE_ONCE(cur->slot, first);
	spin_unlock(&ksm_ctx.mm_list_lock);
	if (!first)
		return false;

	cur->address = 0;
	cur->open = true;
	/*
	 * Freshly faulted pages can sit in per-CPU LRU batches for a long
	 * time; the reference those hold would make every merge of them
	 * fail the pin check.
	 */
	lru_add_drain_all();
	ksm_unstable_reset();
	if (time_after_eq(jiffies, ksm_ctx.last_prune +
			  msecs_to_jiffies(ksm_ctx.knobs.prune_millisecs))) {
		ksm_stable_prune();
		ksm_ctx.last_prune = jiffies;
	}
	ksm_advisor_pass_start();
	trace_ksm_start_scan(cur->full_scans, ksm_ctx.stats.rmap_items);
	return true;
}

/*
 * Count the pass as complete if it is: every block handed out, none still
 * claimed or parked. Returns true when it did.
 */
static bool ksm_scan_try_end_pass(void)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;

	if (!cur->open || cur->slot != &ksm_ctx.mm_head || cur->nr_active ||
	    cur->nr_parked)
		return false;
	WRITE_ONCE(cur->open, false);
	cur->full_scans++;
	trace_ksm_stop_scan(cur->full_scans, ksm_ctx.stats.rmap_items);
	ksm_advisor_pass_end();
	wake_up_all(&ksm_ctx.pass_wait);
	return true;
}

/**
 * ksm_scan_pass_draining() - must a thread wait for the others?
 *
 * True while every block of the pass is handed out, none is parked and
 * some thread still scans its block. Read without locks, as a wait
 * condition: the thread that changes any of it wakes ksm_ctx.pass_wait.
 *
 * Return: true when a thread asking for a block now would get none.
 */
bool ksm_scan_pass_draining(void)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;

	return READ_ONCE(cur->open) && READ_ONCE(cur->slot) == &ksm_ctx.mm_head &&
	       !READ_ONCE(cur->nr_parked) && READ_ONCE(cur->nr_active);
}

/* Leave the cursor's mm; reap it if it exited and nobody holds a block. */
static void ksm_scan_next_mm(void)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;
	struct ksm_mm *slot = cur->slot, *next;
	struct mm_struct *mm = slot->slot.mm;
	bool reap;

	spin_lock(&ksm_ctx.mm_list_lock);
	next = list_next_entry(slot, slot.mm_node);
	WRITE_ONCE(cur->slot, next);
	reap = ksm_mm_exiting(mm) && !slot->claims;
	if (reap) {
		hash_del(&slot->slot.hash);
		list_del(&slot->slot.mm_node);
	}
	spin_unlock(&ksm_ctx.mm_list_lock);

	cur->address = 0;
	if (reap) {
		ksm_mm_items_free(slot, 0, ULONG_MAX);
		ksm_mm_free(slot);
		clear_bit(MMF_VM_MERGE_ANY, &mm->flags);
		clear_bit(MMF_VM_MERGEABLE, &mm->flags);
		mmdrop(mm);
	}
}

/* Count a claim (active or parked) on @slot in or out; see __ksm_exit(). */
static void ksm_slot_claims_add(struct ksm_mm *slot, int delta)
{
	spin_lock(&ksm_ctx.mm_list_lock);
	slot->claims += delta;
	spin_unlock(&ksm_ctx.mm_list_lock);
}

/*
 * Claim the next block of the cursor's mm that has a page to visit. Items
 * of the blocks passed over are freed: they have no page left to
 * visit. Returns false when the mm has no such block left.
 */
static bool ksm_scan_next_block(struct ksm_claim *claim)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;
	struct ksm_mm *slot = cur->slot;
	unsigned long from = cur->address, start = ULONG_MAX, addr;
	struct page *page;

	/* The block of the next page: blocks without any are not handed out. */
	page = ksm_find_page(slot->slot.mm, &from, ULONG_MAX, &addr);
	if (page) {
		start = addr & KSM_BLOCK_MASK;
		put_page(page);
	}

	if (start != cur->address)
		ksm_mm_items_free(slot, cur->address,
				  start == ULONG_MAX ? ULONG_MAX : start - 1);
	if (start == ULONG_MAX)
		return false;

	cur->address = start + KSM_BLOCK_SIZE;
	ksm_slot_claims_add(slot, 1);
	claim->slot = slot;
	claim->address = start;
	claim->end = start + KSM_BLOCK_SIZE;
	return true;
}

/*
 * Give @claim a block to scan: a parked one first, else the next one of
 * the pass, starting a pass if none is open.
 *
 * Returns 0; -EAGAIN when every block of the pass is handed out but other
 * threads still scan theirs; -ENOENT when no mm is registered or the pass
 * just ended.
 */
static int ksm_claim_get(struct ksm_claim *claim)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;

	ksm_assert_locked();
	if (cur->nr_parked) {
		WRITE_ONCE(cur->nr_parked, cur->nr_parked - 1);
		*claim = cur->parked[cur->nr_parked];
		goto claimed;
	}
	if (!cur->open && !ksm_scan_start_pass())
		return -ENOENT;
	while (cur->slot != &ksm_ctx.mm_head) {
		if (ksm_scan_next_block(claim))
			goto claimed;
		ksm_scan_next_mm();
	}
	return ksm_scan_try_end_pass() ? -ENOENT : -EAGAIN;

claimed:
	WRITE_ONCE(cur->nr_active, cur->nr_active + 1);
	ksm_claim_load(claim);
	return 0;
}

/* Drop a claim whose slot no longer needs keeping for it. */
static void ksm_claim_drop(struct ksm_claim *claim)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;

	ksm_slot_claims_add(claim->slot, -1);
	claim->slot = NULL;
	WRITE_ONCE(cur->nr_active, cur->nr_active - 1);
	ksm_scan_try_end_pass();
}

/* The block is done: items beyond its last page go, the list goes back. */
static void ksm_claim_finish(struct ksm_claim *claim)
{
	ksm_assert_locked();
	ksm_rmap_list_free(claim->link);
	ksm_claim_store(claim);
	ksm_claim_drop(claim);
}

/* Out of budget mid-block: leave the rest of the block to any thread. */
static void ksm_claim_park(struct ksm_claim *claim)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;

	ksm_assert_locked();
	if (WARN_ON_ONCE(cur->nr_parked == KSM_MAX_THREADS)) {
		ksm_claim_finish(claim);
		return;
	}
	ksm_claim_store(claim);
	cur->parked[cur->nr_parked] = *claim;
	WRITE_ONCE(cur->nr_parked, cur->nr_parked + 1);
	WRITE_ONCE(cur->nr_active, cur->nr_active - 1);
	claim->slot = NULL;
	wake_up_all(&ksm_ctx.pass_wait);
}

/* Forget every parked claim (run=2 walks and frees all lists itself). */
static void ksm_scan_unpark_all(void)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;

	while (cur->nr_parked) {
		WRITE_ONCE(cur->nr_parked, cur->nr_parked - 1);
		ksm_slot_claims_add(cur->parked[cur->nr_parked].slot, -1);
	}
}

/*
 * @item's page was just merged in @vma: pin the VMA's anon_vma, through
 * which rmap walks of the KSM page find its mappings, and the page's
 * place in the VMA's layout, which narrows those walks to one offset.
 */
static void ksm_item_pin_vma(struct ksm_rmap_item *item,
			     struct vm_area_struct *vma)
{
	item->anon_vma = vma->anon_vma;
	get_anon_vma(item->anon_vma);
	ksm_item_set_pgoff(item, vma);
}

/*
 * Under @item's mmap_lock, map @kpage, a KSM page not in the stable tree
 * yet, in place of @page, or turn @page itself into a new KSM page when
 * @kpage is NULL. On success the item pins its VMA (ksm_item_pin_vma()).
 */
static int ksm_item_merge(struct ksm_rmap_item *item, struct page *page,
			  struct page *kpage)
{
	struct mm_struct *mm = item->mm;
	struct vm_area_struct *vma;
	int err = -EFAULT;

	mmap_read_lock(mm);
	vma = ksm_find_vma(mm, ksm_item_addr(item));
	if (vma)
		err = kpage ? ksm_merge_into(vma, page, kpage, NULL) :
			      ksm_promote_page(vma, page);
	if (!err)
		ksm_item_pin_vma(item, vma);
	mmap_read_unlock(mm);
	return err;
}

/* Undo a merge nobody records: a KSM page nobody tracks must go. */
static void ksm_scan_unmerge(struct ksm_rmap_item *item)
{
	put_anon_vma(item->anon_vma);
	item->anon_vma = NULL;
	item->pgoff_delta = 0;
	item->hashed = 0;	/* the pinned VMA overwrote the table fields */
	ksm_unmerge_item(item);
}

/*
 * Merge the pages @group of @batch, joins of one KSM page within one page
 * table, with one ksm_join_pages() per VMA they lie in, and pin the VMA of
 * each page merged. A page of a large folio (split first) or a KSM page
 * (forked: merged already) is a group of its own, merged as one.
 */
static void ksm_scan_merge_group(struct mm_struct *mm,
				 struct ksm_visit_batch *batch,
				 unsigned long group, int *errs)
{
	unsigned int first = __ffs(group), nr = 0, i, bit, start, end;
	struct ksm_stable_node *node = batch->wait[first].node;
	struct folio *kfolio = batch->wait[first].kfolio;
	struct ksm_rmap_item *items[KSM_BATCH];
	unsigned long addrs[KSM_BATCH];
	struct page *pages[KSM_BATCH];
	struct vm_area_struct *vma;
	int group_errs[KSM_BATCH];

	for_each_set_bit(i, &group, KSM_BATCH) {
		items[nr] = batch->item[i];
		pages[nr] = batch->walk.page[i];
		addrs[nr] = batch->walk.addr[i];
		group_errs[nr++] = -EFAULT;
	}
	for (start = 0; start < nr; start = end) {
		vma = ksm_find_vma(mm, addrs[start]);
		for (end = start + 1;
		     vma && end < nr && addrs[end] < vma->vm_end; end++)
			;
		if (!vma)
			continue;
		if (nr == 1)
			group_errs[0] = ksm_merge_into(vma, pages[0],
						       &kfolio->page, node);
		else
			ksm_join_pages(vma, &kfolio->page, node, pages + start,
				       addrs + start, end - start,
				       group_errs + start);
		for (i = start; i < end; i++)
			if (!group_errs[i])
				ksm_item_pin_vma(items[i], vma);
	}
	i = 0;
	for_each_set_bit(bit, &group, KSM_BATCH) {
		errs[bit] = group_errs[i];
		trace_ksm_merge_with_ksm_page(kfolio, page_to_pfn(pages[i]),
					      items[i], mm, group_errs[i]);
		i++;
	}
}

/* Must page @page join its KSM page alone (see ksm_scan_merge_group())? */
static bool ksm_scan_joins_alone(struct page *page)
{
	struct folio *folio = page_folio(page);

	return folio_test_large(folio) || folio_test_ksm(folio);
}

/*
 * The next group of joins among @todo, pages of @batch, to merge with one
 * TLB flush: joins of the first one's KSM page, small, not KSM, and within
 * KSM_BATCH pages of addresses, so that what the group invalidates in a
 * secondary MMU (KVM) and flushes stays about the size of its pages,
 * however sparse the block.
 */
static unsigned long ksm_scan_next_group(struct ksm_visit_batch *batch,
					 unsigned long todo)
{
	unsigned int first = __ffs(todo), i;
	unsigned long limit = batch->walk.addr[first] + KSM_BATCH * PAGE_SIZE;
	unsigned long group = BIT(first);

	if (ksm_scan_joins_alone(batch->walk.page[first]))
		return group;
	for_each_set_bit(i, &todo, KSM_BATCH) {
		if (batch->walk.addr[i] >= limit)
			break;
		if (batch->wait[i].kfolio == batch->wait[first].kfolio &&
		    !ksm_scan_joins_alone(batch->walk.page[i]))
			group |= BIT(i);
	}
	return group;
}

/*
 * Lock @kfolio under ksm_ctx.lock without sleeping on it there: merges
 * hold it without ksm_ctx.lock, so the engine lock is dropped while they
 * finish.
 */
static void ksm_scan_lock_kfolio(struct folio *kfolio)
{
	ksm_assert_locked();
	while (!folio_trylock(kfolio)) {
		mutex_unlock(&ksm_ctx.lock);
		folio_wait_locked(kfolio);
		mutex_lock(&ksm_ctx.lock);
	}
}

/*
 * Record the pages @joins of @batch, which all joined one KSM page, as its
 * mappers where merged (@errs[i] is 0).
 */
static void ksm_scan_record_joins(struct ksm_visit_batch *batch,
				  unsigned long joins, const int *errs)
{
	unsigned int first = __ffs(joins), i;
	struct ksm_stable_node *node = batch->wait[first].node;
	struct folio *kfolio = batch->wait[first].kfolio;
	unsigned long undo = 0;
	bool live;

	ksm_scan_lock_kfolio(kfolio);
	/*
	 * A merge checked the node under this lock and our reference keeps
	 * migration away since; it only changes when nothing merged.
	 */
	live = ksm_folio_node(kfolio) == node;
	for_each_set_bit(i, &joins, KSM_BATCH) {
		if (errs[i])
			continue;
		if (live && !ksm_stable_make_room(node))
			ksm_stable_add_item(node, batch->item[i]);
		else
			__set_bit(i, &undo);
	}
	folio_unlock(kfolio);
	ksm_stable_join_end(node, hweight_long(joins));
	for_each_set_bit(i, &undo, KSM_BATCH)
		ksm_scan_unmerge(batch->item[i]);
}

/*
 * Merge the pages of @batch that wait to join KSM pages found in the
 * stable tree, record them, and drop the batch's references on them and
 * on their KSM folios. The merges, most of what a batch of
 * duplicates costs, run without ksm_ctx.lock: they touch only the pages,
 * under their folio locks and the page table lock, and the items, which
 * are in no tree and on the thread's own block list. Not inlined: its
 * arrays would add to ksm_scan_batch()'s stack frame.
 */
static noinline_for_stack void ksm_scan_join_all(struct ksm_visit_batch *batch)
{
	unsigned long todo = batch->joins, group;
	struct mm_struct *mm = batch->item[__ffs(todo)]->mm;
	int errs[KSM_BATCH];
	unsigned int i;

	mmap_read_lock(mm);
	while (todo) {
		group = ksm_scan_next_group(batch, todo);
		ksm_scan_merge_group(mm, batch, group, errs);
		todo &= ~group;
	}
	mmap_read_unlock(mm);

	mutex_lock(&ksm_ctx.lock);
	todo = batch->joins;
	while (todo) {
		group = 0;
		for_each_set_bit(i, &todo, KSM_BATCH)
			if (batch->wait[i].kfolio == batch->wait[__ffs(todo)].kfolio)
				group |= BIT(i);
		ksm_scan_record_joins(batch, group, errs);
		todo &= ~group;
	}
	mutex_unlock(&ksm_ctx.lock);

	/* Most of these frees a merged page: not under the engine lock. */
	todo = batch->joins;
	for_each_set_bit(i, &todo, KSM_BATCH) {
		put_page(batch->walk.page[i]);
		folio_put(batch->wait[i].kfolio);
	}
}

/*
 * Page @i of @batch is to join @kfolio, of @node (referenced; the
 * reference goes to the batch): it waits until the batch's visits are
 * over, counted as a mapper of @node meanwhile.
 */
static void ksm_scan_join_later(struct ksm_visit_batch *batch, unsigned int i,
				struct folio *kfolio,
				struct ksm_stable_node *node)
{
	ksm_stable_join_begin(node);
	batch->wait[i].kfolio = kfolio;
	batch->wait[i].node = node;
	batch->joins |= BIT(i);
}

/*
 * Like ksm_item_merge() with no KSM page yet, but map a copy of @page in a
 * freshly allocated frame (see the fresh_frames knob). Returns the new KSM
 * folio, referenced, in *@kfolio.
 */
static int ksm_item_merge_fresh(struct ksm_rmap_item *item, struct page *page,
				struct folio **kfolio)
{
	struct mm_struct *mm = item->mm;
	struct vm_area_struct *vma;
	int err = -EFAULT;

	*kfolio = NULL;
	mmap_read_lock(mm);
	vma = ksm_find_vma(mm, ksm_item_addr(item));
	if (vma) {
		*kfolio = ksm_fresh_frame(vma, page);
		err = *kfolio ? ksm_merge_into(vma, page, &(*kfolio)->page,
						NULL) : -ENOMEM;
	}
	if (!err)
		ksm_item_pin_vma(item, vma);
	mmap_read_unlock(mm);
	if (err && *kfolio) {
		folio_put(*kfolio);
		*kfolio = NULL;
	}
	return err;
}

/*
 * Make the first mapper of a new KSM page: @page itself is promoted, or
 * with fresh_frames a copy of it in a new frame. Returns the KSM folio,
 * referenced, or NULL.
 */
static struct folio *ksm_scan_new_kfolio(struct ksm_rmap_item *item,
					 struct page *page)
{
	struct folio *kfolio;
	int err;

	if (READ_ONCE(ksm_ctx.knobs.fresh_frames)) {
		err = ksm_item_merge_fresh(item, page, &kfolio);
	} else {
		err = ksm_item_merge(item, page, NULL);
		kfolio = page_folio(page);
		if (!err)
			folio_get(kfolio);
	}
	trace_ksm_merge_one_page(page_to_pfn(page), item, item->mm, err);
	return err ? NULL : kfolio;
}

/* The bit of ksm_visit_batch.pair_keys for a pair of @hash in tree @nid. */
static u64 ksm_scan_pair_key_bit(u64 hash, int nid)
{
	return BIT_ULL((hash ^ nid) & 63);
}

/*
 * Page @i of @batch is to make a new KSM page with @twin, whose page
 * @twin_page is referenced (the reference goes to the batch): the twin
 * leaves the unstable tree, claimed until the batch records the pair.
 */
static void ksm_scan_pair_later(struct ksm_visit_batch *batch, unsigned int i,
				struct ksm_rmap_item *twin,
				struct page *twin_page, u64 domain)
{
	if (!batch->pairs) {
		list_add(&batch->pairing, &ksm_ctx.scan.pairing);
		batch->pair_keys = 0;
	}
	batch->pair_keys |= ksm_scan_pair_key_bit(batch->item[i]->hash,
						  batch->item[i]->nid);
	ksm_rmap_item_forget(twin);
	ksm_rmap_item_claim(twin);
	/* The twin's mm may exit meanwhile; its mm_struct must not go. */
	mmgrab(twin->mm);
	batch->wait[i].twin = twin;
	batch->wait[i].twin_page = twin_page;
	batch->wait[i].domain = domain;
	batch->pairs |= BIT(i);
}

/*
 * Is the new KSM page that page @p of @batch makes with its twin one of
 * hash @hash in tree @nid? Safe while the batch's thread merges: that
 * pins the item's VMA over ->chain and ->nid, never over ->hash, and our
 * reference keeps the page on its node.
 */
static bool ksm_scan_pair_key_is(struct ksm_visit_batch *batch,
				 unsigned int p, u64 hash, int nid)
{
	return batch->item[p]->hash == hash &&
	       ksm_tree_index(page_to_nid(batch->walk.page[p])) == nid;
}

/* Pages of @batch that follow page @p (see ksm_scan_follow_pair()). */
static unsigned int ksm_scan_nr_followers(struct ksm_visit_batch *batch,
					  unsigned int p)
{
	unsigned long followers = batch->followers;
	unsigned int i, nr = 0;

	for_each_set_bit(i, &followers, KSM_BATCH)
		nr += batch->wait[i].leader == p;
	return nr;
}

/*
 * Does an earlier page of @batch, of hash @hash in page @i's tree, wait to
 * make a new KSM page with its twin? Then page @i joins that page once it
 * is made, rather than pairing with a third page of the content into a
 * second KSM page: the twin left the unstable tree, and the new page is
 * not in the stable tree yet. Not beyond max_page_sharing mappers: later
 * pages of the content pair among themselves, as they would with a full
 * KSM page in the stable tree. O(KSM_BATCH).
 */
static bool ksm_scan_follow_pair(struct ksm_visit_batch *batch,
				 unsigned int i, u64 hash)
{
	int nid = ksm_tree_index(page_to_nid(batch->walk.page[i]));
	unsigned int max = READ_ONCE(ksm_ctx.knobs.max_page_sharing);
	unsigned long pairs = batch->pairs;
	unsigned int p;

	for_each_set_bit(p, &pairs, KSM_BATCH) {
		if (!ksm_scan_pair_key_is(batch, p, hash, nid))
			continue;
		/* The pair itself is two mappers. */
		if (2 + ksm_scan_nr_followers(batch, p) >= max)
			continue;
		batch->item[i]->nid = nid;
		batch->wait[i].leader = p;
		batch->followers |= BIT(i);
		return true;
	}
	return false;
}

/*
 * Is another thread making a new KSM page of hash @hash in tree @nid right
 * now? Then a page of the content is visited again once that page is
 * made, as if it had waited for ksm_ctx.lock behind it: it would neither
 * find the twin the other thread took out of the unstable tree, nor the
 * new page in the stable tree, and would wait a pass in the unstable tree
 * (or pair with a third page into a second KSM page, which the stable
 * tree refuses, see ksm_stable_insert()). O(threads): a batch's summary
 * of its pairs' keys spares most looks at the pairs themselves.
 */
static bool ksm_scan_pair_pending(struct ksm_visit_batch *batch, u64 hash,
				  int nid)
{
	struct ksm_visit_batch *other;
	unsigned long pairs;
	unsigned int p;

	ksm_assert_locked();
	list_for_each_entry(other, &ksm_ctx.scan.pairing, pairing) {
		if (other == batch ||
		    !(other->pair_keys & ksm_scan_pair_key_bit(hash, nid)))
			continue;
		pairs = other->pairs;
		for_each_set_bit(p, &pairs, KSM_BATCH)
			if (ksm_scan_pair_key_is(other, p, hash, nid))
				return true;
	}
	return false;
}

/*
 * Make a new KSM page of @page, of @item, and the twin @wait found for it:
 * compare the two, turn @page into a KSM page (or copy it into a fresh
 * frame) and map that in place of the twin. Without ksm_ctx.lock: @item
 * is in no tree and on the thread's own block list, the twin is claimed.
 * Returns 0 when both pages map the new KSM page, -ESRCH when their bytes
 * differ; the new KSM folio, referenced, in *@kfolio whenever @page became
 * one.
 */
static int ksm_scan_merge_pair(struct ksm_rmap_item *item, struct page *page,
			       struct ksm_batch_wait *wait,
			       struct folio **kfolio)
{
	struct ksm_rmap_item *twin = wait->twin;
	int err;

	*kfolio = NULL;
	/* Both are writable: benign, each merge compares them again. */
	if (!data_race(ksm_pages_identical(page, wait->twin_page)))
		return -ESRCH;
	/* Two references on one large folio would keep it from splitting. */
	if (folio_test_large(page_folio(page)) &&
	    page_folio(wait->twin_page) == page_folio(page)) {
		put_page(wait->twin_page);
		wait->twin_page = NULL;
	}
	*kfolio = ksm_scan_new_kfolio(item, page);
	if (!*kfolio)
		return -EBUSY;
	if (!wait->twin_page)
		wait->twin_page = ksm_item_page(twin);
	if (!wait->twin_page)
		return -EFAULT;
	err = ksm_item_merge(twin, wait->twin_page, &(*kfolio)->page);
	trace_ksm_merge_with_ksm_page(*kfolio, page_to_pfn(wait->twin_page),
				      twin, twin->mm, err);
	return err;
}

/*
 * Record what ksm_scan_merge_pair() made of @item's page and its twin
 * (@err, @kfolio): a new node in the stable tree with both as mappers, or
 * whatever merged undone; pages that did not merge go back in the
 * unstable tree where they still wait for a twin. Ends the claim on the
 * twin, which frees it if its owner let go of it meanwhile.
 */
static struct ksm_stable_node *
ksm_scan_record_pair(struct ksm_rmap_item *item, struct ksm_batch_wait *wait,
		     struct folio *kfolio, int err)
{
	struct ksm_rmap_item *twin = wait->twin;
	struct ksm_stable_node *node = NULL;

	ksm_assert_locked();
	if (!kfolio) {
		if (ksm_rmap_item_unclaim(twin))
			ksm_unstable_keep(twin);
		if (err == -ESRCH)
			ksm_unstable_keep(item);
		return NULL;
	}
	folio_lock(kfolio);
	if (!err && !ksm_rmap_item_orphaned(twin))
		node = ksm_stable_insert(kfolio, item->hash, wait->domain);
	if (node) {
		ksm_rmap_item_unclaim(twin);
		/* A new node has room for its first two mappers. */
		ksm_stable_add_item(node, twin);
		ksm_stable_add_item(node, item);
	}
	folio_unlock(kfolio);
	if (node)
		return node;
	ksm_scan_unmerge(item);
	if (!err)
		ksm_scan_unmerge(twin);
	ksm_rmap_item_unclaim(twin);
	return NULL;
}

/*
 * Under ksm_ctx.lock, once page @p of @batch made @kfolio, of @node (NULL
 * if it did not): the pages that follow it join that page now, the others
 * wait for a twin in the unstable tree.
 */
static void ksm_scan_lead_followers(struct ksm_visit_batch *batch,
				    unsigned int p, struct folio *kfolio,
				    struct ksm_stable_node *node)
{
	unsigned long followers = batch->followers;
	unsigned int i;

	ksm_assert_locked();
	for_each_set_bit(i, &followers, KSM_BATCH) {
		if (batch->wait[i].leader != p)
			continue;
		batch->followers &= ~BIT(i);
		if (!node) {
			ksm_unstable_keep(batch->item[i]);
			put_page(batch->walk.page[i]);
			continue;
		}
		folio_get(kfolio);
		ksm_scan_join_later(batch, i, kfolio, node);
	}
}

/*
 * Make the new KSM pages of @batch's pairs without ksm_ctx.lock, then
 * record them under it, and turn their followers into joins. Consumes the
 * batch's references on both pages of every pair, and on followers that
 * have nothing to join. Not inlined: its arrays would add to
 * ksm_scan_batch()'s stack frame.
 */
static noinline_for_stack void ksm_scan_pair_all(struct ksm_visit_batch *batch)
{
	unsigned long todo = batch->pairs;
	struct mm_struct *twin_mm[KSM_BATCH];
	struct ksm_stable_node *node;
	struct folio *kfolio[KSM_BATCH];
	int errs[KSM_BATCH];
	unsigned int i;

	for_each_set_bit(i, &todo, KSM_BATCH) {
		twin_mm[i] = batch->wait[i].twin->mm;
		errs[i] = ksm_scan_merge_pair(batch->item[i], batch->walk.page[i],
					      &batch->wait[i], &kfolio[i]);
	}

	mutex_lock(&ksm_ctx.lock);
	for_each_set_bit(i, &todo, KSM_BATCH) {
		node = ksm_scan_record_pair(batch->item[i], &batch->wait[i],
					    kfolio[i], errs[i]);
		ksm_scan_lead_followers(batch, i, kfolio[i], node);
	}
	list_del(&batch->pairing);
	batch->pairs = 0;
	WRITE_ONCE(ksm_ctx.scan.pairs_done, ksm_ctx.scan.pairs_done + 1);
	mutex_unlock(&ksm_ctx.lock);
	wake_up_var(&ksm_ctx.scan.pairs_done);

	for_each_set_bit(i, &todo, KSM_BATCH) {
		put_page(batch->walk.page[i]);
		if (batch->wait[i].twin_page)
			put_page(batch->wait[i].twin_page);
		if (kfolio[i])
			folio_put(kfolio[i]);
		mmdrop(twin_mm[i]);
	}
}

/* Try to map the zero page at an all-zero page; 0 when done. */
static int ksm_scan_merge_zero(struct ksm_rmap_item *item, struct page *page)
{
	struct mm_struct *mm = item->mm;
	struct vm_area_struct *vma;
	int err = 0;

	mmap_read_lock(mm);
	vma = ksm_find_vma(mm, ksm_item_addr(item));
	if (vma) {
		err = ksm_merge_zero_page(vma, page);
		trace_ksm_merge_one_page(page_to_pfn(ZERO_PAGE(ksm_item_addr(item))),
					 item, mm, err);
	}
	mmap_read_unlock(mm);
	return err;
}

/* Saturation value of ksm_rmap_item.skip_age (a 4-bit field). */
#define KSM_SKIP_AGE_MAX	15

/*
 * Visits to skip after @age fruitless ones (smart scan): doubles every
 * three fruitless visits, from 1 up to 8.
 */
static unsigned int ksm_skip_for_age(unsigned int age)
{
	return 1U << min(age / 3, 3U);
}

/*
 * Smart scan: should this visit be skipped? A skipped page is not read,
 * but stays in the unstable tree under its last hash so that a twin
 * appearing elsewhere still finds it.
 */
static bool ksm_scan_skip(struct ksm_rmap_item *item)
{
	if (!READ_ONCE(ksm_ctx.knobs.smart_scan) || !item->skip_left)
		return false;
	item->skip_left--;
	ksm_ctx.stats.pages_skipped++;
	ksm_unstable_keep(item);
	return true;
}

/* Record a visit that found the page unchanged and without a twin. */
static void ksm_scan_note_fruitless(struct ksm_rmap_item *item)
{
	if (item->skip_age < KSM_SKIP_AGE_MAX)
		item->skip_age++;
	item->skip_left = ksm_skip_for_age(item->skip_age);
}

/*
 * Is the page settled enough to merge? A page seen for the first time is:
 * the unstable tree is keyed by hash, so a page that changes after going
 * in costs at most one failed compare and cannot corrupt the tree. A page
 * whose content changed since the previous visit is not; its skip state
 * restarts.
 */
static bool ksm_scan_settled(struct ksm_rmap_item *item, u64 hash)
{
	bool changed = item->hashed && item->hash != hash;

	item->hash = hash;
	item->hashed = true;
	if (changed) {
		item->skip_age = 0;
		item->skip_left = 0;
	}
	return !changed;
}

/*
 * Is there more to do than for a page still merged or one smart scan
 * skips? If so the item is left in no tree, and the page's hash is needed.
 */
static bool ksm_scan_visit_start(struct ksm_rmap_item *item, struct page *page)
{
	struct folio *folio = page_folio(page);

	ksm_assert_locked();
	if (item->state == KSM_ITEM_MERGING) {
		/* Another thread's twin: that thread records the verdict. */
		ksm_ctx.stats.pages_scanned++;
		return false;
	}
	if (item->state == KSM_ITEM_STABLE && folio_test_ksm(folio) &&
	    ksm_folio_node(folio) == item->stable) {
		ksm_ctx.stats.pages_scanned++;
		return false;	/* still merged */
	}
	ksm_rmap_item_forget(item);
	if (ksm_scan_skip(item))
		return false;
	ksm_ctx.stats.pages_scanned++;
	return true;
}

/*
 * Find a twin for page @i of @batch, in @slot's mm, or file it for later.
 * Returns true when the page waits for a merge after the visits: into a
 * KSM page the stable tree found, or with a twin from the unstable tree
 * into a new one.
 */
static bool ksm_scan_visit(struct ksm_visit_batch *batch, unsigned int i,
			   struct ksm_mm *slot)
{
	struct ksm_rmap_item *item = batch->item[i], *tree_item;
	struct page *page = batch->walk.page[i], *tree_page;
	struct folio *folio = page_folio(page), *kfolio;
	struct ksm_stable_node *node;
	u64 hash;

	ksm_assert_locked();
	/* Pages are filed, and found, under a hash keyed by their domain. */
	ksm_ctx.scan.domain = ksm_slot_domain(slot);
	hash = ksm_domain_hash(batch->content[i], ksm_ctx.scan.domain);
	kfolio = ksm_stable_lookup(page, hash, page_to_nid(page), &node);
	if (kfolio) {
		item->hash = hash;
		item->hashed = true;
		if (ksm_huge_merge_pays(page, item->mm, ksm_item_addr(item), NULL,
					NULL, 0)) {
			ksm_scan_join_later(batch, i, kfolio, node);
			return true;
		}
		folio_put(kfolio);
		return false;	/* retry next pass */
	}
	if (folio_test_ksm(folio))
		return false;	/* a KSM page outside the tree: leave it */
	if (!ksm_scan_settled(item, hash))
		return false;

	if (READ_ONCE(ksm_ctx.knobs.use_zero_pages) &&
	    batch->content[i] == ksm_ctx.zero_hash &&
	    ksm_huge_merge_pays(page, item->mm, ksm_item_addr(item), NULL, NULL, 0) &&
	    !ksm_scan_merge_zero(item, page))
		return false;

	if (ksm_scan_follow_pair(batch, i, hash))
		return true;
	if (ksm_scan_pair_pending(batch, hash,
				  ksm_tree_index(page_to_nid(page)))) {
		batch->retry |= BIT(i);
		batch->retry_after = ksm_ctx.scan.pairs_done;
		return true;
	}
	tree_item = ksm_unstable_find_or_insert(item, page, &tree_page);
	if (!tree_item) {
		ksm_scan_note_fruitless(item);
		return false;
	}
	if (!ksm_huge_merge_pays(page, item->mm, ksm_item_addr(item), tree_page,
				 tree_item->mm, ksm_item_addr(tree_item))) {
		/* Both stay whole; the twin stays in the tree for others. */
		put_page(tree_page);
		ksm_scan_note_fruitless(item);
		return false;
	}
	ksm_scan_pair_later(batch, i, tree_item, tree_page,
			    ksm_ctx.scan.domain);
	return true;
}

/*
 * Without the lock, guess whether the visit will need the page's hash:
 * not for a KSM page (most likely still merged) nor for one smart scan
 * skips. A wrong guess only costs time.
 */
static bool ksm_scan_wants_hash(struct ksm_rmap_item *item, struct page *page)
{
	if (folio_test_ksm(page_folio(page)))
		return false;
	if (!READ_ONCE(ksm_ctx.knobs.smart_scan))
		return true;
	/* Only this thread writes ->skip_left; others write ->state next to it. */
	return !data_race((unsigned int)item->skip_left);
}

/*
 * Before the visits of @batch's pages, with no lock held: find or make
 * their items (the block's list belongs to the thread) and hash the pages
 * whose visits will likely need it, so that the tree work is one short
 * critical section.
 */
static void ksm_scan_prepare(struct ksm_claim *claim,
			     struct ksm_visit_batch *batch)
{
	struct ksm_rmap_item **stale_tail = &batch->stale, *stale;
	unsigned int i;
	bool is_new;

	batch->hashed = 0;
	batch->is_new = 0;
	batch->stale = NULL;
	for (i = 0; i < batch->walk.nr; i++) {
		struct ksm_rmap_item *item;

		item = ksm_claim_item_at(claim, batch->walk.addr[i], &stale,
					 &is_new);
		batch->item[i] = item;
		if (is_new)
			batch->is_new |= BIT(i);
		if (stale) {
			*stale_tail = stale;
			while (stale->next)
				stale = stale->next;
			stale_tail = &stale->next;
		}
		if (item && ksm_scan_wants_hash(item, batch->walk.page[i])) {
			batch->content[i] = ksm_page_hash(batch->walk.page[i]);
			batch->hashed |= BIT(i);
		}
	}
}

/*
 * Visit page @i of @batch under ksm_ctx.lock, which is dropped while a
 * page that still needs its hash is hashed. Returns true when the page
 * waits for a merge (ksm_scan_visit()); the batch's reference on any
 * other page can go: a twin this thread or another finds in the unstable
 * tree must carry no reference but the finder's, or its merge is refused.
 */
static bool ksm_scan_visit_one(struct ksm_claim *claim,
			       struct ksm_visit_batch *batch, unsigned int i)
{
	struct ksm_rmap_item *item = batch->item[i];
	struct page *page = batch->walk.page[i];

	if (!item)
		return false;
	if (batch->is_new & BIT(i))
		ksm_rmap_item_count(item);
	if (!ksm_scan_visit_start(item, page))
		return false;
	if (!(batch->hashed & BIT(i))) {
		/* The item is in no tree: nobody else can reach it. */
		mutex_unlock(&ksm_ctx.lock);
		batch->content[i] = ksm_page_hash(page);
		mutex_lock(&ksm_ctx.lock);
	}
	return ksm_scan_visit(batch, i, claim->slot);
}

/*
 * Merge the pages of @batch that wait for it, without ksm_ctx.lock: first
 * the pairs, whose followers then join their new KSM pages with the other
 * joins.
 */
static void ksm_scan_merge_waiting(struct ksm_visit_batch *batch)
{
	if (batch->pairs)
		ksm_scan_pair_all(batch);
	if (batch->joins)
		ksm_scan_join_all(batch);
	batch->joins = 0;
}

/*
 * Visit the pages of @batch, in @claim's block, under one hold of
 * ksm_ctx.lock, then merge those that wait for it without the lock
 * (ksm_scan_merge_waiting()). A page whose content another thread is
 * making a KSM page of meanwhile is visited again once it is made.
 * Consumes the batch's page references.
 */
static void ksm_scan_visit_batch(struct ksm_claim *claim,
				 struct ksm_visit_batch *batch)
{
	unsigned long retry;
	unsigned int i;

	batch->joins = 0;
	batch->pairs = 0;
	batch->followers = 0;
	batch->retry = 0;
	mutex_lock(&ksm_ctx.lock);
	ksm_rmap_list_free(&batch->stale);
	for (i = 0; i < batch->walk.nr; i++)
		if (!ksm_scan_visit_one(claim, batch, i))
			put_page(batch->walk.page[i]);
	mutex_unlock(&ksm_ctx.lock);
	/* Once per batch, and not while others may wait for the lock. */
	cond_resched();
	ksm_scan_merge_waiting(batch);

	while (batch->retry) {
		/* Each wait ends when some thread recorded its pairs. */
		wait_var_event(&ksm_ctx.scan.pairs_done,
			       READ_ONCE(ksm_ctx.scan.pairs_done) !=
			       batch->retry_after);
		retry = batch->retry;
		batch->retry = 0;
		mutex_lock(&ksm_ctx.lock);
		for_each_set_bit(i, &retry, KSM_BATCH)
			if (!ksm_scan_visit(batch, i, claim->slot))
				put_page(batch->walk.page[i]);
		mutex_unlock(&ksm_ctx.lock);
		ksm_scan_merge_waiting(batch);
	}
}

/**
 * ksm_scan_batch() - let one ksmd thread visit up to @nr_pages pages
 * @claim: the thread's claim, empty on entry and on return.
 * @nr_pages: the budget.
 *
 * Context: ksm_ctx.scan_sem held for read; takes ksm_ctx.lock; may sleep.
 * Return: 0, or -EAGAIN when the thread ran out of blocks while others
 * still finish the pass.
 */
int ksm_scan_batch(struct ksm_claim *claim, unsigned int nr_pages)
{
	struct ksm_visit_batch *batch;
	int err = 0;

	lockdep_assert_held_read(&ksm_ctx.scan_sem);
	/* About 2 KiB: too much for the stack under the merges' calls. */
	batch = kmalloc(sizeof(*batch), GFP_KERNEL | __GFP_NORETRY |
			__GFP_NOWARN);
	if (!batch)
		return 0;	/* the thread sleeps and tries again */
	while (nr_pages) {
		if (!claim->slot) {
			mutex_lock(&ksm_ctx.lock);
			err = ksm_claim_get(claim);
			mutex_unlock(&ksm_ctx.lock);
			if (err)
				break;
		}
		batch->walk.max = min(nr_pages, KSM_BATCH);
		if (!ksm_claim_next_pages(claim, &batch->walk)) {
			mutex_lock(&ksm_ctx.lock);
			ksm_claim_finish(claim);
			mutex_unlock(&ksm_ctx.lock);
			continue;
		}
		ksm_scan_prepare(claim, batch);
		ksm_scan_visit_batch(claim, batch);
		nr_pages -= batch->walk.nr;
	}
	if (claim->slot) {
		mutex_lock(&ksm_ctx.lock);
		ksm_claim_park(claim);
		mutex_unlock(&ksm_ctx.lock);
	}
	kfree(batch);
	return err == -EAGAIN ? err : 0;
}

/* Break every KSM page of @mm and drop its items. */
static int ksm_unmerge_mm(struct mm_struct *mm, struct ksm_mm *slot)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;
	int err = 0;

	mmap_read_lock(mm);
	for_each_vma(vmi, vma) {
		if (ksm_mm_exiting(mm))
			break;
		if (!(vma->vm_flags & VM_MERGEABLE) || !vma->anon_vma)
			continue;
		err = ksm_unmerge_range(vma, vma->vm_start, vma->vm_end, false);
		if (err)
			break;
	}
	ksm_mm_items_free(slot, 0, ULONG_MAX);
	mmap_read_unlock(mm);
	return err;
}

/**
 * ksm_unmerge_everything() - break every KSM page and forget all state
 *
 * Walks every registered mm with the scan cursor (so that exiting mms are
 * handed to us, not freed under us), unmerges it and drops its items, then
 * empties the stable tree and resets full_scans. Parked claims are
 * forgotten and the pass in progress abandoned: the next one starts over.
 *
 * Context: ksm_engine_lock() held; may sleep.
 * Return: 0, -ENOMEM, or -ERESTARTSYS when a signal interrupted it.
 */
int ksm_unmerge_everything(void)
{
	struct ksm_scan_cursor *cur = &ksm_ctx.scan;
	int err = 0;

	ksm_assert_locked();
	lockdep_assert_held_write(&ksm_ctx.scan_sem);
	WARN_ON_ONCE(cur->nr_active);
	ksm_scan_unpark_all();
	spin_lock(&ksm_ctx.mm_list_lock);
	WRITE_ONCE(cur->slot, list_next_entry(&ksm_ctx.mm_head, slot.mm_node));
	spin_unlock(&ksm_ctx.mm_list_lock);

	while (cur->slot != &ksm_ctx.mm_head) {
		err = ksm_unmerge_mm(cur->slot->slot.mm, cur->slot);
		if (err)
			break;
		ksm_scan_next_mm();
	}
	/* The pass in progress, if any, is abandoned. */
	WRITE_ONCE(cur->open, false);
	wake_up_all(&ksm_ctx.pass_wait);
	if (err) {
		spin_lock(&ksm_ctx.mm_list_lock);
		WRITE_ONCE(cur->slot, &ksm_ctx.mm_head);
		spin_unlock(&ksm_ctx.mm_list_lock);
		return err;
	}
	ksm_stable_drop_all();
	ksm_unstable_reset();
	cur->full_scans = 0;
	return 0;
}

#include "tests/scan-kunit.h"
