// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: which mms and VMAs take part.
 *
 * An mm joins (__ksm_enter) the first time one of its VMAs becomes
 * mergeable, through madvise(MADV_MERGEABLE), prctl(PR_SET_MEMORY_MERGE),
 * fork of a registered parent or exec with PR_SET_MEMORY_MERGE inherited.
 * It stays registered until it exits. These entry points hold the mm's
 * mmap_lock (or own the mm outright) and take only ksm_ctx.mm_list_lock:
 * none of them ever waits for ksmd to finish a batch.
 *
 * Exit hands the mm to ksmd when ksmd might be using it: ksmd reaps it the
 * next time its cursor gets there, which is right away, since the slot is
 * moved just after the cursor.
 */

#include <linux/hashtable.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string_choices.h>

#include "internal.h"
#include <trace/events/ksm.h>

static struct kmem_cache *ksm_mm_cache;
static DEFINE_HASHTABLE(ksm_mm_table, KSM_MM_HASH_BITS);

/* VMA flags that rule merging out: shared, special or device memory. */
#define KSM_VM_INCOMPATIBLE	(VM_SHARED | VM_MAYSHARE | VM_PFNMAP | \
				 VM_IO | VM_DONTEXPAND | VM_HUGETLB | \
				 VM_MIXEDMAP | VM_DROPPABLE | \
				 KSM_VM_ARCH_INCOMPATIBLE)

#if defined(VM_SAO)
#define KSM_VM_ARCH_INCOMPATIBLE	VM_SAO
#elif defined(VM_SPARC_ADI)
#define KSM_VM_ARCH_INCOMPATIBLE	VM_SPARC_ADI
#else
#define KSM_VM_ARCH_INCOMPATIBLE	VM_NONE
#endif

static bool ksm_vma_compatible(struct vm_area_struct *vma)
{
	return !(vma->vm_flags & KSM_VM_INCOMPATIBLE) && !vma_is_dax(vma);
}

/**
 * ksm_vma_flags() - flags of a new anonymous VMA of a merge-any mm
 * @mm: the mm the VMA is created in.
 * @file: the file mapped, NULL for anonymous memory.
 * @vm_flags: the flags it would be created with.
 *
 * A VMA that only becomes mergeable once it exists cannot merge with a
 * mergeable neighbour: mmap() and brk() would leave two VMAs where the
 * same calls without PR_SET_MEMORY_MERGE leave one. So anonymous VMAs of a
 * merge-any mm get VM_MERGEABLE before the merge is tried. A file mapping
 * gets it only once its ->mmap() has run (ksm_add_vma()), since a driver
 * may turn it into a mapping KSM must not touch.
 *
 * The mm is registered with KSM here if it is not yet; without memory for
 * that, the VMA is created without the flag.
 *
 * Context: mmap_lock held for write.
 * Return: @vm_flags, with VM_MERGEABLE added where it belongs.
 */
