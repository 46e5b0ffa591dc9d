// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: merge domains.
 */

/**
 * DOC: Merge domains
 *
 * Merging is a side channel: a write to a merged page takes a copy-on-write
 * fault, thousands of times slower than a store, so a process can tell
 * whether anybody else holds a page with given content. Every registered
 * mm therefore belongs to a merge domain, and pages merge only within one.
 *
 * A domain is a 64-bit key: a kind in the top bits, an identifier below.
 * When an mm registers, the identities a domain can be formed from are
 * captured from the registering task: effective uid, cgroup (v2) and a
 * serial number of its own. The merge_domain knob picks which of them is
 * the domain (or none: "global", as in 6.12). A tag set by prctl() or by a
 * privilege-gaining exec overrides the knob for that mm and its children.
 *
 * The trees keep domains apart without a new comparison: the hash an mm
 * files a page under is the content hash xor the domain key times an odd
 * constant. Multiplying by an
 * odd number is a bijection on 64-bit values, so two entries with equal
 * filed hashes and equal contents (which every merge checks byte for byte)
 * have equal domains. The global domain is key 0: its hashes are the plain
 * content hashes, and merging without domains costs nothing. A stable key
 * also records its domain (8 bytes per distinct content), for the
 * per-domain table in debugfs.
 *
 * Changing an mm's domain unmerges its pages and takes its items out of
 * the trees, so nothing filed under the old key outlives the change.
 *
 * Locking: the knob and the tags are read without locks by ksmd (a value
 * read at the start of a visit holds for that visit); every change of
 * either is made under ksm_ctx.lock, with mm_list_lock for a slot's tag.
 */

#include <linux/capability.h>
#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/debugfs.h>
#include <linux/mm.h>
#include <linux/nsproxy.h>
#include <linux/prctl.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/bsearch.h>
#include <linux/sort.h>

#include "internal.h"

/* Domain keys: kind in the top four bits, identifier in the rest. */
#define KSM_DOMAIN_KIND_SHIFT	60
#define KSM_DOMAIN_ID_MASK	((1ULL << KSM_DOMAIN_KIND_SHIFT) - 1)

/* Odd, so that multiplying by it loses no bit of the key. */
#define KSM_DOMAIN_MIX		0x9e3779b97f4a7c15ULL

/**
 * enum ksm_domain_kind - what the identifier of a domain key stands for
 * @KSM_DOMAIN_GLOBAL: nothing: the one global domain (key 0).
 * @KSM_DOMAIN_USER: an effective uid.
 * @KSM_DOMAIN_CGROUP: a cgroup v2 id.
 * @KSM_DOMAIN_PROCESS: the serial number of one mm.
 * @KSM_DOMAIN_PRIVATE: a domain made by PR_KSM_DOMAIN_PRIVATE or exec.
 * @KSM_DOMAIN_TAG: a number an administrator chose (PR_KSM_DOMAIN_JOIN).
 * @KSM_DOMAIN_NR_KINDS: number of kinds.
 *
 * The first four are also the values of the merge_domain knob.
 */
enum ksm_domain_kind {
	KSM_DOMAIN_GLOBAL = KSM_MERGE_DOMAIN_GLOBAL,
	KSM_DOMAIN_USER = KSM_MERGE_DOMAIN_USER,
	KSM_DOMAIN_CGROUP = KSM_MERGE_DOMAIN_CGROUP,
	KSM_DOMAIN_PROCESS = KSM_MERGE_DOMAIN_PROCESS,
	KSM_DOMAIN_PRIVATE,
	KSM_DOMAIN_TAG,
	KSM_DOMAIN_NR_KINDS,
};

static const char * const ksm_domain_kind_names[] = {
	[KSM_DOMAIN_GLOBAL] = "global",
	[KSM_DOMAIN_USER] = "user",
	[KSM_DOMAIN_CGROUP] = "cgroup",
	[KSM_DOMAIN_PROCESS] = "process",
	[KSM_DOMAIN_PRIVATE] = "private",
	[KSM_DOMAIN_TAG] = "tag",
};

/* Serial numbers of registered mms, and of private domains. */
static atomic64_t ksm_mm_serial = ATOMIC64_INIT(0);
static atomic64_t ksm_private_serial = ATOMIC64_INIT(0);

