// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: memory hot-remove.
 *
 * Offlining migrates every KSM page still in use out of the range (which
 * updates its node's pfn), so once a range is offline the only nodes left
 * pointing into it belong to freed folios. They are dropped before the
 * memory map of the range can go away.
 */

#include <linux/memory.h>
#include <linux/notifier.h>

#include "internal.h"

static int ksm_memory_notify(struct notifier_block *nb, unsigned long action,
			     void *arg)
{
	struct memory_notify *mn = arg;

	if (action != MEM_OFFLINE)
		return NOTIFY_OK;

	mutex_lock(&ksm_ctx.lock);
	ksm_stable_drop_pfn_range(mn->start_pfn, mn->start_pfn + mn->nr_pages);
	mutex_unlock(&ksm_ctx.lock);
	return NOTIFY_OK;
}

static int __init ksm_hotplug_init(void)
{
	hotplug_memory_notifier(ksm_memory_notify, KSM_CALLBACK_PRI);
	return 0;
}
subsys_initcall(ksm_hotplug_init);
