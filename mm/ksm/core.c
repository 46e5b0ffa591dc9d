// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: engine state, the ksmd thread and run control.
 */

/**
 * DOC: Overview
 *
 * Applications mark anonymous memory as mergeable (madvise(MADV_MERGEABLE)
 * or prctl(PR_SET_MEMORY_MERGE)). The ksmd thread visits the pages of every
 * registered mm in address order and, for each page:
 *
 * 1. hashes its content (64-bit xxhash);
 * 2. looks the hash up in the *stable tree*, which holds one entry per
 *    distinct content of existing KSM pages. Entries are ordered by hash
 *    first, so a lookup compares whole pages only on a hash hit; if the
 *    page equals a KSM page with room for another mapper, its PTE is
 *    pointed at that KSM page and the private page is freed;
 * 3. otherwise, unless the page changed since its previous visit (it is
 *    being written to), looks it up in the *unstable tree*: pages seen
 *    during this pass, again keyed by hash. A page seen for the first
 *    time goes straight in: it needs no second visit to merge. A match whose
 *    content really is identical is merged with it: one of the two pages
 *    becomes a write-protected KSM page, both PTEs map it, and its content
 *    moves to the stable tree. Without a match the page joins the unstable
 *    tree.
 *
 * The unstable tree holds ordinary writable pages, so their content may
 * change after insertion. It is in fact a hash table keyed by the hash
 * stored at insertion time, not by live content, so it never goes wrong; a
 * stale entry only costs one failed page compare. It is simply emptied at
 * the start of every pass.
 *
 * A write to a KSM page faults and the fault handler gives the writer a
 * private copy (copy-on-write). KSM pages are ordinary anonymous folios
 * whose ->mapping points to a &struct ksm_stable_node, so reclaim,
 * migration and memory-failure find their mappers through rmap_walk_ksm().
 *
 * Hash collisions are harmless: every merge is preceded by a full compare
 * made after the candidate's PTE has been write-protected.
 */

#define pr_fmt(fmt) "ksm: " fmt

#include <linux/freezer.h>
#include <linux/kthread.h>
#include <linux/memory.h>
#include <linux/oom.h>
#include <linux/sched.h>
#include <linux/sched/cputime.h>
#include <linux/slab.h>
#include <linux/xxhash.h>

#include "internal.h"

#define CREATE_TRACE_POINTS
#include <trace/events/ksm.h>

static struct rb_root ksm_single_stable_root = RB_ROOT;

struct ksm_context ksm_ctx = {
	.scan_sem = __RWSEM_INITIALIZER(ksm_ctx.scan_sem),
	.lock = __MUTEX_INITIALIZER(ksm_ctx.lock),
	.mm_list_lock = __SPIN_LOCK_UNLOCKED(ksm_ctx.mm_list_lock),
	.mm_head = {
		.slot.mm_node = LIST_HEAD_INIT(ksm_ctx.mm_head.slot.mm_node),
	},
	.scan = {
		.slot = &ksm_ctx.mm_head,
		.pairing = LIST_HEAD_INIT(ksm_ctx.scan.pairing),
	},
	.knobs = {
		.run = KSM_RUN_STOP,
		.pages_to_scan = 100,
		.sleep_millisecs = 20,
		.max_page_sharing = 256,
		.prune_millisecs = 2000,
		.merge_across_nodes = true,
		.use_zero_pages = false,
		.smart_scan = true,
		.huge_split_min_subpages = KSM_HUGE_SPLIT_MIN_DEFAULT,
		.merge_domain = KSM_MERGE_DOMAIN_USER,
		.fresh_frames = true,
		.threads = 1,
	},
	.stable_roots = &ksm_single_stable_root,
	.nr_trees = 1,
	.thread_wait = __WAIT_QUEUE_HEAD_INITIALIZER(ksm_ctx.thread_wait),
	.sleep_wait = __WAIT_QUEUE_HEAD_INITIALIZER(ksm_ctx.sleep_wait),
	.pass_wait = __WAIT_QUEUE_HEAD_INITIALIZER(ksm_ctx.pass_wait),
};