static u64 ksm_domain_key(enum ksm_domain_kind kind, u64 id)
{
	if (kind == KSM_DOMAIN_GLOBAL)
		return 0;
	return ((u64)kind << KSM_DOMAIN_KIND_SHIFT) | (id & KSM_DOMAIN_ID_MASK);
}

static enum ksm_domain_kind ksm_domain_kind(u64 domain)
{
	return domain >> KSM_DOMAIN_KIND_SHIFT;
}

/**
 * ksm_domain_hash() - the hash a page is filed under in its domain
 * @hash: the page's content hash.
 * @domain: the domain key of the page's mm.
 *
 * Return: @hash for the global domain, a bijective mix of both otherwise.
 */
u64 ksm_domain_hash(u64 hash, u64 domain)
{
	return hash ^ (domain * KSM_DOMAIN_MIX);
}

/**
 * ksm_slot_domain() - the domain key of a registered mm, right now
 * @slot: the mm's slot.
 *
 * Return: the slot's tag if it has one, else the key the merge_domain knob
 * forms from the identities captured at registration.
 */
u64 ksm_slot_domain(const struct ksm_mm *slot)
{
	u64 tag = READ_ONCE(slot->tag);

	if (tag)
		return tag;
	switch (READ_ONCE(ksm_ctx.knobs.merge_domain)) {
	case KSM_DOMAIN_USER:
		return ksm_domain_key(KSM_DOMAIN_USER, READ_ONCE(slot->uid));
	case KSM_DOMAIN_CGROUP:
		return ksm_domain_key(KSM_DOMAIN_CGROUP, READ_ONCE(slot->cgroup));
	case KSM_DOMAIN_PROCESS:
		return ksm_domain_key(KSM_DOMAIN_PROCESS, slot->serial);
	default:
		return 0;
	}
}

static u64 ksm_current_cgroup_id(void)
{
#ifdef CONFIG_CGROUPS
	u64 id;

	rcu_read_lock();
	id = cgroup_id(task_dfl_cgroup(current));
	rcu_read_unlock();
	return id;
#else
	return 0;
#endif
}

/**
 * ksm_cgroup_path() - the path of a cgroup v2, for a debugfs table
 * @id: the cgroup's id.
 * @buf: where the path goes.
 * @len: size of @buf.
 *
 * The path is relative to the reader's cgroup namespace.
 *
 * Context: may sleep.
 * Return: 0, or -ENOENT if there is no such cgroup (any more).
 */
int ksm_cgroup_path(u64 id, char *buf, size_t len)
{
#ifdef CONFIG_CGROUPS
	struct cgroup *cgrp = cgroup_get_from_id(id);
	int ret;

	if (IS_ERR(cgrp))
		return -ENOENT;
	ret = cgroup_path_ns(cgrp, buf, len, current->nsproxy->cgroup_ns);
	cgroup_put(cgrp);
	return ret < 0 ? ret : 0;
#else
	return -ENOENT;
#endif
}

/* Record who @slot's mm belongs to, as the current task sees it. */
static void ksm_capture_identity(struct ksm_mm *slot)
{
	WRITE_ONCE(slot->uid, from_kuid(&init_user_ns, current_euid()));
	WRITE_ONCE(slot->cgroup, ksm_current_cgroup_id());
}

/**
 * ksm_domain_init_slot() - give a new slot its identities and tag
 * @slot: the slot, not yet visible to anyone.
 * @tag: the tag it inherits (0 for none).
 *
 * Context: the task registering the mm (madvise, prctl, fork, exec).
 */
void ksm_domain_init_slot(struct ksm_mm *slot, u64 tag)
{
	ksm_capture_identity(slot);
	slot->serial = atomic64_inc_return(&ksm_mm_serial);
	slot->tag = tag;
}

/**
 * ksm_domain_tag_of() - the tag of an mm, if it is registered
 * @mm: the mm, or NULL.
 *
 * Return: the tag (0 when none, or when @mm is not registered).
 */
u64 ksm_domain_tag_of(struct mm_struct *mm)
{
	struct ksm_mm *slot;
	u64 tag = 0;

	if (!mm || !test_bit(MMF_VM_MERGEABLE, &mm->flags))
		return 0;
	spin_lock(&ksm_ctx.mm_list_lock);
	slot = ksm_mm_lookup(mm);
	if (slot)
		tag = slot->tag;
	spin_unlock(&ksm_ctx.mm_list_lock);
	return tag;
}

