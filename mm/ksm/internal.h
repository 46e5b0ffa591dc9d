/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Private interfaces shared by the files of mm/ksm/.
 *
 * Nothing here is visible outside mm/ksm/: the rest of the kernel talks to
 * us through include/linux/ksm.h only.
 */
#ifndef _MM_KSM_INTERNAL_H
#define _MM_KSM_INTERNAL_H

#include <linux/ksm.h>
#include "../internal.h"
#include "../mm_slot.h"
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/rbtree.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/xarray.h>

/**
 * DOC: Locking
 *
 * Locks, outermost first. A lock may only be taken while holding locks that
 * appear above it in this list.
 *
 * 1. ksm_ctx.scan_sem (rw_semaphore): the scanner gate. Every ksmd thread
 *    holds it for read over one scan batch; code that needs the engine
 *    quiet (sysfs writes that change how merging works, run=2, moving an
 *    mm to another domain) holds it for write, and then also
 *    ksm_ctx.lock: ksm_engine_lock(). Between batches a ksmd thread holds
 *    nothing: its unfinished block is parked (see scan.c), so a writer
 *    finds every item on its mm's block lists. Memory hot-remove takes
 *    only ksm_ctx.lock: offlining has migrated every KSM page in use out
 *    of the range, so only nodes of freed folios point into it (hotplug.c).
 * 2. ksm_ctx.lock (mutex): the engine lock. It owns both trees, every
 *    stable node, every rmap item's tree state, the block dispenser
 *    (ksm_ctx.scan) and the global counters. ksmd threads take it once
 *    per walk's batch of pages, for the tree work, then again to record
 *    the merges: page table walks, hashing, compares and every merge run
 *    without it. A page that joins a KSM page is in no tree and on the
 *    thread's own block list meanwhile; the twin it makes a new KSM page
 *    with is claimed (KSM_ITEM_MERGING), which keeps everybody else from
 *    changing or freeing it. Code that needs the lock asserts it with
 *    ksm_assert_locked().
 * 3. mmap_lock of a scanned mm (read): taken per mm while looking at its
 *    VMAs and page tables. madvise() and prctl() arrive here with it held
 *    for write and never take ksm_ctx.lock; the one exception, moving an
 *    mm to another merge domain (domain.c), drops it first and takes
 *    ksm_engine_lock(), then mmap_lock for read, like ksmd.
 * 4. folio lock of a KSM folio: guards its stable node's mapper array, so
 *    that rmap_walk_ksm() (which holds only the folio lock) sees an array
 *    nobody is changing. A join into a KSM page of the stable tree takes
 *    it twice, briefly, with only mmap_lock held (3) and no other folio
 *    lock, asserting that ksm_ctx.lock is not held: to check that the
 *    folio is still its node's (migration) before the PTE work, and to
 *    mark it dirty after (MADV_FREE); the PTE work itself runs without
 *    it, so threads joining one KSM page merge side by side. Under
 *    ksm_ctx.lock, recording the join only trylocks it and drops
 *    ksm_ctx.lock to wait (ksm_scan_lock_kfolio()), and the stable tree
 *    lookup does not lock the folio it finds at all, so merges do not
 *    hold up the tree work. Removing a mapper (a page a write unmerged)
 *    still waits for the folio lock under ksm_ctx.lock.
 * 5. anon_vma lock, page table lock: taken by the core mm helpers we call.
 * 6. ksm_ctx.mm_list_lock (spinlock): the list and hash of registered mms,
 *    and each mm's count of claimed blocks. Innermost; nothing is taken
 *    under it. __ksm_enter() and __ksm_exit() use only this lock, so exit
 *    never waits for a scan batch.
 */

/* Values of the run knob. */
#define KSM_RUN_STOP	0
#define KSM_RUN_MERGE	1
#define KSM_RUN_UNMERGE	2