vm_flags_t ksm_vma_flags(struct mm_struct *mm, struct file *file,
			 vm_flags_t vm_flags)
{
	mmap_assert_write_locked(mm);
	if (file || (vm_flags & KSM_VM_INCOMPATIBLE) ||
	    !test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return vm_flags;
	/*
	 * Register here, not only in ksm_add_vma(): a VMA that merges with
	 * its neighbour never gets there, and an mm whose registration
	 * failed at fork would otherwise never be retried.
	 */
	if (ksm_mm_register(mm))
		return vm_flags;
	return vm_flags | VM_MERGEABLE;
}

/**
 * ksm_mm_free() - free a slot taken off the list and hash
 * @slot: the slot.
 */
void ksm_mm_free(struct ksm_mm *slot)
{
	mm_slot_free(ksm_mm_cache, slot);
}

/**
 * ksm_mm_lookup() - the slot of a registered mm
 * @mm: the mm.
 *
 * Context: ksm_ctx.mm_list_lock held.
 * Return: the slot, or NULL if @mm is not registered.
 */
struct ksm_mm *ksm_mm_lookup(struct mm_struct *mm)
{
	struct mm_slot *mm_slot;

	lockdep_assert_held(&ksm_ctx.mm_list_lock);
	mm_slot = mm_slot_lookup(ksm_mm_table, mm);
	return mm_slot ? mm_slot_entry(mm_slot, struct ksm_mm, slot) : NULL;
}

/**
 * ksm_mm_enter() - register an mm with KSM, in a given merge domain
 * @mm: the mm; the caller holds its mmap_lock for write, or owns it.
 * @tag: the domain tag the mm inherits, 0 for none (see domain.c).
 *
 * The identities a domain is formed from are those of the current task.
 *
 * Return: 0 or -ENOMEM.
 */
int ksm_mm_enter(struct mm_struct *mm, u64 tag)
{
	struct ksm_mm *slot;
	struct mm_slot *mm_slot;
	bool was_idle;

	slot = mm_slot_alloc(ksm_mm_cache);
	if (!slot)
		return -ENOMEM;
	mm_slot = &slot->slot;
	xa_init(&slot->blocks);
	ksm_domain_init_slot(slot, tag);

	spin_lock(&ksm_ctx.mm_list_lock);
	mm_slot_insert(ksm_mm_table, mm, mm_slot);
	was_idle = list_empty(&ksm_ctx.mm_head.slot.mm_node);
	/*
	 * Normally queue the mm just behind the cursor, so that it gets a
	 * moment to settle (a fork followed by exec costs nothing). While
	 * unmerging, queue it at the end so the unmerge walk still sees it.
	 */
	if (READ_ONCE(ksm_ctx.knobs.run) & KSM_RUN_UNMERGE)
		list_add_tail(&slot->slot.mm_node, &ksm_ctx.mm_head.slot.mm_node);
	else
		list_add_tail(&slot->slot.mm_node,
			      &ksm_ctx.scan.slot->slot.mm_node);
	spin_unlock(&ksm_ctx.mm_list_lock);

	set_bit(MMF_VM_MERGEABLE, &mm->flags);
	mmgrab(mm);
	if (was_idle)
		ksm_wake_thread();
	trace_ksm_enter(mm);
	return 0;
}

/**
 * __ksm_enter() - register an mm with KSM
 * @mm: the mm; the caller holds its mmap_lock for write, or owns it.
 *
 * Return: 0 or -ENOMEM.
 */
int __ksm_enter(struct mm_struct *mm)
{
	return ksm_mm_enter(mm, 0);
}

/**
 * ksm_fork() - set up KSM state of a child mm
 * @mm: the child, its page tables copied, not yet visible to anyone.
 * @oldmm: the parent.
 *
 * The child was copied from the parent before fork took the parent's
 * mmap_lock, so its counters are stale: it owns no rmap items and merges
 * nothing yet, and its KSM zero pages are recounted from what it inherited.
 * It is registered (on a best-effort basis) if the parent is, in the
 * parent's domain tag.
 *
 * Context: both mmap_locks held for write.
 */
void ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm)
{
	mm->ksm_rmap_items = 0;
	mm->ksm_merging_pages = 0;
	atomic_long_set(&mm->ksm_zero_pages, ksm_zero_pages_inherited(oldmm));
	if (test_bit(MMF_VM_MERGEABLE, &oldmm->flags))
		ksm_mm_enter(mm, ksm_domain_tag_of(oldmm));
}

/**
 * ksm_execve() - set up KSM state of the mm an exec is building
 * @mm: the new mm; current->mm is still the old one (or NULL).
 *
 * PR_SET_MEMORY_MERGE and a domain tag survive exec: the new mm is then
 * registered straight away, with the old mm's tag.
 *
 * Context: @mm's mmap_lock held for write.
 * Return: 0 or -ENOMEM.
 */