/* Unmerge every page of @mm and forget where its items were filed. */
static int ksm_domain_leave_trees(struct mm_struct *mm, struct ksm_mm *slot)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct ksm_rmap_item *head, *item;
	struct vm_area_struct *vma;
	unsigned long index;
	int err = 0;

	ksm_assert_locked();
	mmap_read_lock(mm);
	for_each_vma(vmi, vma) {
		if (!(vma->vm_flags & VM_MERGEABLE) || !vma->anon_vma)
			continue;
		err = ksm_unmerge_range(vma, vma->vm_start, vma->vm_end, false);
		if (err)
			break;
	}
	mmap_read_unlock(mm);

	/* Whatever happened, no item may stay filed under the old key. */
	xa_for_each(&slot->blocks, index, head) {
		for (item = head; item; item = item->next) {
			if (item->state == KSM_ITEM_UNSTABLE ||
			    (item->state == KSM_ITEM_STABLE && !err))
				ksm_rmap_item_forget(item);
			if (item->state == KSM_ITEM_NEW) {
				item->hashed = 0;
				item->skip_age = 0;
				item->skip_left = 0;
			}
		}
		cond_resched();
	}
	return err;
}

/* Set the tag of @slot; with @recapture, also who it belongs to. */
static u64 ksm_domain_set_tag(struct ksm_mm *slot, u64 tag, bool recapture)
{
	u64 old;

	spin_lock(&ksm_ctx.mm_list_lock);
	old = slot->tag;
	WRITE_ONCE(slot->tag, tag);
	if (recapture)
		ksm_capture_identity(slot);
	spin_unlock(&ksm_ctx.mm_list_lock);
	return old;
}

/*
 * Move the registered mm of the current task to the domain @tag: under the
 * engine lock (no visit is under way), set the tag, then unmerge the mm
 * and take its items out of the trees. If unmerging fails, the old tag is
 * put back: pages still shared stay within the domain they were merged in.
 *
 * For exec gaining privilege (@exec), the identities are captured again
 * under the new credentials, and the new tag stays even if unmerging
 * fails: exec cannot fail here, and the only pages the new program can
 * share by then are those its caller gave it.
 */
static int ksm_domain_move(struct mm_struct *mm, u64 tag, bool exec)
{
	struct ksm_mm *slot;
	u64 old;
	int err;

	if (exec)
		ksm_engine_lock();
	else if (ksm_engine_lock_killable())
		return -EINTR;
	spin_lock(&ksm_ctx.mm_list_lock);
	slot = ksm_mm_lookup(mm);
	spin_unlock(&ksm_ctx.mm_list_lock);
	err = -ENOENT;
	if (!slot)
		goto out;
	old = ksm_domain_set_tag(slot, tag, exec);
	err = ksm_domain_leave_trees(mm, slot);
	if (err && !exec)
		ksm_domain_set_tag(slot, old, false);
out:
	ksm_engine_unlock();
	return err;
}

/*
 * Put the current task's mm in domain @tag, registering it first if it is
 * not registered (a new slot has no pages filed anywhere yet).
 */
static int ksm_domain_enter(u64 tag)
{
	struct mm_struct *mm = current->mm;
	bool registered;
	int err = 0;

	if (mmap_write_lock_killable(mm))
		return -EINTR;
	registered = test_bit(MMF_VM_MERGEABLE, &mm->flags);
	if (!registered)
		err = ksm_mm_enter(mm, tag);
	mmap_write_unlock(mm);
	if (err || !registered)
		return err;
	return ksm_domain_move(mm, tag, false);
}

static u64 ksm_new_private_domain(void)
{
	return ksm_domain_key(KSM_DOMAIN_PRIVATE,
			      atomic64_inc_return(&ksm_private_serial));
}

