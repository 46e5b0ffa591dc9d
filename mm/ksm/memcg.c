// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: what each memory cgroup's processes get from it.
 */

/**
 * DOC: Per-cgroup figures
 *
 * memory.stat of a cgroup v2 ends with four KSM lines, in bytes like the
 * rest of the file and hierarchical like it: the sums, over the registered
 * mms whose owner (the task memcg charges the mm to) is in the cgroup or
 * below it, of the figures /proc/PID/ksm_stat shows for each process::
 *
 *	ksm_merging	pages mapped from KSM pages
 *	ksm_zero	pages mapped from KSM's zero pages
 *	ksm_tracked	pages KSM keeps a record (an rmap item) of
 *	ksm_profit	merged and zero pages, less the size of the records
 *
 * The figures are not kept per cgroup: a read adds up the counters of the
 * registered mms, which KSM keeps exact for each mm (fork starts a child
 * at zero, exit and run=2 take them back down). A figure is therefore
 * exact whatever happened in between: a process that moves to another
 * cgroup takes its figures along at once, with nothing to transfer. The
 * cost is one pass over the registered mms per read, O(registered mms)
 * with a constant test each (mem_cgroup_is_descendant() compares one
 * ancestor slot), under mm_list_lock; never a walk of pages or VMAs.
 *
 * /sys/kernel/debug/ksm/cgroups lists the same figures per cgroup path, for
 * every memory cgroup that holds a registered process itself (a process in
 * a cgroup without the memory controller counts in the nearest ancestor
 * with it). With cgroup v2's rule that processes live in leaves, those are
 * the cgroups' memory.stat figures.
 */

#include <linux/cgroup.h>
#include <linux/debugfs.h>
#include <linux/memcontrol.h>
#include <linux/seq_buf.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "internal.h"

static void ksm_figures_print(struct seq_buf *s, const char *key, u64 pages)
{
	seq_buf_printf(s, "%s %llu\n", key, pages * PAGE_SIZE);
}

/**
 * ksm_memcg_stat_show() - the KSM lines of a cgroup's memory.stat
 * @memcg: the cgroup.
 * @s: memory.stat being built.
 *
 * Only for cgroup v2: v1's memory.stat stays as it was.
 *
 * Context: takes ksm_ctx.mm_list_lock. Cost: O(registered mms), see
 * "Per-cgroup figures".
 */
void ksm_memcg_stat_show(struct mem_cgroup *memcg, struct seq_buf *s)
{
	struct ksm_figures f = { };
	struct ksm_mm *slot;

	if (!cgroup_subsys_on_dfl(memory_cgrp_subsys))
		return;
	spin_lock(&ksm_ctx.mm_list_lock);
	list_for_each_entry(slot, &ksm_ctx.mm_head.slot.mm_node, slot.mm_node) {
		struct mm_struct *mm = slot->slot.mm;

		if (!ksm_mm_exiting(mm) && mm_match_cgroup(mm, memcg))
			ksm_figures_add_mm(&f, mm);
	}
	spin_unlock(&ksm_ctx.mm_list_lock);

	ksm_figures_print(s, "ksm_merging", f.merging);
	ksm_figures_print(s, "ksm_zero", f.zero);
	ksm_figures_print(s, "ksm_tracked", f.tracked);
	seq_buf_printf(s, "ksm_profit %lld\n", ksm_figures_profit(&f));
	if (seq_buf_has_overflowed(s))
		pr_warn_once("ksm: memory.stat buffer overflow\n");
}

#ifdef CONFIG_DEBUG_FS

static int ksm_figures_cmp(const void *a, const void *b)
{
	const struct ksm_figures *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * A row per registered mm (at most @max) with the id of its cgroup, then
 * the rows of each cgroup added into its first, once the lock is dropped:
 * O(registered mms) under the lock, O(n log n) after it.
 */
static unsigned int ksm_memcg_rows(struct ksm_figures *rows,
				   unsigned int max)
{
	struct ksm_mm *slot;
	unsigned int nr = 0, i, out;

	spin_lock(&ksm_ctx.mm_list_lock);
	rcu_read_lock();
	list_for_each_entry(slot, &ksm_ctx.mm_head.slot.mm_node, slot.mm_node) {
		struct mm_struct *mm = slot->slot.mm;
		struct mem_cgroup *memcg;

		if (nr == max)
			break;
		if (ksm_mm_exiting(mm))
			continue;
		memcg = mem_cgroup_from_task(rcu_dereference(mm->owner));
		if (!memcg)
			continue;
		rows[nr].id = cgroup_id(memcg->css.cgroup);
		ksm_figures_add_mm(&rows[nr++], mm);
	}
	rcu_read_unlock();
	spin_unlock(&ksm_ctx.mm_list_lock);

	sort(rows, nr, sizeof(*rows), ksm_figures_cmp, NULL);
	for (i = 0, out = 0; i < nr; i++) {
		if (out && rows[out - 1].id == rows[i].id)
			ksm_figures_add(&rows[out - 1], &rows[i]);
		else
			rows[out++] = rows[i];
	}
	return out;
}

/* Rows to spare for mms registering between the count and the walk. */
#define KSM_MEMCG_ROWS_SLACK	64

static int ksm_cgroups_show(struct seq_file *m, void *unused)
{
	struct ksm_figures *rows;
	unsigned int nr, max, i;
	char *path;

	/* Cgroup ids of v1 hierarchies cannot be looked up. */
	if (!cgroup_subsys_on_dfl(memory_cgrp_subsys))
		return 0;
	max = ksm_mm_count() + KSM_MEMCG_ROWS_SLACK;
	rows = kvcalloc(max, sizeof(*rows), GFP_KERNEL);
	path = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!rows || !path) {
		kvfree(rows);
		kfree(path);
		return -ENOMEM;
	}
	nr = ksm_memcg_rows(rows, max);

	seq_puts(m, "cgroup ksm_merging ksm_zero ksm_tracked ksm_profit\n");
	for (i = 0; i < nr; i++) {
		if (ksm_cgroup_path(rows[i].id, path, PATH_MAX))
			continue;	/* removed since */
		seq_puts(m, path);
		ksm_figures_seq_show(m, &rows[i]);
		seq_putc(m, '\n');
	}
	kfree(path);
	kvfree(rows);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ksm_cgroups);

/**
 * ksm_memcg_debugfs_init() - add the per-cgroup table to KSM's debugfs
 * @dir: the ksm directory of debugfs.
 */
void ksm_memcg_debugfs_init(struct dentry *dir)
{
	debugfs_create_file("cgroups", 0400, dir, NULL, &ksm_cgroups_fops);
}

#endif /* CONFIG_DEBUG_FS */
