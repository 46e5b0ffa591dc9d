/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for the ksm_*_test.c selftests.
 *
 * Everything here is header-only and self-contained (no vm_util.c), so
 * each test builds with nothing but the kselftest harness on the include
 * path.  Helpers return 0 / a value on success and a negative errno on
 * failure; they never assert, so callers decide what a failure means.
 */
#ifndef KSM_TEST_UTIL_H
#define KSM_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#ifndef MADV_FREE
#define MADV_FREE		8
#endif
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE		12
#endif
#ifndef MADV_UNMERGEABLE
#define MADV_UNMERGEABLE	13
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE		14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE		15
#endif
#ifndef MADV_COLD
#define MADV_COLD		20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE		(1 << 1)
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE	67
#endif
#ifndef PR_GET_MEMORY_MERGE
#define PR_GET_MEMORY_MERGE	68
#endif
#ifndef PR_KSM_DOMAIN		/* ours: merge domains */
#define PR_KSM_DOMAIN		0x4b534d44
#define PR_KSM_DOMAIN_GET	0
#define PR_KSM_DOMAIN_PRIVATE	1
#define PR_KSM_DOMAIN_JOIN	2
#endif

#define KSM_DIR			"/sys/kernel/mm/ksm"
#define KSM_PM_PRESENT		(1ULL << 63)
#define KSM_PM_MMAP_EXCLUSIVE	(1ULL << 56)
#define KSM_PM_PFN_MASK		((1ULL << 55) - 1)

/* Generous bound for one "wait for N full scans": TCG + KASAN is slow. */
#define KSM_SCAN_TIMEOUT_SEC	120

static inline size_t ksm_page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------------ */
/* sysfs access                                                       */
/* ------------------------------------------------------------------ */

static inline void ksm_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, KSM_DIR "/%s", name);
}