/**
 * enum ksm_item_state - where a tracked page currently stands
 * @KSM_ITEM_NEW: seen, hashed at most once; in no tree.
 * @KSM_ITEM_UNSTABLE: in the unstable tree of pass @ksm_rmap_item.pass.
 * @KSM_ITEM_STABLE: mapped to a KSM page; linked on its stable node.
 * @KSM_ITEM_MERGING: taken out of the unstable tree by a ksmd thread that
 *                    is making a new KSM page of it and another page; in
 *                    no tree, and that thread's until it records the pair
 *                    (see ksm_rmap_item_claim()).
 */
enum ksm_item_state {
	KSM_ITEM_NEW,
	KSM_ITEM_UNSTABLE,
	KSM_ITEM_STABLE,
	KSM_ITEM_MERGING,
};

struct ksm_stable_node;

/* Bits of a user address above the page offset, as kept in an rmap item. */
#define KSM_ITEM_VPN_BITS	(BITS_PER_LONG - PAGE_SHIFT)

/**
 * struct ksm_rmap_item - one tracked virtual page of a registered mm
 * @next: next item of the same block (see struct ksm_mm), in increasing
 *        address order.
 * @mm: the mm the page belongs to (kept alive by its ksm_mm slot).
 * @vpn: user address >> PAGE_SHIFT; see ksm_item_addr().
 * @state: an &enum ksm_item_state value.
 * @hashed: @hash holds the hash of an earlier visit (NEW, UNSTABLE only).
 * @skip_age: fruitless visits in a row, saturating (smart scan).
 * @skip_left: visits still to skip before looking at the page again.
 * @hash: content hash computed at the last visit (NEW, UNSTABLE).
 * @chain: next entry of the same unstable hash bucket (UNSTABLE).
 * @pass: scan pass that put the item in the unstable table (UNSTABLE);
 *        nonzero once the item's owner let go of it (MERGING).
 * @nid: index of the tree the item was filed under (NEW, UNSTABLE).
 * @stable: the stable node the page is merged into (STABLE).
 * @anon_vma: the VMA's anon_vma, pinned from the merge on (STABLE).
 * @stable_slot: index of the item in @stable's mapper array (STABLE).
 * @pgoff_delta: the page's offset in its VMA's linear layout minus @vpn,
 *               or KSM_PGOFF_UNKNOWN (STABLE); see ksm_item_vma_range().
 *
 * 48 bytes on 64-bit: what an item needs while it waits for a twin and
 * what it needs once merged overlap. The order of the two arms matters:
 * a merge pins @anon_vma (over @chain) and records @pgoff_delta (over
 * @nid) while @hash is still to be read, and @stable and @stable_slot are
 * only written once the item is filed under its KSM page.
 *
 * Access under ksm_ctx.lock, except the stable fields which rmap walkers
 * read under the KSM folio's lock, and an item claimed for a merge (state
 * KSM_ITEM_MERGING), whose merging thread reads @mm and @vpn and pins its
 * VMA without the lock while its owner may only relink it (@next) and
 * set @pass (see ksm_rmap_item_claim()).
 */
struct ksm_rmap_item {
	struct ksm_rmap_item *next;
	struct mm_struct *mm;
	unsigned long vpn:KSM_ITEM_VPN_BITS;
	unsigned long state:2;
	unsigned long hashed:1;
	unsigned long skip_age:4;
	unsigned long skip_left:4;
	union {
		struct {
			u64 hash;
			struct ksm_rmap_item *chain;
			unsigned int pass;
			u16 nid;
		};
		struct {
			struct ksm_stable_node *stable;
			struct anon_vma *anon_vma;
			unsigned int stable_slot;
			int pgoff_delta;
		};
	};
};

/* The user address of @item's page. */
static inline unsigned long ksm_item_addr(const struct ksm_rmap_item *item)
{
	return (unsigned long)item->vpn << PAGE_SHIFT;
}

/* ->pgoff_delta of a page whose offset does not fit in an int. */
#define KSM_PGOFF_UNKNOWN	INT_MIN

