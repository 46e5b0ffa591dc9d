// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: pages inside large folios.
 *
 * A page of a large anonymous folio (a THP, PMD- or PTE-mapped) can only be
 * merged after the folio is split, and the split costs the application its
 * huge TLB entry over the whole range. That is worth it only when enough
 * of the folio's pages can merge. So before the first merge that would
 * split a folio, ksmd counts its mergeable pages: a page counts when it is
 * zero-filled, or when its hash is also the hash of
 *
 *   - a stable tree key (an existing KSM page),
 *   - another page of the same folio,
 *   - a page waiting in the unstable tree that is not part of this folio,
 *   - a page of the partner the folio is about to be merged with.
 *
 * Hashes are compared, not contents: a collision costs one split too many,
 * never a wrong merge (merging compares contents). Fewer than
 * huge_split_min_subpages mergeable pages and the folio stays whole.
 *
 * A folio costs one count per pass at most: verdicts are remembered in a
 * small cache keyed by pfn and pass number. A folio kept whole is looked at
 * again next pass, when more duplicates may exist.
 *
 * Everything here runs under ksm_ctx.lock.
 */

#include <linux/bsearch.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "internal.h"

/* Verdicts remembered within a pass; ksmd visits folios in address order. */
#define KSM_HUGE_VERDICTS	16

/**
 * struct ksm_huge_verdict - whether a large folio is worth splitting
 * @pfn: pfn of the folio's first page.
 * @pass: the pass (ksm_ctx.scan.pass) the verdict belongs to.
 * @pays: split it.
 */
struct ksm_huge_verdict {
	unsigned long pfn;
	unsigned int pass;
	bool pays;
};

static struct ksm_huge_verdict ksm_huge_verdicts[KSM_HUGE_VERDICTS];
static unsigned int ksm_huge_next_verdict;

/**
 * struct ksm_huge_side - one large folio being considered for a split
 * @folio: the folio, referenced by the caller; NULL for a small page.
 * @page: the page of @folio (or the small page) that found a twin.
 * @mm: the mm the page was found in.
 * @start: user address of the folio's first page in @mm.
 * @nr: number of pages hashed into @hashes.
 * @hashes: content hash of each page, in folio order.
 * @sorted: @hashes, sorted.
 */
struct ksm_huge_side {
	struct folio *folio;
	struct page *page;
	struct mm_struct *mm;
	unsigned long start;
	unsigned int nr;
	u64 *hashes;
	u64 *sorted;
};

