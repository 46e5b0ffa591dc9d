// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging: /sys/kernel/mm/ksm.
 *
 * Every file, its mode, its parsing and its errors follow the Linux 6.12
 * ABI (Documentation/ABI/testing/sysfs-kernel-mm-ksm): tunables are 0644,
 * counters 0444, malformed or out-of-range input fails with -EINVAL and
 * changes nothing.
 */

#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/sysfs.h>

#include "internal.h"

#define KSM_ATTR_RW(_name) \
	static struct kobj_attribute _name##_attr = __ATTR_RW(_name)
#define KSM_ATTR_RO(_name) \
	static struct kobj_attribute _name##_attr = __ATTR_RO(_name)

/*
 * A read-only file showing one unsigned long. Counters change under
 * ksm_ctx.lock and are read without it: benign, a statistic is a moment
 * old by the time anyone reads it, and a word-sized load does not tear.
 */
#define KSM_COUNTER(_name, _value)					\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	/* Benign race with the writers: see above. */			\
	return sysfs_emit(buf, "%lu\n", (unsigned long)data_race(_value)); \
}									\
KSM_ATTR_RO(_name)

/* plain tunables */

/**
 * struct ksm_knob_attr - a tunable that is a plain number or boolean
 * @attr: the sysfs attribute.
 * @number: the value, for numbers (parsed as unsigned int).
 * @flag: the value, for booleans (parsed by kstrtobool()).
 * @max: for numbers, the largest value accepted (0: no limit).
 * @advisor_owned: refused with -EINVAL while the advisor is on.
 * @wake_ksmd: ksmd must act on a new value at once.
 */
struct ksm_knob_attr {
	struct kobj_attribute attr;
	unsigned int *number;
	bool *flag;
	unsigned int max;
	bool advisor_owned;
	bool wake_ksmd;
};

static struct ksm_knob_attr *to_knob(struct kobj_attribute *attr)
{
	return container_of(attr, struct ksm_knob_attr, attr);
}

static ssize_t ksm_knob_show(struct kobject *kobj,
			     struct kobj_attribute *attr, char *buf)
{
	struct ksm_knob_attr *knob = to_knob(attr);

	return sysfs_emit(buf, "%u\n", knob->flag ? READ_ONCE(*knob->flag) :
					READ_ONCE(*knob->number));
}

static ssize_t ksm_knob_store(struct kobject *kobj,
			      struct kobj_attribute *attr,
			      const char *buf, size_t count)
{
	struct ksm_knob_attr *knob = to_knob(attr);
	unsigned int number;
	bool flag;

	if (knob->advisor_owned &&
	    READ_ONCE(ksm_advisor.mode) != KSM_ADVISOR_NONE)
		return -EINVAL;
	if (knob->flag) {
		if (kstrtobool(buf, &flag))
			return -EINVAL;
		WRITE_ONCE(*knob->flag, flag);
	} else {
		if (kstrtouint(buf, 10, &number) ||
		    (knob->max && number > knob->max))
			return -EINVAL;
		WRITE_ONCE(*knob->number, number);
	}
	if (knob->wake_ksmd)
		ksm_wake_thread();
	return count;
}

#define KSM_KNOB(_name, _field, ...)					\
static struct ksm_knob_attr _name##_knob = {				\
	.attr = __ATTR(_name, 0644, ksm_knob_show, ksm_knob_store),	\
	_field,								\
	__VA_ARGS__							\
}

/* The advisor owns pages_to_scan while it runs. */
KSM_KNOB(pages_to_scan, .number = &ksm_ctx.knobs.pages_to_scan,
	 .advisor_owned = true);
KSM_KNOB(sleep_millisecs, .number = &ksm_ctx.knobs.sleep_millisecs,
	 .wake_ksmd = true);
KSM_KNOB(stable_node_chains_prune_millisecs,
	 .number = &ksm_ctx.knobs.prune_millisecs);
KSM_KNOB(use_zero_pages, .flag = &ksm_ctx.knobs.use_zero_pages);
KSM_KNOB(smart_scan, .flag = &ksm_ctx.knobs.smart_scan);
/*
 * Not in 6.12: see mm/ksm/huge.c. At most the pages of a PMD-sized THP,
 * a limit set at init (not a compile-time constant everywhere).
 */
KSM_KNOB(huge_split_min_subpages,
	 .number = &ksm_ctx.knobs.huge_split_min_subpages);
/* Not in 6.12: see mm/ksm/domain.c. */
KSM_KNOB(merge_fresh_frames, .flag = &ksm_ctx.knobs.fresh_frames);

/* run control */

static ssize_t run_show(struct kobject *kobj, struct kobj_attribute *attr,
			char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(ksm_ctx.knobs.run));
}