/*
 * Where a merged page sits in the linear layout of the VMAs that map it:
 * the page offsets that anon_vma interval trees are keyed by. A VMA that
 * maps a KSM page got it from the merge or by fork, which copies the
 * layout; mremap() unmerges what it moves, and VMA merges and splits keep
 * every page's offset. So of all the VMAs of the item's anon_vma, only
 * those covering this one offset can map the page: an interval tree
 * lookup, O(log VMAs), finds them (see ksm_item_vma_range()).
 */
/* Record the layout of @vma, in which @item's page is being merged. */
static inline void ksm_item_set_pgoff(struct ksm_rmap_item *item,
				      struct vm_area_struct *vma)
{
	long delta = (long)linear_page_index(vma, ksm_item_addr(item)) -
		     (long)item->vpn;

	item->pgoff_delta = delta > INT_MIN && delta <= INT_MAX ?
			    (int)delta : KSM_PGOFF_UNKNOWN;
}

/**
 * struct ksm_stable_key - one distinct page content in the stable tree
 * @node: link in a stable tree, ordered by @hash, then by content.
 * @hash: content hash of every KSM page in @copies.
 * @copies: the KSM pages with this content (struct ksm_stable_node).
 * @nr_copies: length of @copies; more than one forms a chain.
 * @nid: index of the stable tree holding @node.
 * @domain: the merge domain the content belongs to (see domain.c);
 *          @hash already includes it.
 *
 * A content gets more than one KSM page only when each existing copy
 * already has max_page_sharing mappers.
 */
struct ksm_stable_key {
	struct rb_node node;
	u64 hash;
	struct list_head copies;
	unsigned int nr_copies;
	int nid;
	u64 domain;
};

/**
 * struct ksm_stable_node - the KSM-side identity of one KSM folio
 * @key: the content this folio holds.
 * @copy_link: link on @key->copies: copies with room for another mapper
 *             first, full ones (max_page_sharing mappers) at the tail.
 * @mappers: the rmap items mapping this folio, in no particular order;
 *           each knows its index (->stable_slot). Changed under the folio
 *           lock and ksm_ctx.lock.
 * @nr_items: entries used in @mappers.
 * @nr_joining: pages a ksmd thread is merging into this folio outside
 *              ksm_ctx.lock and has yet to record (scan.c); they count as
 *              mappers, so that no copy takes more than max_page_sharing,
 *              and they keep the node from being freed: a node that goes
 *              stale meanwhile is only unlinked (@key NULL), and the last
 *              joiner to record frees it.
 * @capacity_order: log2 of the entries allocated in @mappers.
 * @kpfn: pfn of the folio; updated by migration.
 *
 * Adding a mapper appends it; removing one moves the last entry into its
 * slot: both O(1) whatever the number of mappers (amortized: the array
 * doubles when full and halves when a quarter full). The array costs
 * 8 to 32 bytes per mapper, only while merged.
 *
 * A KSM folio's ->mapping holds the address of its node plus
 * PAGE_MAPPING_KSM. The node outlives the folio: when the folio is freed,
 * ->mapping no longer points back and the node is found stale and freed.
 */
struct ksm_stable_node {
	struct ksm_stable_key *key;
	struct list_head copy_link;
	struct ksm_rmap_item **mappers;
	unsigned int nr_items;
	u16 nr_joining;
	u8 capacity_order;
	unsigned long kpfn;
};

/* Entries allocated in @node's mapper array. */
static inline unsigned int ksm_node_capacity(const struct ksm_stable_node *node)
{
	return 1U << node->capacity_order;
}

/*
 * The items of an mm are kept per block: an aligned range of user
 * addresses that one ksmd thread scans at a time. A PMD's worth, so that a
 * huge page never spans two blocks and two threads.
 */
#define KSM_BLOCK_SHIFT		PMD_SHIFT
#define KSM_BLOCK_SIZE		BIT(KSM_BLOCK_SHIFT)
#define KSM_BLOCK_MASK		(~(KSM_BLOCK_SIZE - 1))