/* The domain key the current task's mm has, registering it if needed. */
static int ksm_domain_get(u64 __user *uptr)
{
	struct mm_struct *mm = current->mm;
	struct ksm_mm *slot;
	u64 domain = 0;
	int err;

	if (mmap_write_lock_killable(mm))
		return -EINTR;
	err = ksm_mm_register(mm);
	mmap_write_unlock(mm);
	if (err)
		return err;
	spin_lock(&ksm_ctx.mm_list_lock);
	slot = ksm_mm_lookup(mm);
	if (slot)
		domain = ksm_slot_domain(slot);
	spin_unlock(&ksm_ctx.mm_list_lock);
	return put_user(domain, uptr) ? -EFAULT : 0;
}

/*
 * A tag PR_KSM_DOMAIN_JOIN accepts: a private or tag domain key (as
 * PR_KSM_DOMAIN_GET reports it), a plain number below 2^60 (a tag domain),
 * or 0 to go back to the domain merge_domain gives. Keys of the knob's own
 * kinds are refused: the knob may change later, an explicit tag may not.
 */
static int ksm_domain_join_key(u64 tag, u64 *key)
{
	switch (ksm_domain_kind(tag)) {
	case KSM_DOMAIN_GLOBAL:
		*key = tag ? ksm_domain_key(KSM_DOMAIN_TAG, tag) : 0;
		return 0;
	case KSM_DOMAIN_PRIVATE:
	case KSM_DOMAIN_TAG:
		*key = tag;
		return 0;
	default:
		return -EINVAL;
	}
}

/**
 * ksm_prctl_domain() - prctl(PR_KSM_DOMAIN, op, arg3, arg4, arg5)
 * @op: PR_KSM_DOMAIN_GET, PR_KSM_DOMAIN_PRIVATE or PR_KSM_DOMAIN_JOIN.
 * @arg3: GET: a __u64 pointer for the domain key; JOIN: the tag; else 0.
 * @arg4: must be 0.
 * @arg5: must be 0.
 *
 * PRIVATE moves the calling process into a new domain of its own, which
 * its children inherit; no privilege is needed to narrow merging. JOIN
 * widens it to a named domain and needs CAP_SYS_ADMIN. Both unmerge the
 * process's KSM pages first.
 *
 * Context: process context; takes mmap_lock and ksm_ctx.lock.
 * Return: 0, -EINVAL, -EPERM, -EFAULT, -ENOMEM or -EINTR.
 */
int ksm_prctl_domain(unsigned long op, unsigned long arg3,
		     unsigned long arg4, unsigned long arg5)
{
	u64 key;
	int err;

	if (arg4 || arg5 || !current->mm)
		return -EINVAL;
	switch (op) {
	case PR_KSM_DOMAIN_GET:
		return ksm_domain_get((u64 __user *)arg3);
	case PR_KSM_DOMAIN_PRIVATE:
		if (arg3)
			return -EINVAL;
		return ksm_domain_enter(ksm_new_private_domain());
	case PR_KSM_DOMAIN_JOIN:
		err = ksm_domain_join_key(arg3, &key);
		if (err)
			return err;
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		return ksm_domain_enter(key);
	default:
		return -EINVAL;
	}
}

/**
 * ksm_execve_secure() - an exec gained privilege: isolate the new program
 * @mm: the new mm, already current->mm, credentials committed.
 *
 * A setuid, setgid or file-capability exec must not stay in a domain its
 * unprivileged caller chose or shares (with merge_domain=cgroup, say, the
 * caller's cgroup). The new program gets a private domain of its own: a
 * registered mm is moved there and recorded under its new credentials; an
 * unregistered one is registered now, so that the domain is already set
 * when the program first asks for merging.
 *
 * Context: process context, in exec after the point of no return.
 */
void ksm_execve_secure(struct mm_struct *mm)
{
	u64 tag = ksm_new_private_domain();
	bool registered;

	mmap_write_lock(mm);
	registered = test_bit(MMF_VM_MERGEABLE, &mm->flags);
	/* Without memory, merging stays off until the program registers. */
	if (!registered)
		ksm_mm_enter(mm, tag);
	mmap_write_unlock(mm);
	if (registered)
		ksm_domain_move(mm, tag, true);
}

/**
 * ksm_domain_mode_name() - name of a merge_domain knob value
 * @mode: a value of the knob, or any index for listing all.
 *
 * Return: the name, or NULL past the last mode.
 */
const char *ksm_domain_mode_name(unsigned int mode)
{
	return mode <= KSM_DOMAIN_PROCESS ? ksm_domain_kind_names[mode] : NULL;
}

