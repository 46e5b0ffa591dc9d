// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: memory-failure support.
 *
 * When a KSM page is poisoned, every process mapping it must be found:
 * through the page's stable node, as for any other rmap walk.
 */

#include <linux/mm.h>
#include <linux/rmap.h>
#include <linux/sched/signal.h>

#include "internal.h"

/* Queue for killing the early-kill tasks that map @item's page. */
static void ksm_collect_item_procs(struct ksm_rmap_item *item,
				   struct page *page, struct list_head *to_kill,
				   int force_early)
{
	struct anon_vma *anon_vma = item->anon_vma;
	struct task_struct *tsk;
	pgoff_t first, last;

	anon_vma_lock_read(anon_vma);
	ksm_item_vma_range(item, &first, &last);
	rcu_read_lock();
	for_each_process(tsk) {
		struct task_struct *t = task_early_kill(tsk, force_early);
		struct anon_vma_chain *avc;

		if (!t)
			continue;
		anon_vma_interval_tree_foreach(avc, &anon_vma->rb_root, first,
					       last) {
			if (avc->vma->vm_mm == t->mm)
				add_to_kill_ksm(t, page, avc->vma, to_kill,
						ksm_item_addr(item));
		}
	}
	rcu_read_unlock();
	anon_vma_unlock_read(anon_vma);
}

/**
 * collect_procs_ksm() - find the processes mapping a poisoned KSM page
 * @folio: the locked KSM folio.
 * @page: the poisoned page.
 * @to_kill: list the victims are added to.
 * @force_early: kill even tasks that did not ask for early kill.
 */
void collect_procs_ksm(struct folio *folio, struct page *page,
		       struct list_head *to_kill, int force_early)
{
	struct ksm_stable_node *node = ksm_folio_node(folio);
	unsigned int i;

	if (!node)
		return;
	for (i = 0; i < node->nr_items; i++)
		ksm_collect_item_procs(node->mappers[i], page, to_kill,
				       force_early);
}