/*
 * Most pages one page table walk of the scanner collects (see scan.c);
 * sets of them are u32 bit masks.
 */
#define KSM_BATCH		32
static_assert(KSM_BATCH <= 32);

/* Most ksmd threads the ksmd_threads knob allows. */
#define KSM_MAX_THREADS		16
/* Every thread's batch may be joining one node (ksm_stable_node.nr_joining). */
static_assert(KSM_MAX_THREADS * KSM_BATCH <= U16_MAX);

/**
 * struct ksm_mm - a registered mm
 * @slot: hash and list linkage shared with khugepaged's helpers.
 * @blocks: the mm's rmap items: for each block (address >>
 *          KSM_BLOCK_SHIFT) with items, the first of them, linked by
 *          ->next in increasing address order.
 * @claims: blocks of this mm claimed or parked by ksmd threads; the slot
 *          is not freed while any are (changed under mm_list_lock).
 * @tag: the mm's merge domain key when set by prctl() or exec, else 0.
 * @serial: number of this registration (the domain in "process" mode).
 * @cgroup: cgroup v2 id of the registering task.
 * @uid: effective uid (in the initial namespace) of the registering task.
 *
 * @blocks changes under ksm_ctx.lock, a claimed block's list only by the
 * thread holding the claim. @tag, @cgroup and @uid change under
 * mm_list_lock and ksm_ctx.lock; see domain.c.
 */
struct ksm_mm {
	struct mm_slot slot;
	struct xarray blocks;
	unsigned int claims;
	u64 tag;
	u64 serial;
	u64 cgroup;
	u32 uid;
};

/**
 * struct ksm_claim - one block handed to one ksmd thread
 * @slot: the mm; NULL when the claim is empty.
 * @address: next address of the block to look at.
 * @end: end of the block.
 * @head: the block's item list while claimed.
 * @link: where the next item of the block goes in @head's list.
 *
 * A claim lives within one batch of one thread. A thread that runs out of
 * budget mid-block parks the claim (its list back in @slot's @blocks) and
 * any thread resumes it from @address.
 */
struct ksm_claim {
	struct ksm_mm *slot;
	unsigned long address;
	unsigned long end;
	struct ksm_rmap_item *head;
	struct ksm_rmap_item **link;
};

/**
 * struct ksm_scan_cursor - the pass in progress: which blocks are handed out
 * @slot: the mm whose blocks are being handed out; &ksm_ctx.mm_head
 *        between passes.
 * @address: start of @slot's next block to hand out.
 * @parked: claims given back unfinished, resumed before new blocks.
 * @nr_parked: entries used in @parked.
 * @nr_active: claims held by threads right now.
 * @open: a pass has started and not yet been counted as complete.
 * @pass: number of passes started; unstable items of older passes are
 *        no longer in the tree.
 * @full_scans: number of passes completed.
 * @domain: merge domain key of the page being visited.
 * @pairing: the batches of ksmd threads that are making new KSM pages
 *           without ksm_ctx.lock (see scan.c), at most one per thread.
 * @pairs_done: number of times a batch recorded its new KSM pages.
 *
 * A pass is complete when every block has been handed out and no claim is
 * active or parked.
 */
struct ksm_scan_cursor {
	struct ksm_mm *slot;
	unsigned long address;
	struct ksm_claim parked[KSM_MAX_THREADS];
	unsigned int nr_parked;
	unsigned int nr_active;
	bool open;
	unsigned int pass;
	unsigned long full_scans;
	u64 domain;
	struct list_head pairing;
	unsigned long pairs_done;
};

