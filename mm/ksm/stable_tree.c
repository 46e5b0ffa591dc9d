// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: the stable tree.
 *
 * One &struct ksm_stable_key per distinct content, ordered by content hash
 * and, on the rare equal hash, by the content itself. Each key lists the
 * KSM pages holding that content (&struct ksm_stable_node); there is more
 * than one only when every page already has max_page_sharing mappers.
 *
 * KSM pages are never written, so a key's hash stays true for its whole
 * life. A KSM page can be freed behind our back, though (every mapper broke
 * copy-on-write or unmapped it): its node then no longer matches the
 * folio's ->mapping and is dropped the next time anyone looks at it, or by
 * the periodic prune.
 *
 * Everything here runs under ksm_ctx.lock. A node's mapper array is also
 * guarded by its folio lock, for rmap_walk_ksm().
 *
 * Costs, for a KSM page with n mappers and a content with c copies:
 * adding or removing a mapper is O(1) (amortized: the mapper array grows
 * and shrinks by halves), picking a copy with room is O(1) since full
 * copies wait at the tail of the key's list, and a lookup is O(log keys).
 */

#include <linux/debugfs.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "internal.h"
#include <trace/events/ksm.h>

static struct kmem_cache *ksm_stable_node_cache;
static struct kmem_cache *ksm_stable_key_cache;

static struct ksm_stable_key *ksm_key_entry(struct rb_node *node)
{
	return rb_entry(node, struct ksm_stable_key, node);
}

/*
 * Take a reference on @folio unless it is being freed. A zero refcount on
 * a swap-cache folio may just be migration freezing it: wait that out.
 */
static bool ksm_folio_get_unless_freed(struct folio *folio)
{
	while (!folio_try_get(folio)) {
		if (!folio_test_swapcache(folio))
			return false;
		cpu_relax();
	}
	return true;
}

/*
 * Return @node's folio with a reference, or NULL when the folio has gone
 * (the node is stale). A folio still points back to its node through
 * ->mapping; migration publishes the new pfn before retiring the old
 * folio's ->mapping, so a mismatch with an unchanged pfn means stale.
 */
static struct folio *ksm_stable_folio_try(struct ksm_stable_node *node)
{
	void *expected = (void *)((unsigned long)node | PAGE_MAPPING_KSM);
	struct folio *folio;
	unsigned long kpfn;

	do {
		kpfn = READ_ONCE(node->kpfn);
		folio = pfn_folio(kpfn);
		if (READ_ONCE(folio->mapping) == expected &&
		    ksm_folio_get_unless_freed(folio)) {
			if (READ_ONCE(folio->mapping) == expected)
				return folio;
			folio_put(folio);
		}
		/* Pairs with smp_wmb() in folio_migrate_ksm(). */
		smp_rmb();
	} while (READ_ONCE(node->kpfn) != kpfn);
	return NULL;
}

/*
 * Return @node's folio referenced and locked, or NULL when it is stale.
 * Migration holds the folio lock while it moves the data and retires the
 * old folio's ->mapping only then: a folio that stopped pointing to @node
 * while we waited for its lock was migrated, so look again at the new pfn.
 * Once we hold the lock with ->mapping still pointing to @node, a
 * migration yet to come will see our reference and back off.
 */
static struct folio *ksm_stable_folio_lock(struct ksm_stable_node *node)
{
	struct folio *folio;

	while ((folio = ksm_stable_folio_try(node))) {
		folio_lock(folio);
		if (ksm_folio_node(folio) == node)
			return folio;
		folio_unlock(folio);
		folio_put(folio);
	}
	return NULL;
}

/* Fewest mapper slots a node has: a new KSM page starts with two mappers. */
#define KSM_NODE_MIN_ORDER	1
#define KSM_NODE_MIN_CAPACITY	BIT(KSM_NODE_MIN_ORDER)
/* Most: the largest array kvmalloc() hands out is under 2 GiB. */
#define KSM_NODE_MAX_ORDER	27
#define KSM_NODE_MAX_CAPACITY	BIT(KSM_NODE_MAX_ORDER)

