// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: the unstable tree.
 *
 * Pages that have no KSM twin yet wait here for a partner during one pass.
 * Only equal hashes are ever looked for, never an order, so the "tree" is
 * a hash table: each bucket is a singly linked chain of items (->chain),
 * keyed by the hash each item had when it went in (and the NUMA tree index
 * it was filed under). That hash never changes while the item is in, so
 * the table stays consistent however the pages are written to; a page is
 * compared only with an entry of an equal hash, by the merge that follows
 * a lookup (without ksm_ctx.lock, see scan.c).
 *
 * Walking a chain reads every item on it, each a cache miss (and under
 * QEMU's TCG a miss of its software TLB): on pages without a twin, nearly
 * every page of most workloads, that walk was a sixth of ksmd's time. So
 * a bucket also keeps a summary of its chain, one bit of a word per item
 * picked by the item's key: a lookup whose bit is clear, nearly always
 * for a page without a twin, reads only its bucket. Bits are only cleared
 * with the whole table, so an item leaving the chain costs later lookups
 * at most a walk.
 *
 * The table is emptied wholesale at the start of every pass by clearing
 * the buckets and bumping ksm_ctx.scan.pass: an item whose ->pass is older
 * is no longer linked. The table is resized then, to between one bucket
 * per eight and one per four tracked pages (16-byte buckets: 2 to 4 bytes
 * per page); with chains of four to eight items a summary of 64 bits
 * still sends only about one lookup in ten down a chain that lacks the
 * key. A chain link costs 8 bytes per item, where a tree node would cost
 * 24. A pass that files many more pages than that (the first one over new
 * memory) grows the table as it goes.
 *
 * Everything here runs under ksm_ctx.lock.
 */

#include <linux/hash.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "internal.h"

/* Most equal-hash entries one lookup looks at. */
#define KSM_UNSTABLE_MAX_LOOKS	8

/* Bucket count bounds (log2). */
#define KSM_UNSTABLE_MIN_BITS	10
#define KSM_UNSTABLE_MAX_BITS	24

/* Most entries per bucket before the table grows, and when it is sized. */
#define KSM_UNSTABLE_LOAD	8

/* A bucket that is always empty, until the first table is allocated. */
static struct ksm_unstable_bucket ksm_unstable_no_table;

static struct ksm_unstable_bucket *ksm_unstable_bucket(u64 hash, int nid)
{
	if (!ksm_ctx.unstable_table)
		return &ksm_unstable_no_table;
	return &ksm_ctx.unstable_table[hash_64(hash ^ nid,
					       ksm_ctx.unstable_bits)];
}

/*
 * The summary bit of an entry of @hash in tree @nid: the low bits of the
 * key, which the bucket index (the high bits of a product) hardly sees.
 */
static unsigned long ksm_unstable_summary_bit(u64 hash, int nid)
{
	return BIT((hash ^ nid) & (BITS_PER_LONG - 1));
}

/* Might @bucket's chain hold an entry of @hash in tree @nid? */
static bool ksm_unstable_may_hold(const struct ksm_unstable_bucket *bucket,
				  u64 hash, int nid)
{
	return bucket->summary & ksm_unstable_summary_bit(hash, nid);
}

/* Put @item, of tree @nid, at the head of @bucket's chain. */
static void ksm_unstable_chain(struct ksm_unstable_bucket *bucket,
			       struct ksm_rmap_item *item, int nid)
{
	item->chain = bucket->head;
	bucket->head = item;
	bucket->summary |= ksm_unstable_summary_bit(item->hash, nid);
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
	struct ksm_rmap_item **link;

	ksm_assert_locked();
	if (ksm_unstable_linked(item)) {
		link = &ksm_unstable_bucket(item->hash, item->nid)->head;
		while (*link && *link != item)
			link = &(*link)->chain;
		if (!WARN_ON_ONCE(!*link)) {
			*link = item->chain;
			ksm_ctx.unstable_entries--;
		}
	}
	ksm_ctx.stats.pages_unshared--;
	item->state = KSM_ITEM_NEW;
}

/* Bucket bits for the number of pages tracked now. */
static unsigned int ksm_unstable_wanted_bits(void)
{
	unsigned long buckets = ksm_ctx.stats.rmap_items / KSM_UNSTABLE_LOAD;

	return clamp_t(unsigned int, buckets ? ilog2(buckets) + 1 : 0,
		       KSM_UNSTABLE_MIN_BITS, KSM_UNSTABLE_MAX_BITS);
}

/**
 * ksm_unstable_reset() - empty the unstable table for a new pass
 *
 * Resizes the table when the number of tracked pages moved far from its
 * size; without memory for a new one, the old one is kept.
 *
 * Context: ksm_ctx.lock held; may sleep.
 */
void ksm_unstable_reset(void)
{
	unsigned int bits = ksm_unstable_wanted_bits();
	struct ksm_unstable_bucket *table;

	ksm_assert_locked();
	ksm_ctx.scan.pass++;
	ksm_ctx.unstable_entries = 0;
	if (ksm_ctx.unstable_table &&
	    bits <= ksm_ctx.unstable_bits + 1 && bits + 1 >= ksm_ctx.unstable_bits) {
		memset(ksm_ctx.unstable_table, 0,
		       sizeof(*table) << ksm_ctx.unstable_bits);
		return;
	}
	table = kvcalloc(1UL << bits, sizeof(*table), GFP_KERNEL | __GFP_NOWARN);
	if (!table) {
		if (ksm_ctx.unstable_table)
			memset(ksm_ctx.unstable_table, 0,
			       sizeof(*table) << ksm_ctx.unstable_bits);
		return;
	}
	kvfree(ksm_ctx.unstable_table);
	ksm_ctx.unstable_table = table;
	ksm_ctx.unstable_bits = bits;
}

/*
 * Return a referenced page of @tree_item that may be @page's twin, or
 * NULL: an ordinary anonymous page on the tree's node, other than @page.
 * Its bytes are not compared here but by the merge, without ksm_ctx.lock.
 * An entry whose address no longer maps an ordinary anonymous page (it
 * was unmapped, or merged: mapped to a KSM page or the zero page) is
 * taken out of the table, so that it stops using up the budget of every
 * later lookup of its hash.
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
	    ksm_tree_index(page_to_nid(tree_page)) != nid)
		goto no_match;
	return tree_page;

no_match:
	if (tree_page)
		put_page(tree_page);
	return NULL;
}

/*
 * Move every entry to a table four times larger. Called when a pass files
 * far more pages than the table was sized for (the first pass over a lot
 * of new memory): chains must stay short, and their summaries sparse, for
 * lookups to stay cheap.
 */
static void ksm_unstable_grow(void)
{
	unsigned int bits = ksm_ctx.unstable_bits + 2;
	struct ksm_unstable_bucket *table;
	struct ksm_rmap_item *item, *next;
	unsigned long i;

	table = kvcalloc(1UL << bits, sizeof(*table), GFP_KERNEL | __GFP_NOWARN);
	if (!table)
		return;		/* longer chains, still correct */
	for (i = 0; i < 1UL << ksm_ctx.unstable_bits; i++) {
		for (item = ksm_ctx.unstable_table[i].head; item; item = next) {
			next = item->chain;
			ksm_unstable_chain(&table[hash_64(item->hash ^ item->nid,
							  bits)],
					   item, item->nid);
		}
	}
	kvfree(ksm_ctx.unstable_table);
	ksm_ctx.unstable_table = table;
	ksm_ctx.unstable_bits = bits;
}

static void ksm_unstable_insert(struct ksm_rmap_item *item, int nid)
{
	if (!ksm_ctx.unstable_table)
		return;		/* no table yet: nothing can be found anyway */
	if (ksm_ctx.unstable_entries >
	    ((unsigned long)KSM_UNSTABLE_LOAD << ksm_ctx.unstable_bits) &&
	    ksm_ctx.unstable_bits + 2 <= KSM_UNSTABLE_MAX_BITS)
		ksm_unstable_grow();
	ksm_unstable_chain(ksm_unstable_bucket(item->hash, nid), item, nid);
	item->state = KSM_ITEM_UNSTABLE;
	item->pass = ksm_ctx.scan.pass;
	item->nid = nid;
	ksm_ctx.unstable_entries++;
	ksm_ctx.stats.pages_unshared++;
}

/**
 * ksm_unstable_keep() - keep a page smart scan skips findable by others
 * @item: an item in state KSM_ITEM_NEW whose ->hash and ->nid are from
 *        its previous visit.
 *
 * The page is not read; it goes back into this pass's table under its old
 * hash, so pages visited later can still find it. A page that changed
 * meanwhile only costs a failed compare.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_unstable_keep(struct ksm_rmap_item *item)
{
	ksm_assert_locked();
	if (item->hashed && item->nid < ksm_ctx.nr_trees)
		ksm_unstable_insert(item, item->nid);
}

/**
 * ksm_unstable_has_other() - is a page with this hash waiting elsewhere?
 * @hash: a content hash.
 * @nid: index of the tree to look in.
 * @mm: with @start and @end, a range whose own pages do not count.
 * @start: first address of the range.
 * @end: end of the range.
 *
 * Only hashes are compared: good enough for estimates, never for merging.
 *
 * Context: ksm_ctx.lock held.
 * Return: true if an item with @hash outside the range is in the table.
 */
bool ksm_unstable_has_other(u64 hash, int nid, struct mm_struct *mm,
			    unsigned long start, unsigned long end)
{
	struct ksm_unstable_bucket *bucket = ksm_unstable_bucket(hash, nid);
	int budget = KSM_UNSTABLE_MAX_LOOKS;
	struct ksm_rmap_item *item;

	ksm_assert_locked();
	if (!ksm_unstable_may_hold(bucket, hash, nid))
		return false;
	for (item = bucket->head; item && budget; item = item->chain) {
		if (item->hash != hash || item->nid != nid)
			continue;
		if (item->mm != mm || ksm_item_addr(item) < start ||
		    ksm_item_addr(item) >= end)
			return true;
		budget--;
	}
	return false;
}

/**
 * ksm_unstable_find_or_insert() - find a twin of a page, or wait for one
 * @item: the page's item, state KSM_ITEM_NEW, ->hash up to date.
 * @page: the page, referenced by the caller.
 * @match: set to the twin's page (referenced) when one is found.
 *
 * A twin is an entry of the same hash whose page is still there; the
 * caller compares the bytes. @item's ->nid is set to its tree either way,
 * so that it can go in later with ksm_unstable_keep().
 *
 * Context: ksm_ctx.lock held; may sleep (takes other mms' mmap_lock).
 * Return: the twin's item, still linked in the table; or NULL after
 * inserting @item.
 */
struct ksm_rmap_item *ksm_unstable_find_or_insert(struct ksm_rmap_item *item,
						  struct page *page,
						  struct page **match)
{
	int nid = ksm_tree_index(page_to_nid(page));
	struct ksm_unstable_bucket *bucket;
	struct ksm_rmap_item *tree_item, *next;
	int budget = KSM_UNSTABLE_MAX_LOOKS;

	ksm_assert_locked();
	bucket = ksm_unstable_bucket(item->hash, nid);
	tree_item = ksm_unstable_may_hold(bucket, item->hash, nid) ?
		    bucket->head : NULL;
	for (; tree_item && budget; tree_item = next) {
		/* The match may unlink a stale entry: step past it first. */
		next = tree_item->chain;
		if (tree_item->hash != item->hash || tree_item->nid != nid)
			continue;
		budget--;
		*match = ksm_unstable_match(tree_item, page, nid);
		if (*match) {
			item->nid = nid;
			return tree_item;
		}
	}

	ksm_unstable_insert(item, nid);
	return NULL;
}

#include "tests/unstable_tree-kunit.h"