/**
 * ksm_set_merge_domain() - change how domains are formed
 * @mode: KSM_DOMAIN_GLOBAL, _USER, _CGROUP or _PROCESS.
 *
 * Pages filed in the unstable tree under the old keys cannot match anyone
 * afterwards: old and new keys are of different kinds, and tags (which do
 * not change) are never of the knob's kinds.
 *
 * Context: process context; takes ksm_engine_lock().
 * Return: 0, -EINVAL, or -EBUSY while KSM pages exist.
 */
int ksm_set_merge_domain(unsigned int mode)
{
	int err = 0;

	if (mode > KSM_DOMAIN_PROCESS)
		return -EINVAL;
	ksm_engine_lock();
	if (ksm_ctx.knobs.merge_domain == mode)
		goto out;
	err = ksm_require_no_ksm_pages();
	if (err)
		goto out;
	ksm_unstable_reset();
	WRITE_ONCE(ksm_ctx.knobs.merge_domain, mode);
out:
	ksm_engine_unlock();
	return err;
}

#ifdef CONFIG_DEBUG_FS

static int ksm_domain_print(char *buf, size_t len, u64 domain)
{
	enum ksm_domain_kind kind = ksm_domain_kind(domain);

	if (!domain)
		return scnprintf(buf, len, "global");
	if (kind >= KSM_DOMAIN_NR_KINDS)
		return scnprintf(buf, len, "0x%llx", domain);
	return scnprintf(buf, len, "%s:%llu", ksm_domain_kind_names[kind],
			 domain & KSM_DOMAIN_ID_MASK);
}

/**
 * struct ksm_domain_row - one line of the debugfs domains table
 * @domain: the key.
 * @members: registered mms in it.
 * @shared: KSM pages of the domain.
 * @sharing: mappings of those pages beyond the first of each.
 * @figures: per-process figures of the members, summed.
 */
struct ksm_domain_row {
	u64 domain;
	unsigned long members;
	unsigned long shared;
	unsigned long sharing;
	struct ksm_figures figures;
};

/**
 * struct ksm_domain_table - the rows being gathered
 * @rows: array of @nr rows, sorted by domain once members are in.
 * @nr: rows used.
 * @max: rows allocated.
 */
struct ksm_domain_table {
	struct ksm_domain_row *rows;
	unsigned int nr;
	unsigned int max;
};

static int ksm_row_cmp(const void *a, const void *b)
{
	const struct ksm_domain_row *x = a, *y = b;

	return x->domain < y->domain ? -1 : x->domain > y->domain;
}

/* The row of @domain, added at the end if there is room (unsorted). */
static struct ksm_domain_row *ksm_table_row(struct ksm_domain_table *t,
					    u64 domain, bool sorted)
{
	struct ksm_domain_row key = { .domain = domain }, *row;
	unsigned int i;

	if (sorted) {
		row = bsearch(&key, t->rows, t->nr, sizeof(key), ksm_row_cmp);
		if (row)
			return row;
	} else {
		for (i = 0; i < t->nr; i++)
			if (t->rows[i].domain == domain)
				return &t->rows[i];
	}
	if (t->nr == t->max)
		return NULL;
	row = &t->rows[t->nr++];
	*row = key;
	return row;
}

/* Count the members of each domain. Called under mm_list_lock. */
static void ksm_table_add_members(struct ksm_domain_table *t)
{
	struct ksm_mm *slot;

	list_for_each_entry(slot, &ksm_ctx.mm_head.slot.mm_node, slot.mm_node) {
		struct ksm_domain_row *row;

		row = ksm_table_row(t, ksm_slot_domain(slot), false);
		if (!row)
			continue;
		row->members++;
		if (!ksm_mm_exiting(slot->slot.mm))
			ksm_figures_add_mm(&row->figures, slot->slot.mm);
	}
}