/* Mappers that make a KSM page full. */
static unsigned int ksm_node_full_at(void)
{
	return min_t(unsigned int, READ_ONCE(ksm_ctx.knobs.max_page_sharing),
		     KSM_NODE_MAX_CAPACITY);
}

/*
 * Keep full copies of a content at the tail of its list, so that the first
 * copy has room whenever any has: called after @node gained a mapper.
 */
static void ksm_node_note_gained(struct ksm_stable_node *node)
{
	if (node->nr_items == ksm_node_full_at())
		list_move_tail(&node->copy_link, &node->key->copies);
}

/* ... and after it lost one: a copy that has room again goes first. */
static void ksm_node_note_lost(struct ksm_stable_node *node)
{
	if (node->nr_items + 1 == ksm_node_full_at())
		list_move(&node->copy_link, &node->key->copies);
}

/*
 * Bytes of a mapper array of 2^@order entries: kmalloc() and vmalloc() hand
 * out power-of-two sizes (at least 16 bytes here) exactly.
 */
static unsigned long ksm_mappers_bytes(unsigned int order)
{
	return sizeof(struct ksm_rmap_item *) << order;
}

/* Free @node's mapper array. */
static void ksm_node_free_mappers(struct ksm_stable_node *node)
{
	if (!node->mappers)
		return;
	kvfree(node->mappers);
	node->mappers = NULL;
	ksm_ctx.stats.mapper_bytes -= ksm_mappers_bytes(node->capacity_order);
}

/* Give @node's mapper array room for 2^@order entries; 0 or -ENOMEM. */
static int ksm_node_resize(struct ksm_stable_node *node, unsigned int order)
{
	struct ksm_rmap_item **mappers;

	mappers = kvmalloc_array(1U << order, sizeof(*mappers),
				 GFP_KERNEL | __GFP_NOWARN);
	if (!mappers)
		return -ENOMEM;
	if (node->nr_items)
		memcpy(mappers, node->mappers,
		       node->nr_items * sizeof(*mappers));
	ksm_node_free_mappers(node);
	node->mappers = mappers;
	node->capacity_order = order;
	ksm_ctx.stats.mapper_bytes += ksm_mappers_bytes(order);
	return 0;
}

/* Undo what joining @node did to the accounting of one mapper. */
static void ksm_stable_account_leave(struct ksm_stable_node *node,
				     struct ksm_rmap_item *item)
{
	node->nr_items--;
	if (node->nr_items)
		ksm_ctx.stats.pages_sharing--;
	else
		ksm_ctx.stats.pages_shared--;
	ksm_node_note_lost(node);
	item->mm->ksm_merging_pages--;
	put_anon_vma(item->anon_vma);
	item->anon_vma = NULL;
	item->stable = NULL;
	item->stable_slot = 0;
	item->pgoff_delta = 0;
	item->state = KSM_ITEM_NEW;
	item->hashed = 0;	/* the stable fields overwrote the hash */
}

static void ksm_key_account_copies(struct ksm_stable_key *key, int delta)
{
	unsigned int before = key->nr_copies;
	unsigned int after = before + delta;

	if (before > 1) {
		ksm_ctx.stats.chains--;
		ksm_ctx.stats.chain_copies -= before;
	}
	if (after > 1) {
		ksm_ctx.stats.chains++;
		ksm_ctx.stats.chain_copies += after;
	}
	key->nr_copies = after;
}

static void ksm_key_free_if_empty(struct ksm_stable_key *key)
{
	if (key->nr_copies)
		return;
	rb_erase(&key->node, &ksm_ctx.stable_roots[key->nid]);
	kmem_cache_free(ksm_stable_key_cache, key);
}

/*
 * Free @node after detaching its mappers. The caller makes sure no folio
 * points to it any more. The key is left for the caller to free if empty.
 * A node that threads are still joining only leaves its key: the last of
 * them frees it (ksm_stable_join_end()).
 */
static void ksm_stable_node_free(struct ksm_stable_node *node)
{
	while (node->nr_items)
		ksm_stable_account_leave(node,
					 node->mappers[node->nr_items - 1]);
	trace_ksm_remove_ksm_page(node->kpfn);
	list_del(&node->copy_link);
	ksm_key_account_copies(node->key, -1);
	ksm_node_free_mappers(node);
	node->key = NULL;
	if (!node->nr_joining)
		kmem_cache_free(ksm_stable_node_cache, node);
}

