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

/* A read-only file showing one unsigned long. */
#define KSM_COUNTER(_name, _value)					\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%lu\n", (unsigned long)(_value));	\
}									\
KSM_ATTR_RO(_name)

/* run directory */

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

static ssize_t pages_to_scan_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(ksm_ctx.knobs.pages_to_scan));
}

static ssize_t pages_to_scan_store(struct kobject *kobj,
				   struct kobj_attribute *attr,
				   const char *buf, size_t count)
{
	unsigned int pages;

	/* The advisor owns the value while it runs. */
	if (READ_ONCE(ksm_advisor.mode) != KSM_ADVISOR_NONE)
		return -EINVAL;
	if (kstrtouint(buf, 10, &pages))
		return -EINVAL;
	WRITE_ONCE(ksm_ctx.knobs.pages_to_scan, pages);
	return count;
}
KSM_ATTR_RW(pages_to_scan);

static ssize_t sleep_millisecs_show(struct kobject *kobj,
				    struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n",
			  READ_ONCE(ksm_ctx.knobs.sleep_millisecs));
}

static ssize_t sleep_millisecs_store(struct kobject *kobj,
				     struct kobj_attribute *attr,
				     const char *buf, size_t count)
{
	unsigned int msecs;

	if (kstrtouint(buf, 10, &msecs))
		return -EINVAL;
	WRITE_ONCE(ksm_ctx.knobs.sleep_millisecs, msecs);
	ksm_wake_thread();
	return count;
}
KSM_ATTR_RW(sleep_millisecs);

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

static ssize_t use_zero_pages_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(ksm_ctx.knobs.use_zero_pages));
}

static ssize_t use_zero_pages_store(struct kobject *kobj,
				    struct kobj_attribute *attr,
				    const char *buf, size_t count)
{
	bool value;

	if (kstrtobool(buf, &value))
		return -EINVAL;
	WRITE_ONCE(ksm_ctx.knobs.use_zero_pages, value);
	return count;
}
KSM_ATTR_RW(use_zero_pages);

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

static ssize_t stable_node_chains_prune_millisecs_show(struct kobject *kobj,
						       struct kobj_attribute *attr,
						       char *buf)
{
	return sysfs_emit(buf, "%u\n",
			  READ_ONCE(ksm_ctx.knobs.prune_millisecs));
}

static ssize_t stable_node_chains_prune_millisecs_store(struct kobject *kobj,
							struct kobj_attribute *attr,
							const char *buf,
							size_t count)
{
	unsigned int msecs;

	if (kstrtouint(buf, 10, &msecs))
		return -EINVAL;
	WRITE_ONCE(ksm_ctx.knobs.prune_millisecs, msecs);
	return count;
}
KSM_ATTR_RW(stable_node_chains_prune_millisecs);

static ssize_t smart_scan_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(ksm_ctx.knobs.smart_scan));
}

static ssize_t smart_scan_store(struct kobject *kobj,
				struct kobj_attribute *attr,
				const char *buf, size_t count)
{
	bool value;

	if (kstrtobool(buf, &value))
		return -EINVAL;
	WRITE_ONCE(ksm_ctx.knobs.smart_scan, value);
	return count;
}
KSM_ATTR_RW(smart_scan);

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

static ssize_t pages_volatile_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	struct ksm_stats *st = &ksm_ctx.stats;
	long nr = (long)st->rmap_items - st->pages_shared -
		  st->pages_sharing - st->pages_unshared;

	/* The counters are read unlocked: never show a negative transient. */
	return sysfs_emit(buf, "%ld\n", max(nr, 0L));
}
KSM_ATTR_RO(pages_volatile);

static ssize_t ksm_zero_pages_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&ksm_zero_pages));
}
KSM_ATTR_RO(ksm_zero_pages);

static ssize_t general_profit_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	long saved = (long)(ksm_ctx.stats.pages_sharing +
			    atomic_long_read(&ksm_zero_pages)) * PAGE_SIZE;
	long cost = (long)(ksm_ctx.stats.rmap_items *
			   sizeof(struct ksm_rmap_item));

	return sysfs_emit(buf, "%ld\n", saved - cost);
}
KSM_ATTR_RO(general_profit);

static struct attribute *ksm_attrs[] = {
	&sleep_millisecs_attr.attr,
	&pages_to_scan_attr.attr,
	&run_attr.attr,
	&pages_scanned_attr.attr,
	&pages_shared_attr.attr,
	&pages_sharing_attr.attr,
	&pages_unshared_attr.attr,
	&pages_volatile_attr.attr,
	&pages_skipped_attr.attr,
	&ksm_zero_pages_attr.attr,
	&full_scans_attr.attr,
	&merge_across_nodes_attr.attr,
	&max_page_sharing_attr.attr,
	&stable_node_chains_attr.attr,
	&stable_node_dups_attr.attr,
	&stable_node_chains_prune_millisecs_attr.attr,
	&use_zero_pages_attr.attr,
	&general_profit_attr.attr,
	&smart_scan_attr.attr,
	&advisor_mode_attr.attr,
	&advisor_max_cpu_attr.attr,
	&advisor_min_pages_to_scan_attr.attr,
	&advisor_max_pages_to_scan_attr.attr,
	&advisor_target_scan_time_attr.attr,
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
	int err = sysfs_create_group(mm_kobj, &ksm_attr_group);

	if (err)
		pr_err("ksm: cannot register sysfs files\n");
	return err;
}
subsys_initcall_sync(ksm_sysfs_init);

#include "tests/sysfs-kunit.h"