/**
 * struct ksm_knobs - tunables, all exposed in /sys/kernel/mm/ksm
 * @run: KSM_RUN_* value.
 * @pages_to_scan: pages per ksmd batch.
 * @sleep_millisecs: pause between batches.
 * @max_page_sharing: most mappers one KSM page may get.
 * @prune_millisecs: minimum time between sweeps of stale stable nodes.
 * @merge_across_nodes: one tree for all NUMA nodes, or one per node.
 * @use_zero_pages: map all-zero pages to the shared zero page.
 * @smart_scan: look less often at pages that never merge.
 * @huge_split_min_subpages: fewest mergeable pages that justify splitting
 *                           a large folio (see huge.c).
 * @merge_domain: how merge domains are formed (see domain.c).
 * @fresh_frames: a new KSM page gets a frame of its own, not the frame of
 *                one of the pages merged.
 * @threads: number of ksmd threads scanning.
 */
struct ksm_knobs {
	unsigned int run;
	unsigned int pages_to_scan;
	unsigned int sleep_millisecs;
	unsigned int max_page_sharing;
	unsigned int prune_millisecs;
	bool merge_across_nodes;
	bool use_zero_pages;
	bool smart_scan;
	unsigned int huge_split_min_subpages;
	unsigned int merge_domain;
	bool fresh_frames;
	unsigned int threads;
};

/**
 * struct ksm_stats - counters exposed in /sys/kernel/mm/ksm
 * @pages_scanned: pages visited since boot.
 * @pages_shared: KSM pages with at least one tracked mapper.
 * @pages_sharing: tracked mappers beyond the first of each KSM page.
 * @pages_unshared: items in the unstable tree.
 * @pages_skipped: visits skipped by smart scan.
 * @rmap_items: rmap items allocated.
 * @chains: contents with more than one KSM page.
 * @chain_copies: KSM pages belonging to such contents.
 * @huge_split: large folios split to merge their pages; atomic, because
 *              pages that join a KSM page are split without ksm_ctx.lock.
 * @huge_kept: times a large folio was left whole, too few pages merging.
 * @mapper_bytes: bytes of all stable nodes' mapper arrays (debugfs
 *                "metadata": kmalloc()ed, so not in KSM's own slab caches).
 */
struct ksm_stats {
	unsigned long pages_scanned;
	unsigned long pages_shared;
	unsigned long pages_sharing;
	unsigned long pages_unshared;
	unsigned long pages_skipped;
	unsigned long rmap_items;
	unsigned long chains;
	unsigned long chain_copies;
	atomic_long_t huge_split;
	unsigned long huge_kept;
	unsigned long mapper_bytes;
};

/**
 * struct ksm_unstable_bucket - one chain of the unstable table
 * @head: the chain's first item; the others follow through ->chain.
 * @summary: one bit for every item chained here this pass, picked by its
 *           key (see unstable_tree.c): a lookup whose bit is clear has no
 *           twin in the chain and does not walk it.
 */
struct ksm_unstable_bucket {
	struct ksm_rmap_item *head;
	unsigned long summary;
};

/**
 * struct ksm_context - the whole engine state
 * @scan_sem: the scanner gate (see "Locking").
 * @lock: the engine lock (see "Locking").
 * @mm_list_lock: protects @mm_head's list and @mm_hash.
 * @mm_head: list head of registered mms; also the cursor's "between passes".
 * @scan: the block dispenser of the pass in progress.
 * @knobs: tunables.
 * @stats: counters.
 * @stable_roots: stable trees, one per NUMA node or a single one.
 * @unstable_table: the unstable "tree" of the current pass: hash buckets
 *                  of items chained by ->chain (see unstable_tree.c).
 * @unstable_bits: log2 of the number of buckets.
 * @unstable_entries: items linked in @unstable_table this pass.
 * @nr_trees: number of trees in use (1 when merging across nodes).
 * @zero_hash: content hash of an all-zero page.
 * @last_prune: jiffies of the last sweep of stale stable nodes.
 * @thread_wait: ksmd waits here while it has nothing to do.
 * @sleep_wait: ksmd sleeps here between batches.
 * @pass_wait: a ksmd thread with no block left waits here for the
 *             others to complete the pass.
 */