/**
 * ksm_stable_folio_get() - get the folio of a stable node, dropping it if stale
 * @node: the node; freed when NULL is returned.
 * @lock: also lock the folio.
 *
 * Context: ksm_ctx.lock held; may sleep when @lock.
 * Return: the referenced (and, with @lock, locked) folio, or NULL.
 */
struct folio *ksm_stable_folio_get(struct ksm_stable_node *node, bool lock)
{
	struct ksm_stable_key *key = node->key;
	struct folio *folio;

	ksm_assert_locked();
	folio = lock ? ksm_stable_folio_lock(node) : ksm_stable_folio_try(node);
	if (!folio) {
		ksm_stable_node_free(node);
		ksm_key_free_if_empty(key);
	}
	return folio;
}

/*
 * Return a referenced folio holding @key's content, dropping stale copies
 * on the way; NULL when none is left (the key is then empty, not freed).
 */
static struct folio *ksm_key_sample(struct ksm_stable_key *key)
{
	struct ksm_stable_node *node, *tmp;
	struct folio *folio;

	list_for_each_entry_safe(node, tmp, &key->copies, copy_link) {
		folio = ksm_stable_folio_try(node);
		if (folio)
			return folio;
		ksm_stable_node_free(node);
	}
	return NULL;
}

/* Compare @page with @key's content: <0, 0, >0 like memcmp; 1 if no copy. */
static int ksm_key_compare(struct ksm_stable_key *key, struct page *page)
{
	struct folio *folio = ksm_key_sample(key);
	void *a, *b;
	int ret;

	if (!folio)
		return 1;
	a = kmap_local_page(page);
	b = kmap_local_folio(folio, 0);
	/* @page is writable: benign, the merge compares it again. */
	ret = data_race(ksm_bytes_cmp(a, b));
	kunmap_local(b);
	kunmap_local(a);
	folio_put(folio);
	return ret;
}

/* Does a neighbour of @key in its tree have the same hash? */
static bool ksm_key_hash_shared(struct ksm_stable_key *key)
{
	struct rb_node *prev = rb_prev(&key->node), *next = rb_next(&key->node);

	return (prev && ksm_key_entry(prev)->hash == key->hash) ||
	       (next && ksm_key_entry(next)->hash == key->hash);
}

/*
 * Find the key holding @page's content. On a miss, *@link and *@parent
 * tell where a new key goes. Empty keys met on the way are freed and the
 * search restarts.
 *
 * With @exact, the page is compared with every key of its hash. Without,
 * a key whose hash no other key has is taken on the hash alone: the
 * caller is about to merge, and a merge compares the bytes anyway once
 * the page is write-protected, so a collision only costs a failed merge.
 */
static struct ksm_stable_key *ksm_key_find(struct rb_root *root,
					   struct page *page, u64 hash,
					   bool exact, struct rb_node ***link,
					   struct rb_node **parent)
{
	struct ksm_stable_key *key;
	int cmp;

again:
	*link = &root->rb_node;
	*parent = NULL;
	while (**link) {
		*parent = **link;
		key = ksm_key_entry(*parent);
		if (hash != key->hash) {
			cmp = hash < key->hash ? -1 : 1;
		} else {
			if (!exact && !ksm_key_hash_shared(key))
				return key;
			cmp = ksm_key_compare(key, page);
			if (!key->nr_copies) {
				ksm_key_free_if_empty(key);
				goto again;
			}
		}
		if (!cmp)
			return key;
		*link = cmp < 0 ? &(*parent)->rb_left : &(*parent)->rb_right;
	}
	return NULL;
}

/*
 * @node's folio, referenced, or NULL after freeing the stale @node. The
 * folio is not locked: it may be on its way to a new frame, which the
 * merge, under the folio lock, finds out (ksm_join_pages()).
 */
static struct folio *ksm_node_folio_or_free(struct ksm_stable_node *node)
{
	struct folio *folio = ksm_stable_folio_try(node);

	if (!folio)
		ksm_stable_node_free(node);
	return folio;
}