static int ksm_huge_cmp_hash(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static bool ksm_huge_sorted_has(const u64 *sorted, unsigned int nr, u64 hash)
{
	return sorted && bsearch(&hash, sorted, nr, sizeof(u64),
				 ksm_huge_cmp_hash);
}

/* How many of @sorted are equal to @hash. */
static unsigned int ksm_huge_sorted_count(const u64 *sorted, unsigned int nr,
					  u64 hash)
{
	const u64 *hit = bsearch(&hash, sorted, nr, sizeof(u64),
				 ksm_huge_cmp_hash);
	const u64 *lo = hit, *hi = hit;

	if (!hit)
		return 0;
	while (lo > sorted && lo[-1] == hash)
		lo--;
	while (hi < sorted + nr - 1 && hi[1] == hash)
		hi++;
	return hi - lo + 1;
}

static struct ksm_huge_verdict *ksm_huge_find_verdict(struct folio *folio)
{
	unsigned long pfn = folio_pfn(folio);
	int i;

	for (i = 0; i < KSM_HUGE_VERDICTS; i++) {
		struct ksm_huge_verdict *v = &ksm_huge_verdicts[i];

		if (v->pfn == pfn && v->pass == ksm_ctx.scan.pass)
			return v;
	}
	return NULL;
}

static void ksm_huge_save_verdict(struct folio *folio, bool pays)
{
	struct ksm_huge_verdict *v;

	v = &ksm_huge_verdicts[ksm_huge_next_verdict++ % KSM_HUGE_VERDICTS];
	v->pfn = folio_pfn(folio);
	v->pass = ksm_ctx.scan.pass;
	v->pays = pays;
}

/* Hash every page of @side's folio; -ENOMEM if there is no room. */
static int ksm_huge_hash_side(struct ksm_huge_side *side)
{
	unsigned int i, nr = folio_nr_pages(side->folio);

	side->hashes = kmalloc_array(2 * nr, sizeof(u64),
				     GFP_KERNEL | __GFP_NOWARN);
	if (!side->hashes)
		return -ENOMEM;
	side->sorted = side->hashes + nr;
	side->nr = nr;
	for (i = 0; i < nr; i++) {
		side->hashes[i] = ksm_page_hash(folio_page(side->folio, i));
		cond_resched();
	}
	memcpy(side->sorted, side->hashes, nr * sizeof(u64));
	sort(side->sorted, nr, sizeof(u64), ksm_huge_cmp_hash, NULL);
	return 0;
}

/* Can page @i of @side merge with something other than itself? */
static bool ksm_huge_page_mergeable(struct ksm_huge_side *side, unsigned int i,
				    struct ksm_huge_side *partner, int nid)
{
	u64 hash = side->hashes[i];
	u64 filed = ksm_domain_hash(hash, ksm_ctx.scan.domain);

	if (hash == ksm_ctx.zero_hash)
		return true;
	if (ksm_huge_sorted_count(side->sorted, side->nr, hash) > 1)
		return true;
	if (ksm_huge_sorted_has(partner->sorted, partner->nr, hash))
		return true;
	/* Both sides are in the domain of the page being visited. */
	if (ksm_stable_has_hash(filed, nid))
		return true;
	return ksm_unstable_has_other(filed, nid, side->mm, side->start,
				      side->start + side->nr * PAGE_SIZE);
}

/* Does splitting @side's folio free enough pages? */
static bool ksm_huge_side_pays(struct ksm_huge_side *side,
			       struct ksm_huge_side *partner)
{
	unsigned int min = READ_ONCE(ksm_ctx.knobs.huge_split_min_subpages);
	int nid = ksm_tree_index(folio_nid(side->folio));
	unsigned int i, mergeable = 0;

	for (i = 0; i < side->nr && mergeable < min; i++)
		if (ksm_huge_page_mergeable(side, i, partner, nid))
			mergeable++;
	return mergeable >= min;
}

static void ksm_huge_side_init(struct ksm_huge_side *side, struct page *page,
			       struct mm_struct *mm, unsigned long addr)
{
	struct folio *folio = page ? page_folio(page) : NULL;

	memset(side, 0, sizeof(*side));
	if (!page)
		return;
	side->page = page;
	side->mm = mm;
	if (folio_test_large(folio)) {
		side->folio = folio;
		side->start = addr - (folio_page_idx(folio, page) << PAGE_SHIFT);
	} else {
		/* A small partner contributes just its own hash. */
		side->hashes = kmalloc(sizeof(u64), GFP_KERNEL | __GFP_NOWARN);
		if (side->hashes) {
			side->hashes[0] = ksm_page_hash(page);
			side->sorted = side->hashes;
			side->nr = 1;
		}
	}
}

/*
 * A verdict for @side's folio, counting (and remembering) when the pass
 * has none yet. True for small pages.
 */
static bool ksm_huge_side_verdict(struct ksm_huge_side *side,
				  struct ksm_huge_side *partner)
{
	struct ksm_huge_verdict *v;
	bool pays;

	if (!side->folio)
		return true;
	v = ksm_huge_find_verdict(side->folio);
	if (v)
		return v->pays;
	pays = ksm_huge_side_pays(side, partner);
	ksm_huge_save_verdict(side->folio, pays);
	if (!pays)
		ksm_ctx.stats.huge_kept++;
	return pays;
}

/*
 * Hash @side's folio if it or @partner's folio still needs counting this
 * pass; -ENOMEM if there is no room (then try again next pass).
 */
static int ksm_huge_prepare_side(struct ksm_huge_side *side,
				 struct ksm_huge_side *partner)
{
	if (!side->folio || side->hashes)
		return 0;
	if (ksm_huge_find_verdict(side->folio) &&
	    (!partner->folio || ksm_huge_find_verdict(partner->folio)))
		return 0;
	return ksm_huge_hash_side(side);
}

/**
 * ksm_huge_merge_pays() - may merging these pages split their large folios?
 * @page: the page being visited, referenced by the caller.
 * @mm: its mm.
 * @addr: its user address.
 * @partner: the page it would merge with (referenced), or NULL when it
 *           would merge with a KSM page or the zero page.
 * @partner_mm: @partner's mm.
 * @partner_addr: @partner's user address.
 *
 * Context: ksm_ctx.lock held; may sleep.
 * Return: true when neither page is in a large folio, or when each large
 * folio among them has at least huge_split_min_subpages mergeable pages.
 */
bool ksm_huge_merge_pays(struct page *page, struct mm_struct *mm,
			 unsigned long addr, struct page *partner,
			 struct mm_struct *partner_mm,
			 unsigned long partner_addr)
{
	struct ksm_huge_side side, other;
	bool pays;

	ksm_assert_locked();
	if (!folio_test_large(page_folio(page)) &&
	    (!partner || !folio_test_large(page_folio(partner))))
		return true;
	if (READ_ONCE(ksm_ctx.knobs.huge_split_min_subpages) <= 1)
		return true;

	ksm_huge_side_init(&side, page, mm, addr);
	ksm_huge_side_init(&other, partner, partner_mm, partner_addr);
	/* One folio on both sides: its own duplicates are what counts. */
	if (side.folio && side.folio == other.folio) {
		kfree(other.hashes);
		ksm_huge_side_init(&other, NULL, NULL, 0);
	}
	/* Each large side is counted against the other's hashes. */
	pays = false;
	if (ksm_huge_prepare_side(&side, &other) ||
	    ksm_huge_prepare_side(&other, &side))
		goto out;
	pays = ksm_huge_side_verdict(&side, &other) &&
	       ksm_huge_side_verdict(&other, &side);
out:
	kfree(side.hashes);
	kfree(other.hashes);
	return pays;
}

/**
 * ksm_huge_may_split() - can @folio be split for merging right now?
 * @folio: a large anonymous folio, locked.
 *
 * Return: false while something pins the folio's pages (DMA, O_DIRECT):
 * the split would fail, and copying around a pin is wrong anyway.
 */
bool ksm_huge_may_split(struct folio *folio)
{
	return !folio_maybe_dma_pinned(folio);
}