struct ksm_context {
	struct rw_semaphore scan_sem;	/* the scanner gate, see "Locking" */
	struct mutex lock;		/* the engine lock, see "Locking" */
	spinlock_t mm_list_lock;	/* registered mm list and hash */
	struct ksm_mm mm_head;
	struct ksm_scan_cursor scan;
	struct ksm_knobs knobs;
	struct ksm_stats stats;
	struct rb_root *stable_roots;
	struct ksm_unstable_bucket *unstable_table;
	unsigned int unstable_bits;
	unsigned long unstable_entries;
	int nr_trees;
	u64 zero_hash;
	unsigned long last_prune;
	wait_queue_head_t thread_wait;
	wait_queue_head_t sleep_wait;
	wait_queue_head_t pass_wait;
};

extern struct ksm_context ksm_ctx;

/*
 * Largest folio KSM splits: a PMD-sized THP. huge_split_min_subpages is
 * at most this; its default, 64 pages (256 KiB of a 2 MiB THP), splits a
 * THP when at least an eighth of it can be freed.
 */
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
#define KSM_HUGE_MAX_SUBPAGES	HPAGE_PMD_NR
#else
#define KSM_HUGE_MAX_SUBPAGES	1U
#endif
#define KSM_HUGE_SPLIT_MIN_DEFAULT	64

/* Size (log2) of the mm -> struct ksm_mm hash table. */
#define KSM_MM_HASH_BITS	10

/* Assert that the caller holds the engine lock. */
#define ksm_assert_locked()	lockdep_assert_held(&ksm_ctx.lock)

/* Quiet the engine: no ksmd thread is within a batch; see "Locking". */
static inline void ksm_engine_lock(void)
{
	down_write(&ksm_ctx.scan_sem);
	mutex_lock(&ksm_ctx.lock);
}

static inline int ksm_engine_lock_killable(void)
{
	if (down_write_killable(&ksm_ctx.scan_sem))
		return -EINTR;
	if (mutex_lock_killable(&ksm_ctx.lock)) {
		up_write(&ksm_ctx.scan_sem);
		return -EINTR;
	}
	return 0;
}

static inline void ksm_engine_unlock(void)
{
	mutex_unlock(&ksm_ctx.lock);
	up_write(&ksm_ctx.scan_sem);
}

/* An mm whose last user is gone: its page tables are about to vanish. */
static inline bool ksm_mm_exiting(struct mm_struct *mm)
{
	return atomic_read(&mm->mm_users) == 0;
}

/*
 * Net bytes saved: @pages_saved pages no longer need a frame of their
 * own, and each of @nr_items tracked pages costs one rmap item.
 */
static inline long ksm_profit(unsigned long pages_saved,
			      unsigned long nr_items)
{
	return (long)(pages_saved * PAGE_SIZE) -
	       (long)(nr_items * sizeof(struct ksm_rmap_item));
}

/* Index of the tree a page on @nid belongs in. */
static inline int ksm_tree_index(int nid)
{
	return ksm_ctx.knobs.merge_across_nodes ? 0 : nid;
}

static inline struct ksm_stable_node *ksm_folio_node(struct folio *folio)
{
	return folio_test_ksm(folio) ? folio_raw_mapping(folio) : NULL;
}

static inline void ksm_folio_set_node(struct folio *folio,
				      struct ksm_stable_node *node)
{
	folio->mapping = (void *)((unsigned long)node | PAGE_MAPPING_KSM);
}

/* core.c */
void ksm_wake_thread(void);
int ksm_set_run(unsigned int run);
int ksm_set_merge_across_nodes(bool across);
int ksm_set_max_page_sharing(unsigned int max);
int ksm_require_no_ksm_pages(void);
int ksm_set_threads(unsigned int nr);
u64 ksm_threads_runtime(void);

u64 ksm_page_hash(struct page *page);
int ksm_bytes_cmp(const void *a, const void *b);
bool ksm_pages_identical(struct page *a, struct page *b);

/* rmap.c */
void ksm_item_vma_range(const struct ksm_rmap_item *item, pgoff_t *first,
			pgoff_t *last);