/* Mappers of @node so far: those recorded and those being merged. */
static unsigned int ksm_node_mappers(struct ksm_stable_node *node)
{
	return node->nr_items + node->nr_joining;
}

/*
 * A live copy of @key with room for one more mapper, on the right node;
 * its node in *@nodep. Copies with room come before full ones, so the walk
 * stops at the first full copy: past stale copies, copies that migration
 * moved to another node and copies that threads are filling up, it looks
 * at one copy whatever their number.
 */
static struct folio *ksm_key_pick_copy(struct ksm_stable_key *key,
				       struct page *page,
				       struct ksm_stable_node **nodep)
{
	unsigned int max = ksm_node_full_at();
	struct ksm_stable_node *node, *tmp;
	struct folio *folio;

	/* A forked KSM page is already merged with itself, full or not. */
	node = PageKsm(page) ? ksm_folio_node(page_folio(page)) : NULL;
	if (node && node->key == key) {
		folio = ksm_node_folio_or_free(node);
		if (folio)
			goto found;
	}

	list_for_each_entry_safe(node, tmp, &key->copies, copy_link) {
		if (node->nr_items >= max)
			break;
		if (ksm_node_mappers(node) >= max)
			continue;
		folio = ksm_node_folio_or_free(node);
		if (!folio)
			continue;
		if (ksm_tree_index(folio_nid(folio)) == key->nid)
			goto found;
		folio_put(folio);
	}
	return NULL;
found:
	*nodep = node;
	return folio;
}

/**
 * ksm_stable_lookup() - find a KSM page with the content of a page
 * @page: the candidate page, referenced by the caller.
 * @hash: its content hash.
 * @nid: the NUMA node of @page.
 * @nodep: where the found page's node goes.
 *
 * Where no other content has @hash the bytes are not compared here: the
 * caller merges, which compares them with the page write-protected. The
 * folio found is not locked, so lookups never wait for merges: it may be
 * on its way to another frame, which the merge must check under the folio
 * lock (ksm_folio_node() no longer *@nodep).
 *
 * Context: ksm_ctx.lock held.
 * Return: a referenced KSM folio with room for another mapper, or NULL.
 */
struct folio *ksm_stable_lookup(struct page *page, u64 hash, int nid,
				struct ksm_stable_node **nodep)
{
	struct rb_root *root = &ksm_ctx.stable_roots[ksm_tree_index(nid)];
	struct ksm_stable_key *key;
	struct rb_node **link, *parent;
	struct folio *folio;

	ksm_assert_locked();
	key = ksm_key_find(root, page, hash, false, &link, &parent);
	if (!key)
		return NULL;
	folio = ksm_key_pick_copy(key, page, nodep);
	ksm_key_free_if_empty(key);
	return folio;
}

/**
 * ksm_stable_join_begin() - count one page about to be merged into a KSM page
 * @node: the KSM page's node, as ksm_stable_lookup() found it.
 *
 * The page counts as a mapper until ksm_stable_join_end(), and @node stays
 * allocated until then.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_stable_join_begin(struct ksm_stable_node *node)
{
	ksm_assert_locked();
	node->nr_joining++;
}

/**
 * ksm_stable_join_end() - stop counting pages merged into a KSM page
 * @node: the node given to ksm_stable_join_begin() @nr times.
 * @nr: how many pages; the merged ones have been recorded as mappers.
 *
 * Frees @node if it went stale meanwhile and this was its last joiner.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_stable_join_end(struct ksm_stable_node *node, unsigned int nr)
{
	ksm_assert_locked();
	node->nr_joining -= nr;
	if (!node->key && !node->nr_joining)
		kmem_cache_free(ksm_stable_node_cache, node);
}

/**
 * ksm_stable_has_hash() - is there a KSM page with this content hash?
 * @hash: a content hash.
 * @nid: index of the stable tree to look in.
 *
 * Only the hash is compared: good enough for estimates, never for merging.
 *
 * Context: ksm_ctx.lock held.
 * Return: true if some key of the tree has @hash.
 */