/**
 * struct ksm_thread - one ksmd thread
 * @task: the kthread; NULL when not running.
 * @claim: the block it is scanning (empty between batches).
 */
struct ksm_thread {
	struct task_struct *task;
	struct ksm_claim claim;
};

/*
 * The ksmd threads; ksm_threads_lock serializes starting and stopping
 * them. It is never held with the engine locks: a thread being stopped
 * may be waiting for those.
 */
static struct ksm_thread ksm_threads[KSM_MAX_THREADS];
static DEFINE_MUTEX(ksm_threads_lock);

/**
 * ksm_page_hash() - hash the content of one page
 * @page: the page; the caller holds a reference.
 *
 * User space may be writing the page meanwhile: the hash of a changing
 * page is a hash that matches nothing, or a stale one, and every merge
 * compares the bytes again once nobody can write them.
 *
 * Return: the 64-bit xxhash of the page's bytes.
 */
u64 ksm_page_hash(struct page *page)
{
	void *addr = kmap_local_page(page);
	/* A benign race with user space writes: see above. */
	u64 hash = data_race(xxh64(addr, PAGE_SIZE, 0));

	kunmap_local(addr);
	return hash;
}

/**
 * ksm_bytes_cmp() - compare the bytes of two pages, like memcmp()
 * @a: the first page's address.
 * @b: the second page's.
 *
 * Eight words (64 bytes) at a time, XORed and ORed together: a stretch
 * that is the same in both, what almost every compare KSM makes finds,
 * costs one branch instead of one per word (memcmp()'s loop, which takes
 * about twice the instructions per byte of the xxhash). Only the first
 * stretch that differs goes to memcmp(), for the order the stable tree
 * needs.
 *
 * Return: <0, 0 or >0 as memcmp(@a, @b, PAGE_SIZE) would.
 */
int ksm_bytes_cmp(const void *a, const void *b)
{
	const unsigned long *x = a, *y = b, *end = x + PAGE_SIZE / sizeof(*x);

	for (; x < end; x += 8, y += 8) {
		if ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) |
		    (x[3] ^ y[3]) | (x[4] ^ y[4]) | (x[5] ^ y[5]) |
		    (x[6] ^ y[6]) | (x[7] ^ y[7]))
			return memcmp(x, y, 8 * sizeof(*x));
	}
	return 0;
}

/**
 * ksm_pages_identical() - do two pages hold the same bytes?
 * @a: one page.
 * @b: the other.
 *
 * Return: true if they do; pages_identical() with ksm_bytes_cmp().
 */
bool ksm_pages_identical(struct page *a, struct page *b)
{
	void *x = kmap_local_page(a), *y = kmap_local_page(b);
	int ret = ksm_bytes_cmp(x, y);

	kunmap_local(y);
	kunmap_local(x);
	return !ret;
}

/**
 * ksm_wake_thread() - let ksmd re-read its knobs now
 */
void ksm_wake_thread(void)
{
	wake_up_interruptible(&ksm_ctx.thread_wait);
	wake_up_interruptible(&ksm_ctx.sleep_wait);
}

static bool ksmd_has_work(void)
{
	return (READ_ONCE(ksm_ctx.knobs.run) & KSM_RUN_MERGE) &&
	       !list_empty(&ksm_ctx.mm_head.slot.mm_node);
}

static void ksmd_pause(void)
{
	unsigned int msecs = READ_ONCE(ksm_ctx.knobs.sleep_millisecs);

	if (!ksmd_has_work()) {
		wait_event_freezable(ksm_ctx.thread_wait,
				     ksmd_has_work() || kthread_should_stop());
		return;
	}
	wait_event_freezable_timeout(ksm_ctx.sleep_wait,
				     READ_ONCE(ksm_ctx.knobs.sleep_millisecs) != msecs ||
				     kthread_should_stop(),
				     msecs_to_jiffies(msecs));
}