/* rmap_item.c */
struct ksm_rmap_item *ksm_rmap_item_new(struct mm_struct *mm,
					unsigned long address);
void ksm_rmap_item_count(struct ksm_rmap_item *item);
void ksm_rmap_item_free(struct ksm_rmap_item *item);
void ksm_rmap_item_claim(struct ksm_rmap_item *item);
bool ksm_rmap_item_unclaim(struct ksm_rmap_item *item);

/* Did the owner of @item, claimed for a merge, let go of it meanwhile? */
static inline bool ksm_rmap_item_orphaned(const struct ksm_rmap_item *item)
{
	return item->state == KSM_ITEM_MERGING && item->pass;
}

void ksm_rmap_item_forget(struct ksm_rmap_item *item);
void ksm_rmap_list_free(struct ksm_rmap_item **link);
void ksm_mm_items_free(struct ksm_mm *slot, unsigned long start,
		       unsigned long end);
int ksm_rmap_item_cache_init(void);

/* unstable_tree.c */
void ksm_unstable_remove(struct ksm_rmap_item *item);
struct ksm_rmap_item *ksm_unstable_find_or_insert(struct ksm_rmap_item *item,
						  struct page *page,
						  struct page **match);
void ksm_unstable_reset(void);
void ksm_unstable_keep(struct ksm_rmap_item *item);
bool ksm_unstable_has_other(u64 hash, int nid, struct mm_struct *mm,
			    unsigned long start, unsigned long end);

/* stable_tree.c */
struct folio *ksm_stable_folio_get(struct ksm_stable_node *node, bool lock);
struct folio *ksm_stable_lookup(struct page *page, u64 hash, int nid,
				struct ksm_stable_node **nodep);
void ksm_stable_join_begin(struct ksm_stable_node *node);
void ksm_stable_join_end(struct ksm_stable_node *node, unsigned int nr);
bool ksm_stable_has_hash(u64 hash, int nid);
struct ksm_stable_node *ksm_stable_insert(struct folio *kfolio, u64 hash,
					  u64 domain);
int ksm_stable_make_room(struct ksm_stable_node *node);
void ksm_stable_add_item(struct ksm_stable_node *node,
			 struct ksm_rmap_item *item);
void ksm_stable_remove_item(struct ksm_rmap_item *item);
int ksm_stable_drop_all(void);
void ksm_stable_prune(void);
void ksm_stable_drop_pfn_range(unsigned long start_pfn, unsigned long end_pfn);
int ksm_stable_cache_init(void);

/* merge.c */
int ksm_merge_into(struct vm_area_struct *vma, struct page *page,
		   struct page *kpage, const struct ksm_stable_node *node);
int ksm_promote_page(struct vm_area_struct *vma, struct page *page);
struct folio *ksm_fresh_frame(struct vm_area_struct *vma, struct page *page);
int ksm_merge_zero_page(struct vm_area_struct *vma, struct page *page);
void ksm_join_pages(struct vm_area_struct *vma, struct page *kpage,
		    const struct ksm_stable_node *node, struct page **pages,
		    const unsigned long *addrs, unsigned int nr, int *errs);
int ksm_unmerge_range(struct vm_area_struct *vma, unsigned long start,
		      unsigned long end, bool lock_vma);
void ksm_unmerge_item(struct ksm_rmap_item *item);
long ksm_zero_pages_inherited(struct mm_struct *oldmm);
struct vm_area_struct *ksm_find_vma(struct mm_struct *mm,
				    unsigned long address);
struct page *ksm_item_page(struct ksm_rmap_item *item);

/* scan.c */
int ksm_scan_batch(struct ksm_claim *claim, unsigned int nr_pages);
bool ksm_scan_pass_draining(void);
int ksm_unmerge_everything(void);

/* mm_slot.c */
bool ksm_huge_merge_pays(struct page *page, struct mm_struct *mm,
			 unsigned long addr, struct page *partner,
			 struct mm_struct *partner_mm,
			 unsigned long partner_addr);