bool ksm_stable_has_hash(u64 hash, int nid)
{
	struct rb_node *node = ksm_ctx.stable_roots[nid].rb_node;

	ksm_assert_locked();
	while (node) {
		struct ksm_stable_key *key = ksm_key_entry(node);

		if (hash == key->hash)
			return key->nr_copies > 0;
		node = hash < key->hash ? node->rb_left : node->rb_right;
	}
	return false;
}

static struct ksm_stable_key *ksm_key_create(struct rb_root *root, u64 hash,
					     int nid, struct rb_node **link,
					     struct rb_node *parent)
{
	struct ksm_stable_key *key;

	key = kmem_cache_zalloc(ksm_stable_key_cache, GFP_KERNEL |
				__GFP_NORETRY | __GFP_NOWARN);
	if (!key)
		return NULL;
	key->hash = hash;
	key->nid = nid;
	INIT_LIST_HEAD(&key->copies);
	rb_link_node(&key->node, parent, link);
	rb_insert_color(&key->node, root);
	return key;
}

/*
 * Would a lookup of @kfolio's content under @key pick a live copy with
 * room rather than @kfolio? O(1) like ksm_key_pick_copy().
 */
static bool ksm_key_taken(struct ksm_stable_key *key, struct folio *kfolio)
{
	struct ksm_stable_node *other;
	struct folio *folio = ksm_key_pick_copy(key, &kfolio->page, &other);

	if (!folio)
		return false;
	folio_put(folio);
	return true;
}

/**
 * ksm_stable_insert() - give a new KSM folio its node in the stable tree
 * @kfolio: locked folio just turned into a KSM folio with no node yet.
 * @hash: the hash its content is filed under (domain included).
 * @domain: the merge domain of its mappers.
 *
 * A content gets a second KSM page only when the first is full: threads
 * that made KSM pages of one content side by side (see scan.c) find the
 * content filed already, with room, and the later ones are refused.
 *
 * Context: ksm_ctx.lock held.
 * Return: the new node, now referenced by @kfolio->mapping; NULL without
 * memory or when a KSM page of the content still has room for mappers.
 */
struct ksm_stable_node *ksm_stable_insert(struct folio *kfolio, u64 hash,
					  u64 domain)
{
	int nid = ksm_tree_index(folio_nid(kfolio));
	struct rb_root *root = &ksm_ctx.stable_roots[nid];
	struct ksm_stable_node *node;
	struct ksm_stable_key *key;
	struct rb_node **link, *parent;

	ksm_assert_locked();
	node = kmem_cache_zalloc(ksm_stable_node_cache, GFP_KERNEL |
				 __GFP_NORETRY | __GFP_NOWARN);
	if (!node)
		return NULL;
	if (ksm_node_resize(node, KSM_NODE_MIN_ORDER)) {
		kmem_cache_free(ksm_stable_node_cache, node);
		return NULL;
	}

	key = ksm_key_find(root, &kfolio->page, hash, true, &link, &parent);
	if (key && ksm_key_taken(key, kfolio)) {
		ksm_node_free_mappers(node);
		kmem_cache_free(ksm_stable_node_cache, node);
		return NULL;
	}
	if (!key) {
		key = ksm_key_create(root, hash, nid, link, parent);
		if (key)
			key->domain = domain;
	}
	if (!key) {
		ksm_node_free_mappers(node);
		kmem_cache_free(ksm_stable_node_cache, node);
		return NULL;
	}

	node->key = key;
	node->kpfn = folio_pfn(kfolio);
	list_add(&node->copy_link, &key->copies);
	ksm_key_account_copies(key, 1);
	ksm_folio_set_node(kfolio, node);
	return node;
}

/**
 * ksm_stable_make_room() - make sure a KSM page can take one more mapper
 * @node: the KSM page's node; its folio is locked by the caller.
 *
 * A new node has room for its first two mappers; later ones may need the
 * mapper array doubled.
 *
 * Context: ksm_ctx.lock and the KSM folio lock held; may sleep.
 * Return: 0, or -ENOMEM.
 */
int ksm_stable_make_room(struct ksm_stable_node *node)
{
	ksm_assert_locked();
	if (node->nr_items < ksm_node_capacity(node))
		return 0;
	if (node->capacity_order >= KSM_NODE_MAX_ORDER)
		return -ENOMEM;
	return ksm_node_resize(node, node->capacity_order + 1);
}