static ssize_t run_store(struct kobject *kobj, struct kobj_attribute *attr,
			 const char *buf, size_t count)
{
	unsigned int run;
	int err;

	if (kstrtouint(buf, 10, &run) || run > KSM_RUN_UNMERGE)
		return -EINVAL;
	err = ksm_set_run(run);
	return err ? err : count;
}
KSM_ATTR_RW(run);

/* Not in 6.12: the number of ksmd threads, see mm/ksm/scan.c. */
static ssize_t ksmd_threads_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(ksm_ctx.knobs.threads));
}

static ssize_t ksmd_threads_store(struct kobject *kobj,
				  struct kobj_attribute *attr,
				  const char *buf, size_t count)
{
	unsigned int nr;
	int err;

	if (kstrtouint(buf, 10, &nr))
		return -EINVAL;
	err = ksm_set_threads(nr);
	return err ? err : count;
}
KSM_ATTR_RW(ksmd_threads);

/* merging policy */

static ssize_t merge_across_nodes_show(struct kobject *kobj,
				       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", ksm_ctx.knobs.merge_across_nodes);
}

static ssize_t merge_across_nodes_store(struct kobject *kobj,
					struct kobj_attribute *attr,
					const char *buf, size_t count)
{
	unsigned long across;
	int err;

	err = kstrtoul(buf, 10, &across);
	if (err)
		return err;
	if (across > 1)
		return -EINVAL;
	err = ksm_set_merge_across_nodes(across);
	return err ? err : count;
}
KSM_ATTR_RW(merge_across_nodes);

static ssize_t max_page_sharing_show(struct kobject *kobj,
				     struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n",
			  READ_ONCE(ksm_ctx.knobs.max_page_sharing));
}

static ssize_t max_page_sharing_store(struct kobject *kobj,
				      struct kobj_attribute *attr,
				      const char *buf, size_t count)
{
	int max, err;

	err = kstrtoint(buf, 10, &max);
	if (err)
		return err;
	if (max < 2)
		return -EINVAL;
	err = ksm_set_max_page_sharing(max);
	return err ? err : count;
}
KSM_ATTR_RW(max_page_sharing);

/* Not in 6.12: which tasks' pages may merge (see mm/ksm/domain.c). */
static ssize_t merge_domain_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	unsigned int mode = READ_ONCE(ksm_ctx.knobs.merge_domain);
	const char *name;
	int i, len = 0;

	for (i = 0; (name = ksm_domain_mode_name(i)); i++)
		len += sysfs_emit_at(buf, len, i == mode ? "%s[%s]" : "%s%s",
				     i ? " " : "", name);
	return len + sysfs_emit_at(buf, len, "\n");
}

static ssize_t merge_domain_store(struct kobject *kobj,
				  struct kobj_attribute *attr,
				  const char *buf, size_t count)
{
	const char *name;
	int i, err;

	for (i = 0; (name = ksm_domain_mode_name(i)); i++)
		if (sysfs_streq(buf, name))
			break;
	if (!name)
		return -EINVAL;
	err = ksm_set_merge_domain(i);
	return err ? err : count;
}
KSM_ATTR_RW(merge_domain);

/* advisor */

static const char * const ksm_advisor_names[] = {
	[KSM_ADVISOR_NONE] = "none",
	[KSM_ADVISOR_SCAN_TIME] = "scan-time",
};

static ssize_t advisor_mode_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	enum ksm_advisor_mode mode = READ_ONCE(ksm_advisor.mode);
	int i, len = 0;

	for (i = 0; i < ARRAY_SIZE(ksm_advisor_names); i++)
		len += sysfs_emit_at(buf, len, i == mode ? "%s[%s]" : "%s%s",
				     i ? " " : "", ksm_advisor_names[i]);
	return len + sysfs_emit_at(buf, len, "\n");
}

static ssize_t advisor_mode_store(struct kobject *kobj,
				  struct kobj_attribute *attr,
				  const char *buf, size_t count)
{
	int mode = sysfs_match_string(ksm_advisor_names, buf);

	if (mode < 0)
		return -EINVAL;
	ksm_advisor_set_mode(mode);
	return count;
}
KSM_ATTR_RW(advisor_mode);

/* An advisor tunable: any unsigned long of at least @_min. */
#define KSM_ADVISOR_KNOB(_name, _field, _min)				\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%lu\n", READ_ONCE(ksm_advisor._field));	\
}									\
static ssize_t _name##_store(struct kobject *kobj,			\
			     struct kobj_attribute *attr,		\
			     const char *buf, size_t count)		\
{									\
	unsigned long value;						\
									\
	if (kstrtoul(buf, 10, &value) || value < (_min))		\
		return -EINVAL;						\
	WRITE_ONCE(ksm_advisor._field, value);				\
	return count;							\
}									\
KSM_ATTR_RW(_name)