/* Add the KSM pages of each domain, walking the stable trees. */
static void ksm_table_add_pages(struct ksm_domain_table *t)
{
	unsigned int sorted = t->nr;
	struct ksm_stable_node *node;
	struct ksm_stable_key *key;
	struct rb_node *rb;
	int nid;

	for (nid = 0; nid < ksm_ctx.nr_trees; nid++) {
		for (rb = rb_first(&ksm_ctx.stable_roots[nid]); rb;
		     rb = rb_next(rb)) {
			struct ksm_domain_row *row;

			key = rb_entry(rb, struct ksm_stable_key, node);
			row = ksm_table_row(t, key->domain, t->nr == sorted);
			if (!row)
				continue;
			list_for_each_entry(node, &key->copies, copy_link) {
				if (!node->nr_items)
					continue;
				row->shared++;
				row->sharing += node->nr_items - 1;
			}
		}
	}
}

/* Rows to spare for mms registering meanwhile and for exited members. */
#define KSM_DOMAIN_TABLE_SLACK	64

static int ksm_domains_show(struct seq_file *m, void *unused)
{
	struct ksm_domain_table t = { };
	char name[32], *path;
	unsigned int i;

	mutex_lock(&ksm_ctx.lock);
	t.max = ksm_mm_count() + KSM_DOMAIN_TABLE_SLACK;
	t.rows = kvcalloc(t.max, sizeof(*t.rows), GFP_KERNEL);
	if (!t.rows) {
		mutex_unlock(&ksm_ctx.lock);
		return -ENOMEM;
	}
	spin_lock(&ksm_ctx.mm_list_lock);
	ksm_table_add_members(&t);
	spin_unlock(&ksm_ctx.mm_list_lock);
	sort(t.rows, t.nr, sizeof(*t.rows), ksm_row_cmp, NULL);
	ksm_table_add_pages(&t);
	mutex_unlock(&ksm_ctx.lock);
	/* Without memory for it, cgroup paths show as "-". */
	path = kmalloc(PATH_MAX, GFP_KERNEL);

	sort(t.rows, t.nr, sizeof(*t.rows), ksm_row_cmp, NULL);
	seq_puts(m, "domain members pages_shared pages_sharing ksm_merging ksm_zero ksm_tracked ksm_profit cgroup\n");
	for (i = 0; i < t.nr; i++) {
		struct ksm_domain_row *row = &t.rows[i];

		ksm_domain_print(name, sizeof(name), row->domain);
		seq_printf(m, "%s %lu %lu %lu", name, row->members,
			   row->shared, row->sharing);
		ksm_figures_seq_show(m, &row->figures);
		if (!path || ksm_domain_kind(row->domain) != KSM_DOMAIN_CGROUP ||
		    ksm_cgroup_path(row->domain & KSM_DOMAIN_ID_MASK, path,
				    PATH_MAX))
			seq_puts(m, " -\n");
		else
			seq_printf(m, " %s\n", path);
	}
	kfree(path);
	kvfree(t.rows);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ksm_domains);

/* The thread-group id of @mm's owner, 0 if unknown. */
static pid_t ksm_mm_owner_pid(struct mm_struct *mm)
{
#ifdef CONFIG_MEMCG
	struct task_struct *owner;
	pid_t pid = 0;

	rcu_read_lock();
	owner = rcu_dereference(mm->owner);
	if (owner)
		pid = task_tgid_nr(owner);
	rcu_read_unlock();
	return pid;
#else
	return 0;
#endif
}

static int ksm_mms_show(struct seq_file *m, void *unused)
{
	struct ksm_mm *slot;
	char name[32];

	seq_puts(m, "pid domain\n");
	spin_lock(&ksm_ctx.mm_list_lock);
	list_for_each_entry(slot, &ksm_ctx.mm_head.slot.mm_node, slot.mm_node) {
		if (ksm_mm_exiting(slot->slot.mm))
			continue;
		ksm_domain_print(name, sizeof(name), ksm_slot_domain(slot));
		seq_printf(m, "%d %s\n", ksm_mm_owner_pid(slot->slot.mm), name);
	}
	spin_unlock(&ksm_ctx.mm_list_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ksm_mms);

static int __init ksm_domain_debugfs_init(void)
{
	struct dentry *dir = debugfs_create_dir("ksm", NULL);

	debugfs_create_file("domains", 0400, dir, NULL, &ksm_domains_fops);
	debugfs_create_file("mms", 0400, dir, NULL, &ksm_mms_fops);
	ksm_memcg_debugfs_init(dir);
	ksm_stable_debugfs_init(dir);
	return 0;
}
late_initcall(ksm_domain_debugfs_init);

#endif /* CONFIG_DEBUG_FS */