/**
 * ksm_stable_add_item() - record one more mapper of a KSM page
 * @node: the KSM page's node, with room (see ksm_stable_make_room());
 *        its folio is locked by the caller.
 * @item: the mapper's item, state KSM_ITEM_NEW, ->anon_vma pinned.
 *
 * Context: ksm_ctx.lock and the KSM folio lock held.
 */
void ksm_stable_add_item(struct ksm_stable_node *node,
			 struct ksm_rmap_item *item)
{
	ksm_assert_locked();
	if (WARN_ON_ONCE(node->nr_items >= ksm_node_capacity(node)))
		return;
	if (node->nr_items)
		ksm_ctx.stats.pages_sharing++;
	else
		ksm_ctx.stats.pages_shared++;
	item->stable = node;
	item->stable_slot = node->nr_items;
	node->mappers[node->nr_items++] = item;
	item->state = KSM_ITEM_STABLE;
	item->mm->ksm_merging_pages++;
	ksm_node_note_gained(node);
}

/*
 * Take @item out of @node's mapper array: the last entry takes its slot.
 * The array halves once it is a quarter full (if memory allows), so that
 * a page that once had many mappers does not keep their array.
 */
static void ksm_stable_unlink_item(struct ksm_stable_node *node,
				   struct ksm_rmap_item *item)
{
	unsigned int slot = item->stable_slot;
	struct ksm_rmap_item *last;

	if (WARN_ON_ONCE(slot >= node->nr_items || node->mappers[slot] != item))
		return;
	last = node->mappers[node->nr_items - 1];
	node->mappers[slot] = last;
	last->stable_slot = slot;
	node->mappers[node->nr_items - 1] = item;
	if (node->capacity_order > KSM_NODE_MIN_ORDER &&
	    node->nr_items - 1 <= ksm_node_capacity(node) / 4)
		ksm_node_resize(node, node->capacity_order - 1);
}

/**
 * ksm_stable_remove_item() - forget one mapper of a KSM page
 * @item: an item in state KSM_ITEM_STABLE.
 *
 * The node stays while its folio lives, even with no mapper left: a forked
 * child may still map the page and merge with it later.
 *
 * Context: ksm_ctx.lock held; may sleep.
 */
void ksm_stable_remove_item(struct ksm_rmap_item *item)
{
	struct ksm_stable_node *node = item->stable;
	struct folio *folio;

	ksm_assert_locked();
	folio = ksm_stable_folio_get(node, true);
	if (!folio)
		return;	/* the stale node took its mappers with it */

	trace_ksm_remove_rmap_item(node->kpfn, item, item->mm);
	ksm_stable_unlink_item(node, item);
	ksm_stable_account_leave(node, item);
	folio_unlock(folio);
	folio_put(folio);
}

/*
 * Detach @node from its folio and free it. Fails with -EBUSY while the
 * folio is still mapped somewhere. Leaves an empty key to the caller.
 */
static int ksm_stable_node_retire(struct ksm_stable_node *node)
{
	struct folio *folio = ksm_stable_folio_lock(node);
	int err = 0;

	if (!folio)
		goto free;
	if (folio_mapped(folio)) {
		err = -EBUSY;
		goto unlock;
	}
	/* Still KSM (it may sit in the swap cache), but owned by nobody. */
	ksm_folio_set_node(folio, NULL);
unlock:
	folio_unlock(folio);
	folio_put(folio);
	if (err)
		return err;
free:
	ksm_stable_node_free(node);
	return 0;
}

/*
 * Apply @fn to every node of every stable tree. @fn may free the node it
 * is given but must leave the key alone; empty keys are freed here.
 */
static void ksm_stable_for_each(void (*fn)(struct ksm_stable_node *, void *),
				void *arg)
{
	struct ksm_stable_node *node, *tmp;
	struct ksm_stable_key *key;
	struct rb_node *rb, *next;
	int i;

	for (i = 0; i < ksm_ctx.nr_trees; i++) {
		for (rb = rb_first(&ksm_ctx.stable_roots[i]); rb; rb = next) {
			key = ksm_key_entry(rb);
			next = rb_next(rb);
			list_for_each_entry_safe(node, tmp, &key->copies,
						 copy_link)
				fn(node, arg);
			ksm_key_free_if_empty(key);
			cond_resched();
		}
	}
}