/*
 * ksmd yields to ordinary work but must not starve: at the lowest priority
 * a single busy task on its CPU can stop merging altogether.
 */
#define KSMD_NICE	5

static int ksmd_main(void *arg)
{
	struct ksm_thread *self = arg;
	int err;

	set_freezable();
	set_user_nice(current, KSMD_NICE);

	while (!kthread_should_stop()) {
		err = 0;
		/* Checked under the gate: run=0 returns with no batch left. */
		down_read(&ksm_ctx.scan_sem);
		if (ksmd_has_work())
			err = ksm_scan_batch(&self->claim,
					     READ_ONCE(ksm_ctx.knobs.pages_to_scan));
		up_read(&ksm_ctx.scan_sem);

		try_to_freeze();
		if (err == -EAGAIN)	/* others are finishing the pass */
			wait_event_freezable(ksm_ctx.pass_wait,
					     !ksm_scan_pass_draining() ||
					     kthread_should_stop());
		else
			ksmd_pause();
	}
	return 0;
}

/* Start ksmd thread @i: "ksmd" for the first, as in every kernel. */
static int ksm_thread_start(unsigned int i)
{
	struct task_struct *task;

	task = i ? kthread_run(ksmd_main, &ksm_threads[i], "ksmd/%u", i) :
		   kthread_run(ksmd_main, &ksm_threads[i], "ksmd");
	if (IS_ERR(task))
		return PTR_ERR(task);
	WRITE_ONCE(ksm_threads[i].task, task);
	return 0;
}

static void ksm_thread_stop(unsigned int i)
{
	struct task_struct *task = ksm_threads[i].task;

	WRITE_ONCE(ksm_threads[i].task, NULL);
	kthread_stop(task);
}

/**
 * ksm_set_threads() - change the number of ksmd threads
 * @nr: 1 to KSM_MAX_THREADS.
 *
 * A stopped thread has no claim: it parked it at the end of its last
 * batch, and the threads left resume it.
 *
 * Context: process context; may sleep until stopped threads finish their
 * batch.
 * Return: 0, -EINVAL, or the error of starting a thread (the count is
 * then unchanged).
 */
int ksm_set_threads(unsigned int nr)
{
	unsigned int i, old;
	int err = 0;

	if (!nr || nr > KSM_MAX_THREADS)
		return -EINVAL;
	mutex_lock(&ksm_threads_lock);
	old = ksm_ctx.knobs.threads;
	for (i = old; i < nr; i++) {
		err = ksm_thread_start(i);
		if (err)
			goto undo;
	}
	for (i = old; i > nr; i--)
		ksm_thread_stop(i - 1);
	WRITE_ONCE(ksm_ctx.knobs.threads, nr);
	goto out;
undo:
	while (i > old)
		ksm_thread_stop(--i);
out:
	mutex_unlock(&ksm_threads_lock);
	return err;
}

/**
 * ksm_threads_runtime() - CPU time used by all ksmd threads
 *
 * Return: the sum of their runtimes, in nanoseconds.
 */
u64 ksm_threads_runtime(void)
{
	struct task_struct *task;
	u64 sum = 0;
	int i;

	/* A task_struct is freed only after an RCU grace period. */
	rcu_read_lock();
	for (i = 0; i < KSM_MAX_THREADS; i++) {
		task = READ_ONCE(ksm_threads[i].task);
		if (task)
			sum += task_sched_runtime(task);
	}
	rcu_read_unlock();
	return sum;
}

/**
 * ksm_set_run() - change the run knob
 * @run: KSM_RUN_STOP, KSM_RUN_MERGE or KSM_RUN_UNMERGE.
 *
 * KSM_RUN_UNMERGE breaks every KSM page back into private pages before
 * returning, and forgets all trees.
 *
 * Context: process context; takes ksm_engine_lock().
 * Return: 0, or a negative errno when unmerging failed (run is then left
 * at KSM_RUN_STOP).
 */