int ksm_execve(struct mm_struct *mm)
{
	u64 tag = ksm_domain_tag_of(current->mm);

	if (!tag && !test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return 0;
	return ksm_mm_enter(mm, tag);
}

/**
 * ksm_mm_count() - number of registered mms
 *
 * Return: the count, which may be stale as soon as it is returned.
 */
unsigned long ksm_mm_count(void)
{
	struct ksm_mm *slot;
	unsigned long n = 0;

	spin_lock(&ksm_ctx.mm_list_lock);
	list_for_each_entry(slot, &ksm_ctx.mm_head.slot.mm_node, slot.mm_node)
		n++;
	spin_unlock(&ksm_ctx.mm_list_lock);
	return n;
}

/**
 * ksm_zero_pages_total() - KSM zero pages mapped by all registered mms
 *
 * Return: the sum of the registered mms' counts.
 */
long ksm_zero_pages_total(void)
{
	struct mm_slot *mm_slot;
	long nr = 0;

	spin_lock(&ksm_ctx.mm_list_lock);
	list_for_each_entry(mm_slot, &ksm_ctx.mm_head.slot.mm_node, mm_node)
		nr += mm_ksm_zero_pages(mm_slot->mm);
	spin_unlock(&ksm_ctx.mm_list_lock);
	return nr;
}

/**
 * ksm_figures_add_mm() - add an mm's per-process KSM figures to a sum
 * @f: the sum.
 * @mm: the mm, registered.
 */
void ksm_figures_add_mm(struct ksm_figures *f, struct mm_struct *mm)
{
	/*
	 * ksmd changes these two under its own locks; a read racing it is
	 * off by the page ksmd is working on, as a read of ksm_stat is.
	 */
	f->merging += data_race(mm->ksm_merging_pages);
	/* Same as above. */
	f->tracked += data_race(mm->ksm_rmap_items);
	f->zero += mm_ksm_zero_pages(mm);
}

/**
 * ksm_figures_add() - add one sum of figures to another
 * @f: the sum.
 * @more: what to add (its @id is ignored).
 */
void ksm_figures_add(struct ksm_figures *f, const struct ksm_figures *more)
{
	f->merging += more->merging;
	f->zero += more->zero;
	f->tracked += more->tracked;
}

/**
 * ksm_figures_profit() - bytes saved, net of the rmap items
 * @f: the figures.
 *
 * Return: what ksm_process_profit() returns for one mm, for the sum, in
 * 64 bits so that it cannot wrap on 32-bit kernels.
 */
s64 ksm_figures_profit(const struct ksm_figures *f)
{
	return (s64)(f->merging + f->zero) * PAGE_SIZE -
	       (s64)f->tracked * sizeof(struct ksm_rmap_item);
}

/**
 * ksm_figures_seq_show() - print figures as the columns of a debugfs table
 * @m: the table.
 * @f: the figures.
 *
 * Prints " ksm_merging ksm_zero ksm_tracked ksm_profit", in bytes.
 */
void ksm_figures_seq_show(struct seq_file *m, const struct ksm_figures *f)
{
	seq_printf(m, " %llu %llu %llu %lld", (u64)f->merging * PAGE_SIZE,
		   (u64)f->zero * PAGE_SIZE, (u64)f->tracked * PAGE_SIZE,
		   ksm_figures_profit(f));
}

/**
 * __ksm_exit() - an mm registered with KSM lost its last user
 * @mm: the mm; its page tables are about to be torn down.
 *
 * Frees the slot at once when ksmd holds nothing of the mm; otherwise
 * (items, or a block claimed by a ksmd thread) leaves it to ksmd, after
 * waiting (through mmap_lock) for any access ksmd is making to the mm
 * right now.
 */
void __ksm_exit(struct mm_struct *mm)
{
	struct ksm_mm *slot = NULL;
	struct mm_slot *mm_slot;
	bool free_now = false;

	spin_lock(&ksm_ctx.mm_list_lock);
	mm_slot = mm_slot_lookup(ksm_mm_table, mm);
	if (mm_slot)
		slot = mm_slot_entry(mm_slot, struct ksm_mm, slot);
	if (slot && slot != ksm_ctx.scan.slot && !slot->claims) {
		if (xa_empty(&slot->blocks)) {
			hash_del(&slot->slot.hash);
			list_del(&slot->slot.mm_node);
			free_now = true;
		} else {
			list_move(&slot->slot.mm_node,
				  &ksm_ctx.scan.slot->slot.mm_node);
		}
	}
	spin_unlock(&ksm_ctx.mm_list_lock);

	if (free_now) {
		ksm_mm_free(slot);
		clear_bit(MMF_VM_MERGE_ANY, &mm->flags);
		clear_bit(MMF_VM_MERGEABLE, &mm->flags);
		mmdrop(mm);
	} else if (slot) {
		mmap_write_lock(mm);
		mmap_write_unlock(mm);
	}
	trace_ksm_exit(mm);
}

/**
 * ksm_mm_register() - register an mm with KSM unless it already is
 * @mm: the mm; the caller holds its mmap_lock for write.
 *
 * Return: 0 or -ENOMEM.
 */
int ksm_mm_register(struct mm_struct *mm)
{
	return test_bit(MMF_VM_MERGEABLE, &mm->flags) ? 0 : __ksm_enter(mm);
}

/* Unmerge a VMA's pages and stop merging it. */
static int ksm_vma_leave(struct vm_area_struct *vma)
{
	int err;

	if (!(vma->vm_flags & VM_MERGEABLE))
		return 0;
	if (vma->anon_vma) {
		err = ksm_unmerge_range(vma, vma->vm_start, vma->vm_end, true);
		if (err)
			return err;
	}
	vm_flags_clear(vma, VM_MERGEABLE);
	return 0;
}

static void ksm_vma_join(struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_MERGEABLE) && ksm_vma_compatible(vma))
		vm_flags_set(vma, VM_MERGEABLE);
}