static void ksm_stable_retire_one(struct ksm_stable_node *node, void *busy)
{
	if (ksm_stable_node_retire(node))
		*(bool *)busy = true;
}

/**
 * ksm_stable_drop_all() - empty the stable trees
 *
 * Context: ksm_ctx.lock held.
 * Return: 0, or -EBUSY if some KSM page is still mapped (its node stays).
 */
int ksm_stable_drop_all(void)
{
	bool busy = false;

	ksm_assert_locked();
	ksm_stable_for_each(ksm_stable_retire_one, &busy);
	return busy ? -EBUSY : 0;
}

static void ksm_stable_prune_one(struct ksm_stable_node *node, void *unused)
{
	struct folio *folio = ksm_stable_folio_try(node);

	if (folio)
		folio_put(folio);
	else
		ksm_stable_node_free(node);
}

/**
 * ksm_stable_prune() - free the nodes of KSM pages that were freed
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_stable_prune(void)
{
	ksm_assert_locked();
	ksm_stable_for_each(ksm_stable_prune_one, NULL);
}

struct ksm_pfn_range {
	unsigned long start;
	unsigned long end;
};

static void ksm_stable_drop_in_range(struct ksm_stable_node *node, void *arg)
{
	struct ksm_pfn_range *range = arg;

	if (node->kpfn >= range->start && node->kpfn < range->end)
		ksm_stable_node_free(node);
}

/**
 * ksm_stable_drop_pfn_range() - forget KSM pages in memory being offlined
 * @start_pfn: first pfn of the range.
 * @end_pfn: first pfn after the range.
 *
 * Offlining has already migrated away every page in use; what is left in
 * the range are nodes of freed folios.
 *
 * Context: ksm_ctx.lock held.
 */
void ksm_stable_drop_pfn_range(unsigned long start_pfn, unsigned long end_pfn)
{
	struct ksm_pfn_range range = { .start = start_pfn, .end = end_pfn };

	ksm_assert_locked();
	ksm_stable_for_each(ksm_stable_drop_in_range, &range);
}

/**
 * ksm_stable_cache_init() - create the slab caches for keys and nodes
 *
 * Return: 0 or -ENOMEM.
 */
int __init ksm_stable_cache_init(void)
{
	ksm_stable_node_cache = KMEM_CACHE(ksm_stable_node, 0);
	ksm_stable_key_cache = KMEM_CACHE(ksm_stable_key, 0);
	if (ksm_stable_node_cache && ksm_stable_key_cache)
		return 0;
	kmem_cache_destroy(ksm_stable_node_cache);
	kmem_cache_destroy(ksm_stable_key_cache);
	return -ENOMEM;
}

#ifdef CONFIG_DEBUG_FS
/*
 * What KSM's metadata takes outside its own slab caches (which
 * /proc/slabinfo lists under names holding "ksm"), in bytes: the stable
 * nodes' mapper arrays and the unstable table.
 */
static int ksm_metadata_show(struct seq_file *m, void *v)
{
	unsigned long mappers, table;

	mutex_lock(&ksm_ctx.lock);
	mappers = ksm_ctx.stats.mapper_bytes;
	table = ksm_ctx.unstable_table ?
		sizeof(*ksm_ctx.unstable_table) << ksm_ctx.unstable_bits : 0;
	mutex_unlock(&ksm_ctx.lock);
	seq_printf(m, "mapper_arrays %lu\nunstable_table %lu\n", mappers, table);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ksm_metadata);

/**
 * ksm_stable_debugfs_init() - add the metadata figures to KSM's debugfs
 * @dir: the ksm directory of debugfs.
 */
void ksm_stable_debugfs_init(struct dentry *dir)
{
	debugfs_create_file("metadata", 0400, dir, NULL, &ksm_metadata_fops);
}
#endif /* CONFIG_DEBUG_FS */

#include "tests/stable_tree-kunit.h"
