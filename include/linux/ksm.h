/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel Samepage Merging: the interface the rest of the kernel uses.
 *
 * KSM merges anonymous pages of identical content, in memory that user
 * space marked mergeable, into shared write-protected pages. The engine
 * lives in mm/ksm/; this header is its whole contract with mm, fork, exec,
 * exit, prctl, procfs and memory-failure.
 */
#ifndef __LINUX_KSM_H
#define __LINUX_KSM_H

#include <linux/bitops.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>

struct mem_cgroup;
struct seq_buf;
struct seq_file;

#ifdef CONFIG_KSM

/* An mm takes part from its first mergeable VMA until it exits. */
int __ksm_enter(struct mm_struct *mm);
void __ksm_exit(struct mm_struct *mm);

/* madvise(MADV_MERGEABLE) and madvise(MADV_UNMERGEABLE). */
int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
		unsigned long end, int advice, unsigned long *vm_flags);

/* Turning KSM off for a whole mm (e.g. for s390 KVM guests). */
int ksm_disable(struct mm_struct *mm);

/* prctl(PR_SET_MEMORY_MERGE), and VMAs created later under it. */
int ksm_enable_merge_any(struct mm_struct *mm);
int ksm_disable_merge_any(struct mm_struct *mm);
void ksm_add_vma(struct vm_area_struct *vma);

/*
 * The flags a new anonymous VMA (mmap, brk) of @mm is created with: under
 * PR_SET_MEMORY_MERGE it is VM_MERGEABLE from the start, so that it still
 * merges with its mergeable neighbours into one VMA.
 */
vm_flags_t ksm_vma_flags(struct mm_struct *mm, struct file *file,
			 vm_flags_t vm_flags);

/*
 * Zero pages placed by KSM (use_zero_pages=1) are told apart from the
 * zero pages a read fault maps by a dirty bit in their PTE, which the
 * fault path never sets on a zero-page PTE. Each mm counts its own, under
 * the page table lock of the PTE; every path that zaps such a PTE must
 * call ksm_might_unmap_zero_page(). The global ksm_zero_pages figure is
 * the sum over the mms registered with KSM, so an mm that never got
 * registered (a fork that failed half-way) cannot skew it.
 */
static inline bool is_ksm_zero_pte(pte_t pte)
{
	return is_zero_pfn(pte_pfn(pte)) && pte_dirty(pte);
}

static inline void ksm_map_zero_page(struct mm_struct *mm)
{
	atomic_long_inc(&mm->ksm_zero_pages);
}

static inline void ksm_might_unmap_zero_page(struct mm_struct *mm, pte_t pte)
{
	if (is_ksm_zero_pte(pte))
		atomic_long_dec(&mm->ksm_zero_pages);
}

static inline long mm_ksm_zero_pages(struct mm_struct *mm)
{
	return atomic_long_read(&mm->ksm_zero_pages);
}

/* Does @pte map a KSM page, or a zero page KSM put there? */
static inline bool ksm_pte_is_merged(struct vm_area_struct *vma,
				     unsigned long addr, pte_t pte)
{
	struct page *page;

	if (!pte_present(pte))
		return false;
	if (is_ksm_zero_pte(pte))
		return true;
	page = vm_normal_page(vma, addr, pte);
	return page && PageKsm(page);
}

/*
 * khugepaged leaves a range alone while it maps a KSM page or a KSM zero
 * page: collapsing it would copy merged pages back into a huge page that
 * KSM, having found them worth merging, would split again next pass.
 */
static inline bool ksm_pte_blocks_collapse(struct vm_area_struct *vma,
					   unsigned long addr, pte_t pte)
{
	return ksm_pte_is_merged(vma, addr, pte);
}

/*
 * Called once fork has copied the page tables, with both mmap_locks held
 * for write. The child owns no rmap items yet, so its merging counters
 * restart from zero; its zero-page count is taken from what it really
 * inherited; it is registered (on a best-effort basis) if the parent is.
 */
void ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm);

/*
 * Exec: PR_SET_MEMORY_MERGE and the merge domain survive it (the new mm is
 * registered at once, under the new mm's mmap_lock); an exec that gains
 * privilege (bprm->secureexec) then moves the new program, once its
 * credentials are committed, into a merge domain of its own.
 */
int ksm_execve(struct mm_struct *mm);
void ksm_execve_secure(struct mm_struct *mm);

/* prctl(PR_KSM_DOMAIN, ...): see mm/ksm/domain.c. */
int ksm_prctl_domain(unsigned long op, unsigned long arg3,
		     unsigned long arg4, unsigned long arg5);

static inline void ksm_exit(struct mm_struct *mm)
{
	if (test_bit(MMF_VM_MERGEABLE, &mm->flags))
		__ksm_exit(mm);
}

/*
 * Swap-in: a folio that was a KSM page when it went out may not be
 * mappable where it comes back; the faulting mm then gets a copy.
 */
struct folio *ksm_might_need_to_copy(struct folio *folio,
				     struct vm_area_struct *vma,
				     unsigned long addr);

/* Reverse mapping, migration and memory-failure on KSM folios. */
void rmap_walk_ksm(struct folio *folio, struct rmap_walk_control *rwc);
void folio_migrate_ksm(struct folio *newfolio, struct folio *folio);
void collect_procs_ksm(struct folio *folio, struct page *page,
		       struct list_head *to_kill, int force_early);

/* /proc/PID/ksm_stat. */
long ksm_process_profit(struct mm_struct *mm);
void ksm_proc_show_flags(struct seq_file *m, struct mm_struct *mm);

/* The KSM lines of a cgroup's memory.stat. */
void ksm_memcg_stat_show(struct mem_cgroup *memcg, struct seq_buf *s);

#else  /* !CONFIG_KSM */

/*
 * Without KSM nothing is ever merged: registration is a no-op, and no
 * folio is ever a KSM folio, so the page-level hooks have nothing to do.
 */
#ifdef CONFIG_MMU
static inline int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
			      unsigned long end, int advice,
			      unsigned long *vm_flags)
{
	return 0;
}
#endif /* CONFIG_MMU */

static inline void ksm_add_vma(struct vm_area_struct *vma) { }

static inline vm_flags_t ksm_vma_flags(struct mm_struct *mm,
				       struct file *file, vm_flags_t vm_flags)
{
	return vm_flags;
}

static inline void ksm_memcg_stat_show(struct mem_cgroup *memcg,
				       struct seq_buf *s)
{
}

static inline int ksm_disable(struct mm_struct *mm) { return 0; }
static inline void ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm) { }
static inline int ksm_execve(struct mm_struct *mm) { return 0; }
static inline void ksm_execve_secure(struct mm_struct *mm) { }
static inline void ksm_exit(struct mm_struct *mm) { }

static inline void ksm_might_unmap_zero_page(struct mm_struct *mm, pte_t pte)
{
}

static inline bool ksm_pte_blocks_collapse(struct vm_area_struct *vma,
					   unsigned long addr, pte_t pte)
{
	return false;
}

#ifdef CONFIG_MMU
static inline struct folio *ksm_might_need_to_copy(struct folio *folio,
						   struct vm_area_struct *vma,
						   unsigned long addr)
{
	return folio;
}

static inline void rmap_walk_ksm(struct folio *folio,
				 struct rmap_walk_control *rwc)
{
}

static inline void folio_migrate_ksm(struct folio *newfolio,
				     struct folio *folio)
{
}
#endif /* CONFIG_MMU */

static inline void collect_procs_ksm(struct folio *folio, struct page *page,
				     struct list_head *to_kill, int force_early)
{
}

#endif /* CONFIG_KSM */

#endif /* __LINUX_KSM_H */