static void ksm_mm_join_all(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;

	for_each_vma(vmi, vma)
		ksm_vma_join(vma);
}

static int ksm_mm_leave_all(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;
	int err;

	for_each_vma(vmi, vma) {
		err = ksm_vma_leave(vma);
		if (err)
			return err;
	}
	return 0;
}

/**
 * ksm_add_vma() - make a new VMA mergeable if its mm merges everything
 * @vma: the VMA just created (mmap, brk).
 *
 * Context: mmap_lock held for write.
 */
void ksm_add_vma(struct vm_area_struct *vma)
{
	struct mm_struct *mm = vma->vm_mm;

	if (!test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return;
	ksm_vma_join(vma);
	/* ksmd unregisters an mm only once it is exiting; be safe anyway. */
	ksm_mm_register(mm);
}

/**
 * ksm_enable_merge_any() - merge every compatible VMA of an mm, present
 * and future (prctl PR_SET_MEMORY_MERGE, 1)
 * @mm: the mm.
 *
 * Context: mmap_lock held for write.
 * Return: 0 or -ENOMEM.
 */
int ksm_enable_merge_any(struct mm_struct *mm)
{
	int err = 0;

	if (!test_bit(MMF_VM_MERGE_ANY, &mm->flags)) {
		err = ksm_mm_register(mm);
		if (!err) {
			set_bit(MMF_VM_MERGE_ANY, &mm->flags);
			ksm_mm_join_all(mm);
		}
	}
	return err;
}

/**
 * ksm_disable_merge_any() - undo ksm_enable_merge_any() (prctl, 0)
 * @mm: the mm.
 *
 * Unmerges every page and clears VM_MERGEABLE everywhere. On failure
 * everything stays mergeable, as before the call.
 *
 * Context: mmap_lock held for write.
 * Return: 0, -ENOMEM or -ERESTARTSYS.
 */
int ksm_disable_merge_any(struct mm_struct *mm)
{
	int err = 0;

	if (test_bit(MMF_VM_MERGE_ANY, &mm->flags)) {
		err = ksm_mm_leave_all(mm);
		if (err)
			ksm_mm_join_all(mm);
		else
			clear_bit(MMF_VM_MERGE_ANY, &mm->flags);
	}
	return err;
}

/**
 * ksm_disable() - stop all merging in an mm and unmerge its pages
 * @mm: the mm.
 *
 * Context: mmap_lock held for write.
 * Return: 0 or a negative errno from unmerging.
 */
int ksm_disable(struct mm_struct *mm)
{
	mmap_assert_write_locked(mm);
	if (test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return ksm_disable_merge_any(mm);
	return test_bit(MMF_VM_MERGEABLE, &mm->flags) ? ksm_mm_leave_all(mm) : 0;
}

/* Is some VMA of @mm mergeable? Stops at the first one found. */
static bool ksm_mm_has_mergeable_vma(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	for_each_vma(vmi, vma)
		if (vma->vm_flags & VM_MERGEABLE)
			return true;
	return false;
}

/**
 * ksm_proc_show_flags() - the yes/no lines of /proc/PID/ksm_stat
 * @m: the file being written.
 * @mm: the process's mm, a reference held.
 *
 * Printed after the four lines of 6.12: whether the process merges all
 * its memory (PR_SET_MEMORY_MERGE), and whether any VMA of it is
 * mergeable. The second needs the mmap_lock, for a walk of the VMAs that
 * ends at the first mergeable one; a reader with a fatal signal pending
 * does not get it.
 */
void ksm_proc_show_flags(struct seq_file *m, struct mm_struct *mm)
{
	bool mergeable;

	seq_printf(m, "ksm_merge_any: %s\n",
		   str_yes_no(test_bit(MMF_VM_MERGE_ANY, &mm->flags)));
	if (mmap_read_lock_killable(mm))
		return;
	mergeable = ksm_mm_has_mergeable_vma(mm);
	mmap_read_unlock(mm);
	seq_printf(m, "ksm_mergeable: %s\n", str_yes_no(mergeable));
}

/* MADV_MERGEABLE: mark the range, registering the mm on first use. */
static int ksm_madvise_merge(struct vm_area_struct *vma,
			     unsigned long *vm_flags)
{
	int err = 0;

	/* Incompatible VMAs ignore the advice without an error. */
	if (!(vma->vm_flags & VM_MERGEABLE) && ksm_vma_compatible(vma)) {
		err = ksm_mm_register(vma->vm_mm);
		if (!err)
			*vm_flags |= VM_MERGEABLE;
	}
	return err;
}

/* MADV_UNMERGEABLE: give the range private pages again, then unmark it. */
static int ksm_madvise_unmerge(struct vm_area_struct *vma,
			       unsigned long start, unsigned long end,
			       unsigned long *vm_flags)
{
	int err = 0;

	if (*vm_flags & VM_MERGEABLE) {
		if (vma->anon_vma)
			err = ksm_unmerge_range(vma, start, end, true);
		if (!err)
			*vm_flags &= ~VM_MERGEABLE;
	}
	return err;
}

/**
 * ksm_madvise() - apply MADV_MERGEABLE or MADV_UNMERGEABLE to a VMA range
 * @vma: the VMA.
 * @start: start of the range in @vma.
 * @end: end of the range in @vma.
 * @advice: MADV_MERGEABLE or MADV_UNMERGEABLE.
 * @vm_flags: the flags the VMA range will get; updated.
 *
 * Incompatible VMAs (shared, I/O, hugetlb, DAX, ...) silently ignore the
 * advice, as do VMAs already in the requested state.
 *
 * Context: mmap_lock held for write.
 * Return: 0, -ENOMEM, or -ERESTARTSYS when unmerging was interrupted.
 */
int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
		unsigned long end, int advice, unsigned long *vm_flags)
{
	if (advice == MADV_MERGEABLE)
		return ksm_madvise_merge(vma, vm_flags);
	if (advice == MADV_UNMERGEABLE)
		return ksm_madvise_unmerge(vma, start, end, vm_flags);
	return 0;
}
EXPORT_SYMBOL_GPL(ksm_madvise);

/**
 * ksm_mm_cache_init() - create the slab cache for registered mms
 *
 * Return: 0 or -ENOMEM.
 */
int __init ksm_mm_cache_init(void)
{
	ksm_mm_cache = KMEM_CACHE(ksm_mm, 0);
	return ksm_mm_cache ? 0 : -ENOMEM;
}