KSM_ADVISOR_KNOB(advisor_max_cpu, max_cpu, 0);
KSM_ADVISOR_KNOB(advisor_min_pages_to_scan, min_pages, 0);
KSM_ADVISOR_KNOB(advisor_max_pages_to_scan, max_pages, 0);
KSM_ADVISOR_KNOB(advisor_target_scan_time, target_scan_time, 1);

/* counters */

KSM_COUNTER(pages_scanned, ksm_ctx.stats.pages_scanned);
KSM_COUNTER(pages_shared, ksm_ctx.stats.pages_shared);
KSM_COUNTER(pages_sharing, ksm_ctx.stats.pages_sharing);
KSM_COUNTER(pages_unshared, ksm_ctx.stats.pages_unshared);
KSM_COUNTER(pages_skipped, ksm_ctx.stats.pages_skipped);
KSM_COUNTER(full_scans, ksm_ctx.scan.full_scans);
KSM_COUNTER(stable_node_chains, ksm_ctx.stats.chains);
KSM_COUNTER(stable_node_dups, ksm_ctx.stats.chain_copies);
KSM_COUNTER(huge_pages_split, atomic_long_read(&ksm_ctx.stats.huge_split));
KSM_COUNTER(huge_pages_kept, ksm_ctx.stats.huge_kept);

static ssize_t pages_volatile_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	struct ksm_stats *st = &ksm_ctx.stats;
	/* Unlocked, as in KSM_COUNTER(); never show a negative transient. */
	long nr = data_race((long)st->rmap_items - st->pages_shared -
			    st->pages_sharing - st->pages_unshared);

	return sysfs_emit(buf, "%ld\n", max(nr, 0L));
}
KSM_ATTR_RO(pages_volatile);

/* A read-only file showing one signed long. */
#define KSM_SIGNED_COUNTER(_name, _value)				\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%ld\n", (long)(_value));		\
}									\
KSM_ATTR_RO(_name)

/* Zero pages KSM mapped, and the net saving they are part of. */
KSM_SIGNED_COUNTER(ksm_zero_pages, ksm_zero_pages_total());

/* The net saving; counters read unlocked, benign as in KSM_COUNTER(). */
static long ksm_general_profit(void)
{
	long sharing = data_race(ksm_ctx.stats.pages_sharing); /* benign */
	long items = data_race(ksm_ctx.stats.rmap_items); /* benign */

	return ksm_profit(sharing + ksm_zero_pages_total(), items);
}

KSM_SIGNED_COUNTER(general_profit, ksm_general_profit());

/* Tunables first, in the order of the admin guide, then counters. */
static struct attribute *ksm_attrs[] = {
	&run_attr.attr,
	&pages_to_scan_knob.attr.attr,
	&sleep_millisecs_knob.attr.attr,
	&merge_across_nodes_attr.attr,
	&use_zero_pages_knob.attr.attr,
	&max_page_sharing_attr.attr,
	&stable_node_chains_prune_millisecs_knob.attr.attr,
	&smart_scan_knob.attr.attr,
	&huge_split_min_subpages_knob.attr.attr,
	&merge_domain_attr.attr,
	&merge_fresh_frames_knob.attr.attr,
	&ksmd_threads_attr.attr,
	&advisor_mode_attr.attr,
	&advisor_max_cpu_attr.attr,
	&advisor_min_pages_to_scan_attr.attr,
	&advisor_max_pages_to_scan_attr.attr,
	&advisor_target_scan_time_attr.attr,
	&pages_shared_attr.attr,
	&pages_sharing_attr.attr,
	&pages_unshared_attr.attr,
	&pages_volatile_attr.attr,
	&pages_skipped_attr.attr,
	&pages_scanned_attr.attr,
	&full_scans_attr.attr,
	&ksm_zero_pages_attr.attr,
	&stable_node_chains_attr.attr,
	&stable_node_dups_attr.attr,
	&general_profit_attr.attr,
	&huge_pages_split_attr.attr,
	&huge_pages_kept_attr.attr,
	NULL,
};

/* merge_across_nodes exists only on NUMA kernels. */
static umode_t ksm_attr_visible(struct kobject *kobj, struct attribute *attr,
				int n)
{
	if (attr == &merge_across_nodes_attr.attr && !IS_ENABLED(CONFIG_NUMA))
		return 0;
	return attr->mode;
}

static const struct attribute_group ksm_attr_group = {
	.name = "ksm",
	.attrs = ksm_attrs,
	.is_visible = ksm_attr_visible,
};

static int __init ksm_sysfs_init(void)
{
	int err;

	huge_split_min_subpages_knob.max = KSM_HUGE_MAX_SUBPAGES;
	err = sysfs_create_group(mm_kobj, &ksm_attr_group);
	if (err)
		pr_err("ksm: cannot register sysfs files\n");
	return err;
}
subsys_initcall_sync(ksm_sysfs_init);

#include "tests/sysfs-kunit.h"