int ksm_set_run(unsigned int run)
{
	int err = 0;

	ksm_engine_lock();
	if (ksm_ctx.knobs.run != run) {
		WRITE_ONCE(ksm_ctx.knobs.run, run);
		if (run & KSM_RUN_UNMERGE) {
			set_current_oom_origin();
			err = ksm_unmerge_everything();
			clear_current_oom_origin();
			if (err)
				WRITE_ONCE(ksm_ctx.knobs.run, KSM_RUN_STOP);
		}
	}
	ksm_engine_unlock();

	if (run & KSM_RUN_MERGE)
		ksm_wake_thread();
	return err;
}

static int ksm_resize_trees(bool across)
{
	struct rb_root *roots;
	int i;

	if (!across && ksm_ctx.stable_roots == &ksm_single_stable_root) {
		roots = kcalloc(nr_node_ids, sizeof(*roots), GFP_KERNEL);
		if (!roots)
			return -ENOMEM;
		for (i = 0; i < nr_node_ids; i++)
			roots[i] = RB_ROOT;
		ksm_ctx.stable_roots = roots;
	}
	ksm_ctx.nr_trees = across ? 1 : nr_node_ids;
	return 0;
}

/**
 * ksm_require_no_ksm_pages() - check that no KSM page is mapped
 *
 * Knobs that change where pages are filed (merge_across_nodes,
 * max_page_sharing, merge_domain) may only change while no KSM page is
 * mapped; the stable nodes left over from freed KSM pages are dropped.
 *
 * Context: ksm_engine_lock() held.
 * Return: 0 with the stable trees empty, or -EBUSY.
 */
int ksm_require_no_ksm_pages(void)
{
	ksm_assert_locked();
	if (ksm_ctx.stats.pages_shared || ksm_stable_drop_all())
		return -EBUSY;
	return 0;
}

/**
 * ksm_set_merge_across_nodes() - switch between one tree and one per node
 * @across: true to merge pages of different NUMA nodes.
 *
 * Context: process context; takes ksm_engine_lock().
 * Return: 0, -EBUSY while KSM pages exist, -ENOMEM.
 */
int ksm_set_merge_across_nodes(bool across)
{
	int err = 0;

	ksm_engine_lock();
	if (ksm_ctx.knobs.merge_across_nodes == across)
		goto out;
	err = ksm_require_no_ksm_pages();
	if (!err)
		err = ksm_resize_trees(across);
	if (err)
		goto out;
	/* Unstable items filed under the old indexing are dropped. */
	ksm_unstable_reset();
	ksm_ctx.knobs.merge_across_nodes = across;
out:
	ksm_engine_unlock();
	return err;
}

/**
 * ksm_set_max_page_sharing() - change the mapper limit of a KSM page
 * @max: new limit, at least 2.
 *
 * Context: process context; takes ksm_engine_lock().
 * Return: 0, or -EBUSY while KSM pages exist.
 */
int ksm_set_max_page_sharing(unsigned int max)
{
	int err = 0;

	ksm_engine_lock();
	if (ksm_ctx.knobs.max_page_sharing != max) {
		err = ksm_require_no_ksm_pages();
		if (!err)
			WRITE_ONCE(ksm_ctx.knobs.max_page_sharing, max);
	}
	ksm_engine_unlock();
	return err;
}

static int __init ksm_init(void)
{
	int err;

	ksm_ctx.zero_hash = ksm_page_hash(ZERO_PAGE(0));

	err = ksm_rmap_item_cache_init();
	if (!err)
		err = ksm_stable_cache_init();
	if (!err)
		err = ksm_mm_cache_init();
	if (err) {
		pr_err("cannot create slab caches\n");
		return err;
	}

	err = ksm_thread_start(0);
	if (err) {
		pr_err("cannot start ksmd\n");
		return err;
	}

	/* Without sysfs nobody could ever start it. */
	if (!IS_ENABLED(CONFIG_SYSFS))
		ksm_ctx.knobs.run = KSM_RUN_MERGE;
	return 0;
}
subsys_initcall(ksm_init);