bool ksm_huge_may_split(struct folio *folio);

void ksm_mm_free(struct ksm_mm *slot);
struct ksm_mm *ksm_mm_lookup(struct mm_struct *mm);
int ksm_mm_enter(struct mm_struct *mm, u64 tag);
int ksm_mm_register(struct mm_struct *mm);
long ksm_zero_pages_total(void);
unsigned long ksm_mm_count(void);
int ksm_mm_cache_init(void);

/**
 * struct ksm_figures - what a set of mms gets from KSM, in pages
 * @id: what the set is (a cgroup id, a domain key), for tables.
 * @merging: pages mapped from KSM pages (ksm_merging_pages).
 * @zero: pages mapped from KSM zero pages (ksm_zero_pages).
 * @tracked: rmap items (ksm_rmap_items).
 */
struct ksm_figures {
	u64 id;
	unsigned long merging;
	unsigned long zero;
	unsigned long tracked;
};

void ksm_figures_add_mm(struct ksm_figures *f, struct mm_struct *mm);
void ksm_figures_add(struct ksm_figures *f, const struct ksm_figures *more);
s64 ksm_figures_profit(const struct ksm_figures *f);
void ksm_figures_seq_show(struct seq_file *m, const struct ksm_figures *f);

/* memcg.c */
struct dentry;
struct seq_file;
#if defined(CONFIG_MEMCG) && defined(CONFIG_DEBUG_FS)
void ksm_memcg_debugfs_init(struct dentry *dir);
#else
static inline void ksm_memcg_debugfs_init(struct dentry *dir) { }
#endif

/* stable_tree.c, debugfs */
#ifdef CONFIG_DEBUG_FS
void ksm_stable_debugfs_init(struct dentry *dir);
#else
static inline void ksm_stable_debugfs_init(struct dentry *dir) { }
#endif

/* domain.c */

/* Values of the merge_domain knob (and kinds of domain keys). */
#define KSM_MERGE_DOMAIN_GLOBAL		0
#define KSM_MERGE_DOMAIN_USER		1
#define KSM_MERGE_DOMAIN_CGROUP		2
#define KSM_MERGE_DOMAIN_PROCESS	3

u64 ksm_domain_hash(u64 hash, u64 domain);
u64 ksm_slot_domain(const struct ksm_mm *slot);
void ksm_domain_init_slot(struct ksm_mm *slot, u64 tag);
u64 ksm_domain_tag_of(struct mm_struct *mm);
int ksm_cgroup_path(u64 id, char *buf, size_t len);
const char *ksm_domain_mode_name(unsigned int mode);
int ksm_set_merge_domain(unsigned int mode);

/* advisor.c */

/**
 * enum ksm_advisor_mode - who sets pages_to_scan
 * @KSM_ADVISOR_NONE: the administrator.
 * @KSM_ADVISOR_SCAN_TIME: the advisor, aiming at a full-pass duration.
 */
enum ksm_advisor_mode {
	KSM_ADVISOR_NONE,
	KSM_ADVISOR_SCAN_TIME,
};

/**
 * struct ksm_advisor_knobs - the advisor's tunables
 * @mode: an &enum ksm_advisor_mode value.
 * @max_cpu: most ksmd CPU, in percent of one CPU, the advisor may ask for.
 * @min_pages: lower bound for pages_to_scan.
 * @max_pages: upper bound for pages_to_scan.
 * @target_scan_time: wanted duration of a full pass, in seconds.
 */
struct ksm_advisor_knobs {
	enum ksm_advisor_mode mode;
	unsigned long max_cpu;
	unsigned long min_pages;
	unsigned long max_pages;
	unsigned long target_scan_time;
};

extern struct ksm_advisor_knobs ksm_advisor;

void ksm_advisor_set_mode(enum ksm_advisor_mode mode);
void ksm_advisor_pass_start(void);
void ksm_advisor_pass_end(void);

#endif /* _MM_KSM_INTERNAL_H */