/* Read the whole file into buf (NUL terminated). Returns length or -errno. */
static inline ssize_t ksm_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n, total = 0;
	int fd, err;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	while ((size_t)total < len - 1) {
		n = read(fd, buf + total, len - 1 - total);
		if (n < 0) {
			err = errno;
			close(fd);
			return -err;
		}
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

static inline ssize_t ksm_read_raw(const char *name, char *buf, size_t len)
{
	char path[256];

	ksm_path(path, sizeof(path), name);
	return ksm_read_file(path, buf, len);
}

/*
 * One write(2) of exactly len bytes to a fresh fd, like a shell "echo"
 * would do.  Returns 0 when the whole buffer was accepted, -errno on error
 * and -EIO on a short write.
 */
/* Write @len bytes of @val to the file at @path: 0, -errno, or -EIO if short. */
static inline int ksm_write_file(const char *path, const char *val, size_t len)
{
	ssize_t n;
	int fd, err;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	err = errno;
	close(fd);
	if (n < 0)
		return -err;
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

static inline int ksm_write_str(const char *path, const char *val)
{
	return ksm_write_file(path, val, strlen(val));
}

/*
 * Move the calling process into the cgroup v2 directory @cgroup by writing
 * its pid to @cgroup/cgroup.procs.  Returns 0 or -errno.
 */
static inline int ksm_join_cgroup(const char *cgroup)
{
	char path[256], pid[32];

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -ENAMETOOLONG;
	}
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	return ksm_write_str(path, pid);
}

static inline int ksm_write_buf(const char *name, const char *val, size_t len)
{
	char path[256];

	ksm_path(path, sizeof(path), name);
	return ksm_write_file(path, val, len);
}

static inline int ksm_write(const char *name, const char *val)
{
	return ksm_write_buf(name, val, strlen(val));
}

static inline int ksm_write_ul(const char *name, unsigned long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lu", v);
	return ksm_write(name, buf);
}

/*
 * Parse a counter/knob file that must contain exactly one decimal
 * integer followed by a single newline.  Returns -EBADMSG otherwise.
 */
static inline int ksm_parse_long(const char *buf, long *v)
{
	char *end;

	if (!buf[0] || buf[0] == '\n' || buf[0] == ' ' || buf[0] == '+')
		return -EBADMSG;
	errno = 0;
	*v = strtol(buf, &end, 10);
	if (errno || end == buf || strcmp(end, "\n"))
		return -EBADMSG;
	return 0;
}

static inline int ksm_read_long(const char *name, long *v)
{
	char buf[64];
	ssize_t n;

	n = ksm_read_raw(name, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	return ksm_parse_long(buf, v);
}

static inline int ksm_read_ul(const char *name, unsigned long *v)
{
	char buf[64], *end;
	ssize_t n;

	n = ksm_read_raw(name, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (buf[0] < '0' || buf[0] > '9')
		return -EBADMSG;
	errno = 0;
	*v = strtoul(buf, &end, 10);
	if (errno || strcmp(end, "\n"))
		return -EBADMSG;
	return 0;
}

/* Same as ksm_read_ul() but returns the value, or ~0UL on any error. */
static inline unsigned long ksm_get(const char *name)
{
	unsigned long v;

	if (ksm_read_ul(name, &v))
		return ~0UL;
	return v;
}

static inline bool ksm_file_exists(const char *name)
{
	char path[256];

	ksm_path(path, sizeof(path), name);
	return access(path, F_OK) == 0;
}

/* NULL if KSM's sysfs dir exists and we are root, else why to skip. */
static inline const char *ksm_skip_reason(void)
{
	struct stat st;

	if (stat(KSM_DIR, &st) || !S_ISDIR(st.st_mode))
		return KSM_DIR " not present (CONFIG_KSM=n?)";
	if (geteuid() != 0)
		return "must run as root";
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Knob save / restore                                                */
/* ------------------------------------------------------------------ */

/*
 * All read-write knobs of 6.12, in the order in which they can safely be
 * written back after "run" was set to 2: the advisor mode must be restored
 * before pages_to_scan (which it resets, and which cannot be written while
 * the scan-time advisor is active), and run itself goes last.
 */
static const char *const ksm_rw_knobs[] = {
	"merge_across_nodes",
	"max_page_sharing",
	"use_zero_pages",
	"smart_scan",
	"huge_split_min_subpages",	/* ours only: skipped where absent */
	"merge_domain",			/* ours only; needs no KSM pages */
	"merge_fresh_frames",		/* ours only */
	"ksmd_threads",			/* ours only */
	"stable_node_chains_prune_millisecs",
	"sleep_millisecs",
	"advisor_max_cpu",
	"advisor_min_pages_to_scan",
	"advisor_max_pages_to_scan",
	"advisor_target_scan_time",
	"advisor_mode",
	"pages_to_scan",
	"run",
};
#define KSM_NR_RW_KNOBS (sizeof(ksm_rw_knobs) / sizeof(ksm_rw_knobs[0]))

struct ksm_saved_knobs {
	bool valid[KSM_NR_RW_KNOBS];
	char val[KSM_NR_RW_KNOBS][64];
};

/* "[none] scan-time\n" -> "none"; returns -EBADMSG if no brackets. */
static inline int ksm_selected_word(const char *shown, char *out, size_t len)
{
	const char *l = strchr(shown, '['), *r;
	size_t n;

	if (!l)
		return -EBADMSG;
	r = strchr(l, ']');
	if (!r)
		return -EBADMSG;
	n = (size_t)(r - l - 1);
	if (n + 1 > len)
		return -ENAMETOOLONG;
	memcpy(out, l + 1, n);
	out[n] = '\0';
	return 0;
}

static inline void ksm_save_knobs(struct ksm_saved_knobs *s)
{
	size_t i;

	for (i = 0; i < KSM_NR_RW_KNOBS; i++) {
		char buf[64];

		s->valid[i] = false;
		if (ksm_read_raw(ksm_rw_knobs[i], buf, sizeof(buf)) <= 0)
			continue;
		if (strchr(buf, '[')) {	/* advisor_mode, merge_domain */
			if (ksm_selected_word(buf, s->val[i], sizeof(s->val[i])))
				continue;
		} else {
			buf[strcspn(buf, "\n")] = '\0';
			snprintf(s->val[i], sizeof(s->val[i]), "%s", buf);
		}
		s->valid[i] = true;
	}
}

/*
 * Stop and unmerge everything, then write every saved knob back.
 * Returns 0 or the first error seen (all knobs are attempted anyway).
 */
static inline int ksm_restore_knobs(const struct ksm_saved_knobs *s)
{
	int ret = 0, err;
	size_t i;

	err = ksm_write("run", "2");
	if (err)
		ret = err;
	for (i = 0; i < KSM_NR_RW_KNOBS; i++) {
		if (!s->valid[i])
			continue;
		if (!strcmp(ksm_rw_knobs[i], "pages_to_scan")) {
			char mode[64], sel[32];

			/* Not writable (and reset anyway) while scan-time. */
			if (ksm_read_raw("advisor_mode", mode, sizeof(mode)) > 0 &&
			    !ksm_selected_word(mode, sel, sizeof(sel)) &&
			    strcmp(sel, "none"))
				continue;
		}
		err = ksm_write(ksm_rw_knobs[i], s->val[i]);
		if (err && !ret)
			ret = err;
	}
	return ret;
}

/*
 * Bring KSM into a known, idle state: everything unmerged, full_scans
 * reset to 0, scan cursor at the list head.  Writing 2 is a no-op when
 * run already reads 2, so step through 0 first to force the unmerge.
 */
static inline int ksm_reset(void)
{
	int err;

	err = ksm_write("run", "0");
	if (err)
		return err;
	return ksm_write("run", "2");
}

/* Knobs that make passes quick; returns 0 or -errno. */
static inline int ksm_fast_scanning(void)
{
	int err;

	err = ksm_write("advisor_mode", "none");
	if (!err)
		err = ksm_write("pages_to_scan", "10000");
	if (!err)
		err = ksm_write("sleep_millisecs", "0");
	return err;
}

/*
 * Reset KSM, make passes quick, and set the knobs exact page counts depend
 * on to their defaults (smart_scan as given: 1 is the default). Returns 0
 * or the first -errno.
 */
static inline int ksm_counting_setup(bool smart_scan)
{
	int err;

	err = ksm_reset();
	if (!err)
		err = ksm_fast_scanning();
	if (!err)
		err = ksm_write("max_page_sharing", "256");
	if (!err)
		err = ksm_write("use_zero_pages", "0");
	if (!err)
		err = ksm_write("smart_scan", smart_scan ? "1" : "0");
	if (!err && ksm_file_exists("merge_across_nodes"))
		err = ksm_write("merge_across_nodes", "1");
	return err;
}

/* ------------------------------------------------------------------ */
/* Waiting for ksmd                                                   */
/* ------------------------------------------------------------------ */

static inline double ksm_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * A run of ksmd bounded by its progress rather than by the clock, for
 * ksm_run_scans(): it stops after @max_passes full scans, or once @secs
 * seconds have gone by and at least @min_passes were made; it fails with
 * -ETIMEDOUT only when no full scan ends within @bound seconds (a hang,
 * not a slow host).  Filled in: @base (full_scans at the start), @passes
 * made, @elapsed seconds, and @last, how long the last full scan took
 * (< 0 unless two ends were seen in a row).
 */
struct ksm_scan_run {
	unsigned int min_passes;
	unsigned int max_passes;
	double secs;
	unsigned int bound;
	unsigned long base;
	unsigned long passes;
	double elapsed;
	double last;
};

/* Start ksmd for @r (see struct ksm_scan_run), stop it again with run=0. */
static inline int ksm_run_scans(struct ksm_scan_run *r)
{
	double start = ksm_now(), now = start, end = -1, prev = -1;
	unsigned long was, cur;
	int err;

	r->base = 0;
	r->passes = 0;
	r->last = -1;
	err = ksm_read_ul("full_scans", &r->base);
	if (err)
		return err;
	cur = was = r->base;
	err = ksm_write("run", "1");
	if (err)
		return err;
	for (;;) {
		err = ksm_read_ul("full_scans", &cur);
		if (err)
			break;
		now = ksm_now();
		if (cur != was) {
			prev = cur == was + 1 ? end : -1;
			end = now;
			was = cur;
		}
		if (cur - r->base >= r->max_passes ||
		    (cur - r->base >= r->min_passes && now - start >= r->secs))
			break;
		if (now - (end < 0 ? start : end) > r->bound) {
			err = -ETIMEDOUT;
			break;
		}
		usleep(10000);
	}
	r->passes = cur - r->base;
	r->elapsed = now - start;
	r->last = prev >= 0 ? end - prev : -1;
	if (ksm_write("run", "0") && !err)
		err = -EIO;
	return err;
}

/*
 * Start ksmd, wait until full_scans has advanced by at least @passes
 * relative to its value when this was called, then stop ksmd again with
 * run=0 (which waits for ksmd's current batch, so counters are frozen on
 * return).  Returns 0, -ETIMEDOUT (no full scan ended within
 * KSM_SCAN_TIMEOUT_SEC: a slow host only takes longer), or -errno of a
 * sysfs access; *seen is the last full_scans value read.
 *
 * The scan cursor only starts a fresh pass over all mms when it is at the
 * list head, which is the case after ksm_reset(): then 2 passes merge
 * pages that were identical when ksmd was started (pass 1 records the
 * checksums, pass 2 merges).  If ksmd was previously stopped in the middle
 * of a pass, the first counted pass may be partial, so callers ask for 3.
 */
static inline int ksm_run_passes(unsigned int passes, unsigned long *start,
				 unsigned long *seen)
{
	struct ksm_scan_run r = {
		.min_passes = passes, .max_passes = passes,
		.bound = KSM_SCAN_TIMEOUT_SEC,
	};
	int err = ksm_run_scans(&r);

	if (start)
		*start = r.base;
	if (seen)
		*seen = r.base + r.passes;
	return err;
}

/* ------------------------------------------------------------------ */
/* Memory helpers                                                     */
/* ------------------------------------------------------------------ */

/*
 * Map @npages of private anonymous memory with a PROT_NONE guard page on
 * each side, so the region is a VMA of its own (smaps lookups are exact)
 * and never grows THPs (KSM splits those first, costing extra passes).
 */
static inline void *ksm_map_flags(size_t npages, int flags)
{
	size_t ps = ksm_page_size();
	char *area, *p;

	area = mmap(NULL, (npages + 2) * ps, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return MAP_FAILED;
	p = mmap(area + ps, npages * ps, PROT_READ | PROT_WRITE,
		 flags | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED) {
		munmap(area, (npages + 2) * ps);
		return MAP_FAILED;
	}
	/* Fails with EINVAL without CONFIG_TRANSPARENT_HUGEPAGE: fine. */
	madvise(p, npages * ps, MADV_NOHUGEPAGE);
	return p;
}

static inline void *ksm_map(size_t npages)
{
	return ksm_map_flags(npages, MAP_PRIVATE);
}

static inline void ksm_unmap(void *p, size_t npages)
{
	size_t ps = ksm_page_size();

	munmap((char *)p - ps, (npages + 2) * ps);
}

static inline void *ksm_page_at(void *base, size_t idx)
{
	return (char *)base + idx * ksm_page_size();
}

static inline uint64_t ksm_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Next value of the xorshift64* generator whose state is *@state (non-zero). */
static inline uint64_t ksm_xorshift(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dULL;
}

/* Fill one page with a pseudo-random stream that depends only on @seed. */
static inline void ksm_fill_page(void *page, uint64_t seed)
{
	uint64_t *w = page, x = ksm_mix(seed) | 1;
	size_t i;

	for (i = 0; i < ksm_page_size() / sizeof(*w); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

static inline bool ksm_page_matches(const void *page, uint64_t seed)
{
	const uint64_t *w = page;
	uint64_t x = ksm_mix(seed) | 1;
	size_t i;

	for (i = 0; i < ksm_page_size() / sizeof(*w); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (w[i] != x)
			return false;
	}
	return true;
}

/* Do all @n pages from @p hold the content of @seed? */
static inline bool ksm_pages_match(const void *p, size_t n, uint64_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!ksm_page_matches((const char *)p + i * ksm_page_size(), seed))
			return false;
	return true;
}

/* A seed that no other test run (or other page of this run) shares. */
static inline uint64_t ksm_unique_seed(void)
{
	static uint64_t counter;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ksm_mix(((uint64_t)getpid() << 40) ^ ((uint64_t)ts.tv_nsec << 8) ^
		       (uint64_t)ts.tv_sec ^ ++counter);
}

static inline bool ksm_page_is_zero(const void *page)
{
	const uint64_t *w = page;
	size_t i;

	for (i = 0; i < ksm_page_size() / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* /proc helpers                                                      */
/* ------------------------------------------------------------------ */

/* "/proc/<pid>/<file>" into @buf, or "/proc/self/<file>" for pid 0. */
static inline void ksm_proc_path(char *buf, size_t len, pid_t pid,
				 const char *file)
{
	if (pid)
		snprintf(buf, len, "/proc/%d/%s", (int)pid, file);
	else
		snprintf(buf, len, "/proc/self/%s", file);
}

/* ksm_read_file() of /proc/<pid>/@file (pid 0: self). */
static inline ssize_t ksm_read_proc(pid_t pid, const char *file, char *buf,
				    size_t len)
{
	char path[64];

	ksm_proc_path(path, sizeof(path), pid, file);
	return ksm_read_file(path, buf, len);
}

/* Raw /proc/<pid>/pagemap entry (pid 0: self) of the page at @addr. */
static inline int ksm_pagemap_of(pid_t pid, const void *addr, uint64_t *ent)
{
	char path[64];
	off_t off = (off_t)((uintptr_t)addr / ksm_page_size()) * sizeof(*ent);
	int fd, err = 0;

	ksm_proc_path(path, sizeof(path), pid, "pagemap");
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	if (pread(fd, ent, sizeof(*ent), off) != sizeof(*ent))
		err = -EIO;
	close(fd);
	return err;
}

/* Physical frame mapped at @addr in @pid (0: self); needs CAP_SYS_ADMIN. */
static inline int ksm_pfn_of(pid_t pid, const void *addr, uint64_t *pfn)
{
	uint64_t ent = 0;
	int err;

	err = ksm_pagemap_of(pid, addr, &ent);
	if (err)
		return err;
	if (!(ent & KSM_PM_PRESENT))
		return -ENOENT;
	*pfn = ent & KSM_PM_PFN_MASK;
	if (!*pfn)
		return -EPERM;	/* PFNs hidden: not privileged */
	return 0;
}

static inline int ksm_pfn(const void *addr, uint64_t *pfn)
{
	return ksm_pfn_of(0, addr, pfn);
}

/*
 * 1 if the page at @addr is mapped exactly once (pagemap bit 56), 0 if it
 * is mapped more than once (as a KSM page shared by several addresses
 * is), -errno on error.  (/proc/kpageflags KPF_KSM cannot be used: 6.12
 * sets it on every anonymous page.)
 */
static inline int ksm_page_exclusive(const void *addr)
{
	uint64_t ent = 0;
	int err;

	err = ksm_pagemap_of(0, addr, &ent);
	if (err)
		return err;
	if (!(ent & KSM_PM_PRESENT))
		return -ENOENT;
	return !!(ent & KSM_PM_MMAP_EXCLUSIVE);
}

struct ksm_proc_stat {
	long rmap_items;
	long zero_pages;
	long merging_pages;
	long process_profit;
	int merge_any;		/* 1 yes, 0 no, -1 not printed (6.12) */
	int mergeable;		/* 1 yes, 0 no, -1 not printed (6.12) */
};

/* "yes\n" or "no\n" at @s: 1 or 0, @s moved past it; -1 if neither. */
static inline int ksm_parse_yes_no(const char **s)
{
	if (!strncmp(*s, "yes\n", 4)) {
		*s += 4;
		return 1;
	}
	if (!strncmp(*s, "no\n", 3)) {
		*s += 3;
		return 0;
	}
	return -1;
}

/*
 * Parse /proc/<pid>/ksm_stat (pid 0: self): exactly the four lines of
 * 6.12 in their order, then either nothing (stock 6.12) or exactly the two
 * yes/no lines later kernels (and ours) add.  An empty file (a process
 * without an mm) is -ESRCH, anything else -EBADMSG.
 */
static inline int ksm_read_proc_stat(pid_t pid, struct ksm_proc_stat *st)
{
	static const char any[] = "ksm_merge_any: ", mergeable[] = "ksm_mergeable: ";
	const char *s;
	char buf[512];
	ssize_t n;
	int got;

	n = ksm_read_proc(pid, "ksm_stat", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (!n)
		return -ESRCH;
	got = -1;
	if (sscanf(buf, "ksm_rmap_items %ld\nksm_zero_pages %ld\n"
		   "ksm_merging_pages %ld\nksm_process_profit %ld\n%n",
		   &st->rmap_items, &st->zero_pages, &st->merging_pages,
		   &st->process_profit, &got) != 4 || got < 0)
		return -EBADMSG;
	s = buf + got;
	st->merge_any = st->mergeable = -1;
	if (s == buf + n)
		return 0;
	if (strncmp(s, any, strlen(any)))
		return -EBADMSG;
	s += strlen(any);
	st->merge_any = ksm_parse_yes_no(&s);
	if (st->merge_any < 0 || strncmp(s, mergeable, strlen(mergeable)))
		return -EBADMSG;
	s += strlen(mergeable);
	st->mergeable = ksm_parse_yes_no(&s);
	if (st->mergeable < 0 || s != buf + n)
		return -EBADMSG;
	return 0;
}

/* /proc/<pid>/ksm_merging_pages (pid 0: self); -EBADMSG if malformed. */
static inline long ksm_read_merging_pages(pid_t pid)
{
	char buf[64];
	ssize_t n;
	long v;

	n = ksm_read_proc(pid, "ksm_merging_pages", buf, sizeof(buf));
	if (n < 0)
		return n;
	if (ksm_parse_long(buf, &v) || v < 0)
		return -EBADMSG;
	return v;
}

/*
 * Find the /proc/<pid>/smaps block of the VMA that starts exactly at
 * @addr and report a "Field:   N kB" value in *kb, or whether VmFlags
 * holds @flag.  -ENOENT when no VMA starts at @addr or the field is absent.
 */
static inline int ksm_smaps_lookup(pid_t pid, const void *addr,
				   const char *field, unsigned long *kb,
				   const char *flag, bool *has_flag)
{
	char path[64], line[1024];
	unsigned long start, end;
	bool in_vma = false;
	int ret = -ENOENT;
	FILE *f;

	ksm_proc_path(path, sizeof(path), pid, "smaps");
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			if (in_vma)
				break;
			in_vma = start == (uintptr_t)addr;
			continue;
		}
		if (!in_vma)
			continue;
		if (field && !strncmp(line, field, strlen(field)) &&
		    line[strlen(field)] == ':') {
			if (sscanf(line + strlen(field) + 1, " %lu kB", kb) == 1)
				ret = 0;
			else
				ret = -EBADMSG;
			break;
		}
		if (flag && !strncmp(line, "VmFlags:", 8)) {
			char *tok, *save = NULL;

			*has_flag = false;
			for (tok = strtok_r(line + 8, " \n", &save); tok;
			     tok = strtok_r(NULL, " \n", &save))
				if (!strcmp(tok, flag))
					*has_flag = true;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* smaps "KSM:" of the VMA starting at @addr, in kB; negative on error. */
static inline long ksm_smaps_ksm_kb(pid_t pid, const void *addr)
{
	unsigned long kb;
	int err;

	err = ksm_smaps_lookup(pid, addr, "KSM", &kb, NULL, NULL);
	return err ? err : (long)kb;
}

/* 1 if the VMA starting at @addr has VmFlags "mg", 0 if not, or -errno. */
static inline int ksm_vma_mergeable(pid_t pid, const void *addr)
{
	bool has = false;
	int err;

	err = ksm_smaps_lookup(pid, addr, NULL, NULL, "mg", &has);
	return err ? err : has;
}

/* Value of a /proc/vmstat counter; -ENOENT if the line is missing. */
static inline int ksm_vmstat(const char *name, unsigned long *v)
{
	char line[256];
	size_t len = strlen(name);
	int ret = -ENOENT;
	FILE *f;

	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, len) && line[len] == ' ') {
			ret = sscanf(line + len, " %lu", v) == 1 ? 0 : -EBADMSG;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* ------------------------------------------------------------------ */
/* The kernel log, zram and swap (stress and fuzz tests)              */
/* ------------------------------------------------------------------ */

/* Kernel log records that mean a kernel bug, wherever they come from. */
static const char *const ksm_splat_words[] = {
	"BUG:", "WARNING:", "KASAN:", "KFENCE:", "UBSAN:", "Oops", "kernel BUG at",
	"general protection fault", "possible circular locking",
	"possible recursive locking", "inconsistent lock state",
	"suspicious RCU usage", "bad unlock balance", "DEBUG_LOCKS_WARN_ON",
	"soft lockup", "hard LOCKUP", "blocked for more than", "rcu_sched self-detected stall",
	"rcu: INFO:", "list_add corruption", "list_del corruption",
	"page dumped because", "Bad page state", "Bad page map",
};

/* /dev/kmsg, positioned after the last record; -1 if unavailable. */
static inline int ksm_kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/*
 * Read the kernel log records that arrived on @fd since the last call;
 * count those that report a kernel bug, printing the first few as
 * "# [@tag] kernel: ..." lines.  KCSAN data-race reports are printed but
 * not counted: most races KCSAN finds are outside mm/ksm/, and the host
 * (scripts/report.py), which knows our functions, judges them.
 */
static inline int ksm_kmsg_splats(int fd, const char *tag)
{
	char rec[2048];
	int hits = 0;
	size_t k;

	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		char *msg;

		if (n < 0 && errno == EPIPE)	/* overwritten records */
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		msg[strcspn(msg, "\n")] = '\0';
		if (strstr(msg, "BUG: KCSAN:")) {
			printf("# [%s] kernel (for the host to judge): %s\n", tag, msg);
			continue;
		}
		for (k = 0; k < sizeof(ksm_splat_words) / sizeof(ksm_splat_words[0]); k++) {
			if (strstr(msg, ksm_splat_words[k])) {
				if (hits < 8)
					printf("# [%s] kernel: %s\n", tag, msg);
				hits++;
				break;
			}
		}
	}
	return hits;
}

#define KSM_ZRAM_CTL	"/sys/class/zram-control"

static inline void ksm_zram_remove(int id, bool hot);

/*
 * A zram device of @bytes: a new one from zram-control/hot_add (*@hot set),
 * or zram0 if it is unused.  Returns the device number, its node in @dev,
 * or -errno with a reason in @why.
 */
static inline int ksm_zram_add(size_t bytes, bool *hot, char *dev,
			       size_t devlen, char *why, size_t whylen)
{
	char path[128], buf[64];
	int id = -1, err, i;

	*hot = false;
	if (ksm_read_file(KSM_ZRAM_CTL "/hot_add", buf, sizeof(buf)) > 0) {
		id = atoi(buf);
		*hot = true;
	} else if (ksm_read_file("/sys/block/zram0/disksize", buf, sizeof(buf)) > 0 &&
		   atol(buf) == 0) {
		id = 0;
	}
	if (id < 0) {
		snprintf(why, whylen, "no zram device (CONFIG_ZRAM off, or zram0 in use and no %s)",
			 KSM_ZRAM_CTL);
		return -ENODEV;
	}
	snprintf(path, sizeof(path), "/sys/block/zram%d/disksize", id);
	snprintf(buf, sizeof(buf), "%zu", bytes);
	err = ksm_write_str(path, buf);
	if (err) {
		snprintf(why, whylen, "zram%d: cannot set disksize: %s", id, strerror(-err));
		goto fail;
	}
	snprintf(dev, devlen, "/dev/zram%d", id);
	for (i = 0; i < 200 && access(dev, F_OK); i++)
		usleep(10 * 1000);
	if (access(dev, F_OK)) {
		snprintf(why, whylen, "%s did not appear", dev);
		err = -ENODEV;
		goto fail;
	}
	return id;
fail:
	ksm_zram_remove(id, *hot);
	return err;
}

/* Undo ksm_zram_add(). */
static inline void ksm_zram_remove(int id, bool hot)
{
	char path[128], buf[16];

	snprintf(path, sizeof(path), "/sys/block/zram%d/reset", id);
	ksm_write_str(path, "1");
	if (hot) {
		snprintf(buf, sizeof(buf), "%d", id);
		ksm_write_str(KSM_ZRAM_CTL "/hot_remove", buf);
	}
}

/* mkswap: a version-1 swap header of @bytes in the first page of @dev. */
static inline int ksm_write_swap_header(const char *dev, size_t bytes)
{
	size_t ps = ksm_page_size();
	unsigned char *page = calloc(1, ps);
	uint32_t *w;
	int fd, ret = 0;

	if (!page)
		return -ENOMEM;
	w = (uint32_t *)(page + 1024);
	w[0] = 1;				/* version */
	w[1] = (uint32_t)(bytes / ps - 1);	/* last_page */
	w[2] = 0;				/* nr_badpages */
	memcpy(page + ps - 10, "SWAPSPACE2", 10);
	fd = open(dev, O_WRONLY);
	if (fd < 0 || pwrite(fd, page, ps, 0) != (ssize_t)ps || fsync(fd))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(page);
	return ret;
}

#endif /* KSM_TEST_UTIL_H */
