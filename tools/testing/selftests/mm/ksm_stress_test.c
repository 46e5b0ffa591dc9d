// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_stress_test: KSM under stress, with every byte verified.
 *
 * ksmd runs at full speed (sleep_millisecs=0, pages_to_scan=5000) while
 * processes fill memory with content they can regenerate from a per-page
 * seed (zero pages, a small pool of contents duplicated across pages and
 * processes, and unique pages), then race the merging with the memory
 * operations that KSM has to get right: fork/exit, munmap, mremap,
 * mprotect, MADV_DONTNEED/FREE/UNMERGEABLE, page migration, compaction,
 * swap under a memcg limit, THP collapse and split, userfaultfd
 * write-protection, soft-offline and hwpoison, O_DIRECT I/O into and out
 * of merged buffers, changing KSM's own knobs, processes moving between
 * merge domains (ours), and a sparse 1 TiB
 * mergeable mapping that ksmd must not get stuck in.  Every process
 * verifies all of its pages after every step; any mismatch prints the
 * address, the expected and the found bytes, and fails the test.  Two
 * background "churn" processes share contents with everything else and
 * keep verifying and rewriting for the whole run.
 *
 * Every phase is one TAP test; the last four check the background
 * processes, that merging did happen (so nothing passes vacuously), that
 * no corrupt byte was seen anywhere, and that KSM's counters stayed sane
 * (ksm_zero_pages never negative after a phase).
 *
 *   ksm_stress_test              bounded profile: one round, small sizes
 *                                (about 1-3 minutes on a debug kernel
 *                                under TCG)
 *   ksm_stress_test -d SECONDS   repeat rounds for SECONDS, larger sizes
 *   -p PHASE[,PHASE...]          run only these phases (-l lists them)
 *   -t SECONDS                   bound for one wait on ksmd (default 90)
 *
 * A kernel bug reported in the kernel log (BUG, WARNING, KASAN, lockdep,
 * ...) while a phase runs fails that phase.
 *
 * A guardian process runs the test in its own process group, relays its
 * output, and, however the test ends (including SIGTERM from a timeout,
 * or its own deadline: 280s for the bounded profile), kills what is left,
 * shows the kernel stacks of test processes (and ksmd) that are stuck,
 * names the phase that was running, and restores the KSM knobs, swap,
 * zram devices, cgroups and THP settings it changed; KSM is left stopped
 * (run=2, then run=0).  A test process stuck in the kernel cannot keep
 * the guardian (and whoever reads its output) waiting.
 *
 * Skips (exit 4) when /sys/kernel/mm/ksm is missing or not running as
 * root; single phases skip when their feature is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "ksm_test_util.h"

#if defined(__has_include)
#if __has_include(<linux/userfaultfd.h>)
#include <linux/userfaultfd.h>
#define HAVE_UFFD_H 1
#endif
#endif

#ifndef MADV_HWPOISON
#define MADV_HWPOISON		100
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE	101
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif
#ifndef MPOL_MF_MOVE_ALL
#define MPOL_MF_MOVE_ALL	(1 << 2)
#endif
#ifndef SYS_move_pages
#define SYS_move_pages		279
#endif
#ifndef SYS_migrate_pages
#define SYS_migrate_pages	256
#endif
#ifndef SYS_userfaultfd
#define SYS_userfaultfd		323
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY	1
#endif
#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR		4
#endif
#ifndef BUS_MCEERR_AO
#define BUS_MCEERR_AO		5
#endif
#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER	36
#endif

#define KSM_DIR		"/sys/kernel/mm/ksm"
#define THP_DIR		"/sys/kernel/mm/transparent_hugepage"
#define CG_ROOT		"/sys/fs/cgroup"

#define PM_PRESENT	(1ULL << 63)
#define PM_SWAP		(1ULL << 62)
#define PM_EXCLUSIVE	(1ULL << 56)
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define KPF_HWPOISON	19
#define KPF_KSM		21

#define NDUP		32	/* seeds 1..NDUP: contents shared by everyone */
#define UNIQ_TAG	(1ULL << 63)
#define HW_TAG		(1ULL << 62)

#define HUGE_SZ		(2UL << 20)
#define MAX_REPORTS	24	/* detailed corruption reports per process */
#define MAX_ZRAM	4
#define MAX_CG		4
#define MAX_CHURN	4
#define SOFT_OFFLINE_BUDGET	32
#define HWPOISON_BUDGET		2

enum { R_PASS, R_FAIL, R_SKIP };

/* ------------------------------------------------------------------ */
/* State shared by all processes of the test (MAP_SHARED, never merged) */
/* ------------------------------------------------------------------ */

static const char *const knob_names[] = {
	"run", "pages_to_scan", "sleep_millisecs", "merge_across_nodes",
	"use_zero_pages", "max_page_sharing",
	"stable_node_chains_prune_millisecs", "smart_scan", "advisor_mode",
	"ksmd_threads",
};
#define NKNOBS (sizeof(knob_names) / sizeof(knob_names[0]))

struct shared {
	/* [0]: the phases' processes, [1]: background churn processes */
	long corrupt_pages[2];
	long corrupt_bytes[2];
	long max_sharing, max_shared, max_zero;
	long min_zero;		/* ksm_zero_pages seen after a phase */
	char neg_phase[32];	/* first phase after which it was < 0 */
	int unmerge_bad;	/* counters not 0 after a completed run=2 */
	char unmerge_msg[160];
	long churn_loops;
	int stop_churn;
	int stop_mutator;
	int cur_test;		/* TAP number of the phase running, 0: none */
	int tap_printed;	/* TAP results printed so far */
	int swap_state;		/* 1: swapoff done, child may finish */
	long swap_child_loops;
	int soft_offlined;
	int hwpoisoned;
	/* cleanup registry; written by the test's main process only */
	int knob_saved[NKNOBS];
	char knob_val[NKNOBS][64];
	int thp_changed;
	char thp_enabled[64];
	int swap_on;
	char swap_path[64];
	int zram_id[MAX_ZRAM];	/* -1: free slot */
	int zram_hot[MAX_ZRAM];
	char cg_path[MAX_CG][128];
	int memctl_enabled;
};

static struct shared *sh;
static size_t PS;
static unsigned char *dup_cache;	/* NDUP + 1 expected pages, [0] = zero */
static const char *g_phase = "setup";
static int g_round;
static int g_who;			/* 0: phase process, 1: churn */
static bool g_fail;			/* current phase failed */
static char g_skip[160];
static int g_local_reports;
static int g_scale = 1;
static bool g_bounded = true;
static double g_scan_timeout = 90;
static int g_nodes;
static uint64_t g_uniq;
static uint64_t g_rng;
static pid_t g_churn[MAX_CHURN];
static int g_nchurn;
static bool g_verbose;

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void msleep(unsigned int ms)
{
	usleep(ms * 1000);
}

static uint64_t rnd(void)
{
	return ksm_xorshift(&g_rng);
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static void reseed(uint64_t s)
{
	g_rng = s * 0x9E3779B97F4A7C15ULL + 0x1234567;
	if (!g_rng)
		g_rng = 1;
	rnd();
}

__attribute__((format(printf, 1, 2)))
static void note(const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("# [%s] %s\n", g_phase, buf);
}

__attribute__((format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("# [%s] FAIL (pid %d): %s\n", g_phase, getpid(), buf);
	g_fail = true;
}

__attribute__((format(printf, 1, 2)))
static int skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g_skip, sizeof(g_skip), fmt, ap);
	va_end(ap);
	return R_SKIP;
}

static int read_file(const char *path, char *buf, size_t len)
{
	ssize_t n, total = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	while ((size_t)total < len - 1) {
		n = read(fd, buf + total, len - 1 - total);
		if (n < 0) {
			int err = errno;

			close(fd);
			return -err;
		}
		if (!n)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return (int)total;
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	err = errno;
	close(fd);
	if (n < 0)
		return -err;
	return (size_t)n == strlen(val) ? 0 : -EIO;
}

static long read_long(const char *path)
{
	char buf[64];

	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

static int ksm_set(const char *knob, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), KSM_DIR "/%s", knob);
	if (access(path, F_OK))
		return -ENOENT;
	return write_file(path, val);
}

static long ksm_long(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), KSM_DIR "/%s", name);
	return read_long(path);
}

static long vmstat(const char *name)
{
	static char buf[16384];
	size_t l = strlen(name);
	char *p;

	if (read_file("/proc/vmstat", buf, sizeof(buf)) <= 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, l) && p[l] == ' ')
			return strtol(p + l + 1, NULL, 10);
	return -1;
}

static long self_merging_pages(void)
{
	return read_long("/proc/self/ksm_merging_pages");
}

/* Track the high-water marks that prove that merging happened. */
static void sample_counters(void)
{
	long v;

	v = ksm_long("pages_sharing");
	if (v > __atomic_load_n(&sh->max_sharing, __ATOMIC_RELAXED))
		__atomic_store_n(&sh->max_sharing, v, __ATOMIC_RELAXED);
	v = ksm_long("pages_shared");
	if (v > __atomic_load_n(&sh->max_shared, __ATOMIC_RELAXED))
		__atomic_store_n(&sh->max_shared, v, __ATOMIC_RELAXED);
	v = ksm_long("ksm_zero_pages");
	if (v > __atomic_load_n(&sh->max_zero, __ATOMIC_RELAXED))
		__atomic_store_n(&sh->max_zero, v, __ATOMIC_RELAXED);
}

/*
 * The global counters after a phase: ksm_zero_pages counts PTEs mapping
 * the zero page in place of a merged page and can never be negative.
 */
static void check_counters_after(const char *phase)
{
	long z = ksm_long("ksm_zero_pages");

	if (z < sh->min_zero) {
		sh->min_zero = z;
		if (z < 0 && !sh->neg_phase[0]) {
			snprintf(sh->neg_phase, sizeof(sh->neg_phase), "%s", phase);
			printf("# [%s] ksm_zero_pages is %ld: accounting underflow\n", phase, z);
		}
	}
}

/*
 * After run=2 has returned, nothing should be merged any more.  Only
 * noted, not failed: stock 6.12 too leaves some KSM zero pages counted
 * after run=2 under this workload.
 */
static void check_unmerged(const char *when)
{
	long sh_ = ksm_long("pages_shared"), sg = ksm_long("pages_sharing");
	long z = ksm_long("ksm_zero_pages");

	if (!sh_ && !sg && !z)
		return;
	printf("# [%s] note: %s: pages_shared=%ld pages_sharing=%ld ksm_zero_pages=%ld left after run=2\n",
	       g_phase, when, sh_, sg, z);
	if (!sh->unmerge_bad++)
		snprintf(sh->unmerge_msg, sizeof(sh->unmerge_msg),
			 "%s (%s): pages_shared=%ld pages_sharing=%ld ksm_zero_pages=%ld",
			 g_phase, when, sh_, sg, z);
}

static bool ksm_running(void)
{
	return ksm_long("run") == 1;
}

static int kmsg_fd = -1;

static void kmsg_open(void)
{
	kmsg_fd = ksm_kmsg_open();
}

/* Read new kernel log records; print and count the alarming ones. */
static int kmsg_check(void)
{
	return ksm_kmsg_splats(kmsg_fd, g_phase);
}

/*
 * Wait until ksmd completed @n more full scans.  Bounded: a ksmd that
 * stops making progress is a failure of the phase, not a hang.
 */
static int wait_scans(int n, const char *why)
{
	long base = ksm_long("full_scans"), cur = base;
	double start = now();

	if (base < 0) {
		fail("%s: cannot read full_scans", why);
		return -1;
	}
	if (!ksm_running()) {
		fail("%s: ksmd is not running (run=%ld)", why, ksm_long("run"));
		return -1;
	}
	for (;;) {
		cur = ksm_long("full_scans");
		sample_counters();
		if (cur < base)		/* reset by run=2 */
			base = cur;
		if (cur >= base + n)
			return 0;
		if (now() - start > g_scan_timeout) {
			fail("%s: full_scans advanced only %ld -> %ld in %.0fs, wanted +%d (ksmd stuck?)",
			     why, base, cur, now() - start, n);
			return -1;
		}
		msleep(10);
	}
}

/* ------------------------------------------------------------------ */
/* Page contents                                                      */
/* ------------------------------------------------------------------ */

/*
 * Seed 0 is the zero page; 1..NDUP are contents shared across pages and
 * processes; anything else is unique.  The first word of a non-zero page
 * is its seed, so a wrong page can often be identified by its content.
 */
static void gen_page(uint64_t seed, unsigned char *buf)
{
	uint64_t *w = (uint64_t *)buf, x, z;
	size_t i;

	if (!seed) {
		memset(buf, 0, PS);
		return;
	}
	x = seed * 0xD1B54A32D192ED03ULL;
	w[0] = seed;
	for (i = 1; i < PS / 8; i++) {
		x += 0x9E3779B97F4A7C15ULL;
		z = x;
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		w[i] = z ^ (z >> 31);
	}
}

static const unsigned char *expected(uint64_t seed, unsigned char *scratch)
{
	if (seed <= NDUP)
		return dup_cache + seed * PS;
	gen_page(seed, scratch);
	return scratch;
}

static uint64_t uniq_seed(void)
{
	return UNIQ_TAG | ((uint64_t)getpid() << 32) | (++g_uniq & 0xffffffffULL);
}

static uint64_t dup_seed(void)
{
	return 1 + rnd_below(NDUP);
}

static uint64_t pick_seed(int zero_pct, int dup_pct)
{
	int r = (int)rnd_below(100);

	if (r < zero_pct)
		return 0;
	if (r < zero_pct + dup_pct)
		return dup_seed();
	return uniq_seed();
}

static bool all_zero(const unsigned char *p)
{
	const uint64_t *w = (const uint64_t *)p;
	size_t i;

	for (i = 0; i < PS / 8; i++)
		if (w[i])
			return false;
	return true;
}

static uint64_t pagemap_entry(void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / PS * 8)) != sizeof(e))
		e = 0;
	close(fd);
	return e;
}

static uint64_t kpageflags(uint64_t pfn)
{
	uint64_t f = 0;
	int fd = open("/proc/kpageflags", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &f, sizeof(f), (off_t)(pfn * 8)) != sizeof(f))
		f = 0;
	close(fd);
	return f;
}

static uint64_t page_pfn(void *addr)
{
	uint64_t e = pagemap_entry(addr);

	return (e & PM_PRESENT) ? (e & PM_PFN_MASK) : 0;
}

/* ------------------------------------------------------------------ */
/* Tracked regions                                                    */
/* ------------------------------------------------------------------ */

enum { TP_OK, TP_GONE, TP_MAYBEZERO, TP_NOACC };

struct tpage {
	char *addr;
	uint64_t seed;
	unsigned char st;
};

struct region {
	char name[24];
	char *map;		/* the original mapping */
	size_t maplen;
	size_t n, cap;		/* tracked pages; slots n..cap-1 for extras */
	struct tpage *pg;
	unsigned char *scratch;
};

/*
 * Flush every TLB entry of this mm on every CPU: on x86, unmapping more
 * than tlb_single_page_flush_ceiling (33) pages flushes the whole mm.
 */
static void flush_own_tlb(void)
{
	size_t len = 64 * PS;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	memset(p, 1, len);	/* present PTEs, so the unmap must flush */
	munmap(p, len);
}

/*
 * Read a bad page again once no TLB entry can be stale: the same bytes
 * mean its PTE maps the wrong frame, the expected ones that the first
 * read went through a stale TLB entry.
 */
static void report_after_flush(const char *addr, const unsigned char *found,
			       const unsigned char *exp)
{
	static unsigned char again[65536];

	if (sizeof(again) < PS)
		return;
	flush_own_tlb();
	memcpy(again, addr, PS);
	printf("#   after a full TLB flush the page reads %s\n",
	       !memcmp(again, found, PS) ? "the same (the PTE maps the wrong frame)" :
	       !memcmp(again, exp, PS) ? "the expected bytes (a stale TLB entry was read)" :
	       "something else again");
}

static void report_corruption(const struct region *r, size_t i,
			      const unsigned char *found,
			      const unsigned char *exp, bool zero_ok)
{
	size_t off, bad = 0, first = PS, k;
	uint64_t seed = r->pg[i].seed, e, fw;
	char ehex[64], fhex[64];

	for (off = 0; off < PS; off++) {
		if (found[off] != exp[off]) {
			if (first == PS)
				first = off;
			bad++;
		}
	}
	__atomic_add_fetch(&sh->corrupt_pages[g_who], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->corrupt_bytes[g_who], (long)bad, __ATOMIC_RELAXED);
	if (++g_local_reports > MAX_REPORTS) {
		if (g_local_reports == MAX_REPORTS + 1)
			printf("# [%s] pid %d: further corruption reports suppressed\n",
			       g_phase, getpid());
		return;
	}
	if (first == PS)	/* a transient: the copy matched on re-read */
		first = 0;
	ehex[0] = fhex[0] = '\0';
	for (k = first & ~7UL; k < (first & ~7UL) + 16 && k < PS; k++) {
		snprintf(ehex + strlen(ehex), sizeof(ehex) - strlen(ehex), "%02x", exp[k]);
		snprintf(fhex + strlen(fhex), sizeof(fhex) - strlen(fhex), "%02x", found[k]);
	}
	printf("# CORRUPTION [%s] round %d pid %d region %s page %zu addr %p seed %#llx%s: %zu bad bytes, first at %p (+%#zx): expected 0x%02x found 0x%02x\n",
	       g_phase, g_round, getpid(), r->name, i, (void *)r->pg[i].addr,
	       (unsigned long long)seed, zero_ok ? " (or zero)" : "", bad,
	       (void *)(r->pg[i].addr + first), first, exp[first], found[first]);
	printf("#   bytes at +%#zx: expected %s found %s\n", first & ~7UL, ehex, fhex);
	memcpy(&fw, found, 8);
	if (all_zero(found))
		printf("#   found page is all zero\n");
	else if (fw && fw <= NDUP && !memcmp(found, dup_cache + fw * PS, PS))
		printf("#   found page is exactly the content of shared seed %llu\n",
		       (unsigned long long)fw);
	else if (fw & (UNIQ_TAG | HW_TAG))
		printf("#   found page starts like unique seed %#llx (pid %llu)\n",
		       (unsigned long long)fw, (unsigned long long)((fw >> 32) & 0x3fffffff));
	e = pagemap_entry(r->pg[i].addr);
	printf("#   pagemap %#llx: present=%d swap=%d exclusive=%d pfn=%#llx kpageflags=%#llx\n",
	       (unsigned long long)e, !!(e & PM_PRESENT), !!(e & PM_SWAP),
	       !!(e & PM_EXCLUSIVE), (unsigned long long)(e & PM_PFN_MASK),
	       (unsigned long long)((e & PM_PRESENT) ? kpageflags(e & PM_PFN_MASK) : 0));
	report_after_flush(r->pg[i].addr, found, exp);
	fflush(stdout);
}

/* Verify one tracked page; returns true if it is correct. */
static bool verify_page(struct region *r, size_t i, unsigned char *copy)
{
	struct tpage *t = &r->pg[i];
	const unsigned char *exp;

	if (t->st == TP_GONE || t->st == TP_NOACC)
		return true;
	memcpy(copy, t->addr, PS);
	exp = expected(t->seed, r->scratch);
	if (!memcmp(copy, exp, PS))
		return true;
	if (t->st == TP_MAYBEZERO && all_zero(copy))
		return true;
	report_corruption(r, i, copy, exp, t->st == TP_MAYBEZERO);
	return false;
}

/* Verify all tracked pages; returns the number of bad pages. */
static long region_verify(struct region *r)
{
	unsigned char *copy = r->scratch + PS;
	long bad = 0;
	size_t i;

	for (i = 0; i < r->cap; i++)
		if (r->pg[i].addr && !verify_page(r, i, copy))
			bad++;
	if (bad)
		g_fail = true;
	return bad;
}

static void region_fill(struct region *r, size_t i, uint64_t seed)
{
	memcpy(r->pg[i].addr, expected(seed, r->scratch), PS);
	r->pg[i].seed = seed;
	r->pg[i].st = TP_OK;
}

/* Track a page outside the original mapping (mremap'ed, DONTUNMAP'ed). */
static size_t region_track(struct region *r, char *addr, uint64_t seed)
{
	size_t i;

	for (i = r->n; i < r->cap; i++) {
		if (!r->pg[i].addr) {
			r->pg[i].addr = addr;
			r->pg[i].seed = seed;
			r->pg[i].st = TP_OK;
			return i;
		}
	}
	return (size_t)-1;
}

enum { RF_NOMERGE = 1, RF_ALIGN2M = 2, RF_HUGE = 4, RF_NOFILL = 8 };

static struct region *region_new(const char *name, size_t n, int zero_pct,
				 int dup_pct, unsigned int flags)
{
	struct region *r = calloc(1, sizeof(*r));
	size_t len = n * PS, extra = (flags & RF_ALIGN2M) ? HUGE_SZ : 0, i;
	char *m;

	if (!r)
		return NULL;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->cap = n + 64;
	r->pg = calloc(r->cap, sizeof(*r->pg));
	r->scratch = aligned_alloc(PS, 2 * PS);
	m = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!r->pg || !r->scratch || m == MAP_FAILED) {
		fail("region %s: cannot allocate %zu pages: %s", name, n, strerror(errno));
		free(r->pg);
		free(r->scratch);
		free(r);
		return NULL;
	}
	if (extra) {
		char *a = (char *)(((uintptr_t)m + HUGE_SZ - 1) & ~(HUGE_SZ - 1));

		if (a > m)
			munmap(m, a - m);
		if (a + len < m + len + extra)
			munmap(a + len, m + len + extra - (a + len));
		m = a;
	}
	r->map = m;
	r->maplen = len;
	r->n = n;
	if (flags & RF_HUGE)
		madvise(m, len, MADV_HUGEPAGE);
	if (!(flags & RF_NOMERGE) && madvise(m, len, MADV_MERGEABLE)) {
		fail("region %s: MADV_MERGEABLE: %s", name, strerror(errno));
		munmap(m, len);
		free(r->pg);
		free(r->scratch);
		free(r);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		r->pg[i].addr = m + i * PS;
		if (flags & RF_NOFILL)
			r->pg[i].seed = 0;
		else
			region_fill(r, i, pick_seed(zero_pct, dup_pct));
	}
	return r;
}

static void region_free(struct region *r)
{
	if (!r)
		return;
	munmap(r->map, r->maplen);
	free(r->pg);
	free(r->scratch);
	free(r);
}

/* Rewrite about pct% of the live pages with new seeds. */
static void region_churn(struct region *r, int pct, int zero_pct, int dup_pct)
{
	size_t i;

	for (i = 0; i < r->cap; i++) {
		if (!r->pg[i].addr || r->pg[i].st == TP_GONE || r->pg[i].st == TP_NOACC)
			continue;
		if ((int)rnd_below(100) < pct)
			region_fill(r, i, pick_seed(zero_pct, dup_pct));
	}
}

/* ------------------------------------------------------------------ */
/* Processes                                                          */
/* ------------------------------------------------------------------ */

static pid_t start_child(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		g_local_reports = 0;
		g_fail = false;
		reseed((uint64_t)getpid() * 7919 + (uint64_t)g_round);
	}
	return pid;
}

static void child_exit(void)
{
	fflush(stdout);
	_exit(g_fail ? 1 : 0);
}

/*
 * Wait for a child with a bound; returns its exit code, 128+signal if it
 * was killed, or -1 if it hung (it is then killed).
 */
static int reap(pid_t pid, double timeout, const char *what)
{
	double end = now() + timeout;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (r < 0) {
			fail("%s: waitpid(%d): %s", what, pid, strerror(errno));
			return -1;
		}
		if (now() > end) {
			fail("%s: child %d still running after %.0fs, killing it",
			     what, pid, timeout);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		msleep(5);
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

/* reap() and fail unless the child exited with 0 (or 4 = skip, if ok). */
static int reap_ok(pid_t pid, double timeout, const char *what)
{
	int rc = reap(pid, timeout, what);

	if (rc > 128)
		fail("%s: child %d killed by signal %d", what, pid, rc - 128);
	else if (rc > 0 && rc != 4)
		fail("%s: child %d exited with %d", what, pid, rc);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Knobs, zram, swap, cgroups: set up here, undone by the guardian    */
/* ------------------------------------------------------------------ */

static void save_knobs(void)
{
	char path[128], buf[64];
	size_t i;

	for (i = 0; i < NKNOBS; i++) {
		snprintf(path, sizeof(path), KSM_DIR "/%s", knob_names[i]);
		sh->knob_saved[i] = 0;
		if (read_file(path, buf, sizeof(buf)) <= 0)
			continue;
		if (!strcmp(knob_names[i], "advisor_mode")) {
			char *l = strchr(buf, '['), *rb = l ? strchr(l, ']') : NULL;

			if (!rb)
				continue;
			*rb = '\0';
			snprintf(sh->knob_val[i], sizeof(sh->knob_val[i]), "%s", l + 1);
		} else {
			buf[strcspn(buf, "\n")] = '\0';
			snprintf(sh->knob_val[i], sizeof(sh->knob_val[i]), "%s", buf);
		}
		sh->knob_saved[i] = 1;
	}
}

static const char *saved_knob(const char *name)
{
	size_t i;

	for (i = 0; i < NKNOBS; i++)
		if (!strcmp(knob_names[i], name) && sh->knob_saved[i])
			return sh->knob_val[i];
	return NULL;
}

/*
 * Unmerge everything (run=2), write back every saved knob, and leave ksmd
 * stopped (run=0).  merge_across_nodes and max_page_sharing can only be
 * changed while nothing is merged, which run=2 guarantees.
 */
static void restore_knobs(void)
{
	static const char *const order[] = {
		"merge_across_nodes", "max_page_sharing", "use_zero_pages",
		"smart_scan", "stable_node_chains_prune_millisecs",
		"sleep_millisecs", "pages_to_scan", "advisor_mode",
		"ksmd_threads",
	};
	size_t i;

	ksm_set("run", "2");
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *v = saved_knob(order[i]);
		int err;

		if (!v)
			continue;
		err = ksm_set(order[i], v);
		if (err && err != -ENOENT)
			printf("# restore: %s=%s: %s\n", order[i], v, strerror(-err));
	}
	ksm_set("run", "0");
}

static int zram_slot(void)
{
	int i;

	for (i = 0; i < MAX_ZRAM; i++)
		if (sh->zram_id[i] < 0)
			return i;
	return -1;
}

/*
 * Get a zram device of @bytes (ksm_zram_add()), recorded for cleanup.
 * Returns the device number or -errno, and the device node in @dev.
 */
static int zram_get(size_t bytes, char *dev, size_t devlen, char *why, size_t whylen)
{
	int slot = zram_slot(), id;
	bool hot;

	if (slot < 0) {
		snprintf(why, whylen, "too many zram devices");
		return -ENOSPC;
	}
	id = ksm_zram_add(bytes, &hot, dev, devlen, why, whylen);
	if (id >= 0) {
		sh->zram_hot[slot] = hot;
		sh->zram_id[slot] = id;
	}
	return id;
}

static void zram_put(int id)
{
	int i;

	for (i = 0; i < MAX_ZRAM; i++) {
		if (sh->zram_id[i] != id)
			continue;
		ksm_zram_remove(id, sh->zram_hot[i]);
		sh->zram_id[i] = -1;
	}
}

static int cg_slot(void)
{
	int i;

	for (i = 0; i < MAX_CG; i++)
		if (!sh->cg_path[i][0])
			return i;
	return -1;
}

/* A cgroup v2 group with the memory controller; "" and a reason if not. */
static int cg_create(char *path, size_t len, char *why, size_t whylen)
{
	char buf[256];
	int slot = cg_slot(), err;

	path[0] = '\0';
	if (slot < 0 || read_file(CG_ROOT "/cgroup.controllers", buf, sizeof(buf)) < 0) {
		snprintf(why, whylen, "no cgroup v2 at " CG_ROOT);
		return -ENOENT;
	}
	if (!strstr(buf, "memory")) {
		snprintf(why, whylen, "memory controller not available in cgroup v2");
		return -ENOENT;
	}
	if (read_file(CG_ROOT "/cgroup.subtree_control", buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	if (!strstr(buf, "memory")) {
		err = write_file(CG_ROOT "/cgroup.subtree_control", "+memory");
		if (err) {
			snprintf(why, whylen, "cannot enable +memory: %s", strerror(-err));
			return err;
		}
		sh->memctl_enabled = 1;
	}
	snprintf(path, len, CG_ROOT "/ksm_stress_%d_%d", getpid(), g_round);
	if (mkdir(path, 0755) && errno != EEXIST) {
		err = -errno;
		snprintf(why, whylen, "mkdir %s: %s", path, strerror(errno));
		path[0] = '\0';
		return err;
	}
	snprintf(sh->cg_path[slot], sizeof(sh->cg_path[slot]), "%s", path);
	return 0;
}

static void cg_remove(const char *path)
{
	int i, tries;

	for (i = 0; i < MAX_CG; i++) {
		if (!sh->cg_path[i][0] || strcmp(sh->cg_path[i], path))
			continue;
		/* a just-reaped process may still be leaving the group */
		for (tries = 0; tries < 300; tries++) {
			if (!rmdir(sh->cg_path[i]) || errno == ENOENT)
				break;
			msleep(10);
		}
		if (tries == 300)
			printf("# cannot remove %s: %s\n", sh->cg_path[i], strerror(errno));
		sh->cg_path[i][0] = '\0';
	}
}

/* Everything the registry says is still set up; idempotent. */
static void cleanup_all(void)
{
	int i;

	if (sh->swap_on) {
		if (swapoff(sh->swap_path))
			printf("# cleanup: swapoff %s: %s\n", sh->swap_path, strerror(errno));
		sh->swap_on = 0;
	}
	for (i = 0; i < MAX_ZRAM; i++)
		if (sh->zram_id[i] >= 0)
			zram_put(sh->zram_id[i]);
	for (i = 0; i < MAX_CG; i++)
		if (sh->cg_path[i][0])
			cg_remove(sh->cg_path[i]);
	if (sh->memctl_enabled) {
		write_file(CG_ROOT "/cgroup.subtree_control", "-memory");
		sh->memctl_enabled = 0;
	}
	if (sh->thp_changed) {
		write_file(THP_DIR "/enabled", sh->thp_enabled);
		sh->thp_changed = 0;
	}
	restore_knobs();
}

/* ------------------------------------------------------------------ */
/* Background churn: share contents with everyone, verify all the time */
/* ------------------------------------------------------------------ */

static void churn_main(int idx)
{
	struct region *r;
	long loops = 0;

	g_who = 1;
	g_phase = "churn";
	r = region_new("churn", 512 * g_scale, 10, 70, 0);
	if (!r)
		_exit(1);
	while (!__atomic_load_n(&sh->stop_churn, __ATOMIC_RELAXED)) {
		region_verify(r);
		region_churn(r, 3, 10, 80);
		if (++loops % 16 == idx) {
			/* a short-lived child that only verifies */
			pid_t pid = start_child();

			if (pid == 0) {
				region_verify(r);
				child_exit();
			}
			if (pid > 0)
				reap_ok(pid, 300, "churn child");
		}
		__atomic_add_fetch(&sh->churn_loops, 1, __ATOMIC_RELAXED);
		msleep(40);
	}
	region_verify(r);
	region_free(r);
	child_exit();
}

static void churn_start(int n)
{
	int i;

	for (i = 0; i < n && i < MAX_CHURN; i++) {
		pid_t pid = start_child();

		if (pid == 0)
			churn_main(i);
		if (pid > 0)
			g_churn[g_nchurn++] = pid;
	}
}

/* ------------------------------------------------------------------ */
/* Phases                                                             */
/* ------------------------------------------------------------------ */

static struct region *anchor;	/* the main process' long-lived region */

static size_t sz(size_t pages)
{
	return pages * (size_t)g_scale;
}

static void settle(const char *why)
{
	wait_scans(3, why);
}

/* fork/exit storm: children verify inherited memory, write, exit. */
static int phase_fork_storm(void)
{
	int waves = g_bounded ? 3 : 6, per = 6, w, k;
	struct region *r = region_new("fork", sz(1024), 10, 60, 0);

	if (!r)
		return R_FAIL;
	settle("fork_storm: merge");
	note("%ld pages of this process merged before forking", self_merging_pages());
	for (w = 0; w < waves && !g_fail; w++) {
		pid_t kids[16];
		int nk = 0;

		for (k = 0; k < per; k++) {
			pid_t pid = start_child();

			if (pid < 0) {
				fail("fork: %s", strerror(errno));
				break;
			}
			if (pid == 0) {
				region_verify(r);
				if (k % 3 == 0)
					child_exit();	/* exit storm */
				region_churn(r, 10, 10, 60);
				region_verify(r);
				if (k % 3 == 2) {
					pid_t gc = start_child();

					if (gc == 0) {
						region_verify(r);
						region_churn(r, 5, 0, 80);
						region_verify(r);
						child_exit();
					}
					if (gc > 0)
						reap_ok(gc, 300, "grandchild");
				}
				sched_yield();
				region_churn(r, 5, 10, 60);
				region_verify(r);
				child_exit();
			}
			kids[nk++] = pid;
		}
		/* the parent writes while its children still share the pages */
		region_churn(r, 5, 10, 60);
		region_verify(r);
		for (k = 0; k < nk; k++)
			reap_ok(kids[k], 300, "fork_storm child");
		region_verify(r);
		if (w == waves / 2)
			wait_scans(1, "fork_storm: between waves");
	}
	settle("fork_storm: re-merge");
	region_verify(r);
	region_free(r);
	return R_PASS;
}

/*
 * What the page tables said around munmap_mremap's moves, printed only
 * when the pages moved with MREMAP_DONTUNMAP read wrong: the frames of the
 * last chunk (the one whose hole the DONTUNMAP destination lands in) and of
 * the DONTUNMAP source before the moves, and where they all are after.
 */
enum {
	MREMAP_CHUNK = 16,	/* pages in each chunk step 1 moves */
	MREMAP_DU_PAGES = 8,	/* pages step 2 moves, MREMAP_DONTUNMAP */
};

/* Frames of the last chunk before and after step 1, of the source before. */
struct mremap_trace {
	uint64_t chunk_before[MREMAP_CHUNK];
	uint64_t du_src_before[MREMAP_DU_PAGES];
	uint64_t chunk_moved[MREMAP_CHUNK];
};

static void pfns_read(uint64_t *pfn, char *addr, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		pfn[i] = page_pfn(addr + i * PS);
}

static void pfns_print(const char *what, const uint64_t *pfn, size_t n)
{
	size_t i;

	printf("#   %s:", what);
	for (i = 0; i < n; i++)
		printf(" %#llx", (unsigned long long)pfn[i]);
	printf("\n");
}

/* Print the trace, the frames now, the mappings, and when the pages heal. */
static void mremap_trace_report(const struct mremap_trace *t, struct region *r,
				char *chunk_at, char *du, size_t first)
{
	uint64_t now_pfn[MREMAP_CHUNK];
	double t0 = now();
	char cmd[64];
	size_t i, bad;

	printf("# frames around the moves (chunk at %p, DONTUNMAP at %p):\n",
	       (void *)chunk_at, (void *)du);
	pfns_print("last chunk before step 1", t->chunk_before, MREMAP_CHUNK);
	pfns_print("DONTUNMAP source before step 1", t->du_src_before,
		   MREMAP_DU_PAGES);
	pfns_print("last chunk after step 1", t->chunk_moved, MREMAP_CHUNK);
	pfns_read(now_pfn, chunk_at, MREMAP_CHUNK);
	pfns_print("last chunk now", now_pfn, MREMAP_CHUNK);
	pfns_read(now_pfn, du, MREMAP_DU_PAGES);
	pfns_print("DONTUNMAP destination now", now_pfn, MREMAP_DU_PAGES);
	snprintf(cmd, sizeof(cmd), "cat /proc/%d/maps", getpid());
	fflush(stdout);
	if (system(cmd))
		printf("#   (cannot list the mappings)\n");
	do {
		bad = 0;
		for (i = 0; i < MREMAP_DU_PAGES; i++)
			if (memcmp(r->pg[first + i].addr,
				   expected(r->pg[first + i].seed, r->scratch), PS))
				bad++;
		if (!bad) {
			printf("# the DONTUNMAP pages read right after %.3fs\n", now() - t0);
			pfns_read(now_pfn, du, MREMAP_DU_PAGES);
			pfns_print("DONTUNMAP destination then", now_pfn,
				   MREMAP_DU_PAGES);
			return;
		}
		msleep(1);
	} while (now() - t0 < 10);
	printf("# %zu DONTUNMAP pages still read wrong after 10s\n", bad);
}

/* munmap holes, mremap merged pages away, grow, shrink, and back. */
static int phase_munmap_mremap(void)
{
	size_t n = sz(1024), nch = 8, chunk = MREMAP_CHUNK, i, c;
	struct region *r = region_new("mremap", n, 10, 60, 0);
	char *dst, *du = NULL, *grown = NULL;
	size_t du_len = MREMAP_DU_PAGES * PS, last = (nch - 1) * 64 + 8;
	struct mremap_trace trace;

	if (!r)
		return R_FAIL;
	dst = mmap(NULL, n * PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (dst == MAP_FAILED) {
		fail("mmap reservation: %s", strerror(errno));
		region_free(r);
		return R_FAIL;
	}
	settle("mremap: merge");
	note("%ld pages merged before moving", self_merging_pages());

	pfns_read(trace.chunk_before, r->map + last * PS, chunk);
	pfns_read(trace.du_src_before, r->map + (nch * 64 + 8) * PS,
		  MREMAP_DU_PAGES);
	/* 1. move merged chunks to fixed addresses elsewhere */
	for (c = 0; c < nch; c++) {
		size_t first = c * 64 + 8;
		char *src = r->map + first * PS, *to = dst + c * 32 * PS;

		if (mremap(src, chunk * PS, chunk * PS, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to) {
			fail("mremap chunk %zu: %s", c, strerror(errno));
			continue;
		}
		for (i = 0; i < chunk; i++)
			r->pg[first + i].addr = to + i * PS;
	}
	region_verify(r);

	/* 2. MREMAP_DONTUNMAP: pages move, the old range stays mapped, empty */
	pfns_read(trace.chunk_moved, r->pg[last].addr, chunk);
	{
		size_t first = nch * 64 + 8;
		char *src = r->map + first * PS;

		du = mremap(src, du_len, du_len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
		if (du == MAP_FAILED) {
			note("MREMAP_DONTUNMAP not supported here (%s)", strerror(errno));
			du = NULL;
		} else {
			for (i = 0; i < du_len / PS; i++) {
				r->pg[first + i].addr = du + i * PS;
				/* the old address stays mapped and reads zero */
				region_track(r, src + i * PS, 0);
			}
		}
	}
	if (region_verify(r) && du)
		mremap_trace_report(&trace, r, r->pg[last].addr, du, nch * 64 + 8);

	/* 3. punch holes into the merged area */
	for (i = 0; i < n; i++) {
		char *a = r->map + i * PS;

		if (r->pg[i].addr != a || r->pg[i].st != TP_OK)
			continue;
		if (i >= n - 32)
			continue;
		if (i % 17 == 5 || (i >= n / 2 + 40 && i < n / 2 + 64)) {
			if (munmap(a, PS))
				fail("munmap: %s", strerror(errno));
			r->pg[i].st = TP_GONE;
		}
	}
	region_verify(r);

	/* 4. grow 8 pages to 16 (moves), 5. shrink another 8 to 4 */
	{
		size_t g = n - 8, s = n - 24;
		bool ok = true;

		for (i = g; i < n; i++)
			ok &= r->pg[i].addr == r->map + i * PS && r->pg[i].st == TP_OK;
		if (ok) {
			grown = mremap(r->map + g * PS, 8 * PS, 16 * PS, MREMAP_MAYMOVE);
			if (grown == MAP_FAILED) {
				fail("mremap grow: %s", strerror(errno));
				grown = NULL;
			} else {
				for (i = 0; i < 8; i++)
					r->pg[g + i].addr = grown + i * PS;
				for (i = 8; i < 16; i++)
					region_track(r, grown + i * PS, 0);
			}
		}
		ok = true;
		for (i = s; i < s + 8; i++)
			ok &= r->pg[i].addr == r->map + i * PS && r->pg[i].st == TP_OK;
		if (ok) {
			if (mremap(r->map + s * PS, 8 * PS, 4 * PS, 0) != r->map + s * PS)
				fail("mremap shrink: %s", strerror(errno));
			for (i = s + 4; i < s + 8; i++)
				r->pg[i].st = TP_GONE;
		}
	}
	region_verify(r);
	wait_scans(2, "mremap: scan moved pages");
	region_verify(r);

	/* 6. write some moved pages, let them merge again, move them back */
	for (i = 0; i < r->cap; i++)
		if (r->pg[i].addr && r->pg[i].st == TP_OK && rnd_below(8) == 0)
			region_fill(r, i, pick_seed(10, 70));
	region_verify(r);
	settle("mremap: re-merge");
	region_verify(r);
	for (c = 0; c < nch; c++) {
		size_t first = c * 64 + 8;
		char *from = dst + c * 32 * PS, *back = r->map + first * PS;

		if (r->pg[first].addr != from)
			continue;
		if (mremap(from, chunk * PS, chunk * PS, MREMAP_MAYMOVE | MREMAP_FIXED, back) != back) {
			fail("mremap back %zu: %s", c, strerror(errno));
			continue;
		}
		for (i = 0; i < chunk; i++)
			r->pg[first + i].addr = back + i * PS;
	}
	region_verify(r);
	wait_scans(1, "mremap: after moving back");
	region_verify(r);

	munmap(dst, n * PS);
	if (du)
		munmap(du, du_len);
	if (grown)
		munmap(grown, 16 * PS);
	region_free(r);
	return R_PASS;
}

/*
 * phase_mprotect: make the first @n pages of @r read-write again, so the
 * PROT_NONE holes are accessible, and churn them.  @what starts the
 * message if mprotect() fails.
 */
static void mprotect_rw_churn(struct region *r, size_t n, const char *what)
{
	size_t i;

	if (mprotect(r->map, n * PS, PROT_READ | PROT_WRITE))
		fail("%s: %s", what, strerror(errno));
	for (i = 0; i < n; i++)
		if (r->pg[i].st == TP_NOACC)
			r->pg[i].st = TP_OK;
	region_verify(r);
	region_churn(r, 10, 10, 60);
	region_verify(r);
}

/* PROT_READ / PROT_NONE on merged pages, in parent and child. */
static int phase_mprotect(void)
{
	size_t n = sz(512), i, chunk = 32;
	struct region *r = region_new("mprotect", n, 10, 60, 0);
	pid_t pid;

	if (!r)
		return R_FAIL;
	settle("mprotect: merge");
	if (mprotect(r->map, n * PS, PROT_READ))
		fail("mprotect(PROT_READ): %s", strerror(errno));
	region_verify(r);
	wait_scans(1, "mprotect: read-only");
	region_verify(r);
	for (i = 0; i < n; i += chunk) {
		if ((i / chunk) % 2 == 0)
			continue;
		if (mprotect(r->map + i * PS, chunk * PS, PROT_NONE))
			fail("mprotect(PROT_NONE): %s", strerror(errno));
		for (size_t j = i; j < i + chunk && j < n; j++)
			r->pg[j].st = TP_NOACC;
	}
	region_verify(r);
	wait_scans(2, "mprotect: PROT_NONE holes");
	pid = start_child();
	if (pid == 0) {
		/* the child opens its copy up again and writes into it */
		mprotect_rw_churn(r, n, "child mprotect");
		child_exit();
	}
	mprotect_rw_churn(r, n, "mprotect(RW)");
	if (pid > 0)
		reap_ok(pid, 300, "mprotect child");
	settle("mprotect: re-merge");
	region_verify(r);
	/* flip protections while ksmd works on the range */
	for (i = 0; i < 8; i++) {
		mprotect(r->map, n * PS, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE);
		region_verify(r);
		msleep(20);
	}
	mprotect(r->map, n * PS, PROT_READ | PROT_WRITE);
	region_verify(r);
	region_free(r);
	return R_PASS;
}

/* MADV_DONTNEED, MADV_FREE, MADV_COLD/PAGEOUT, MADV_UNMERGEABLE. */
static int phase_madvise(void)
{
	size_t n = sz(1024), i;
	struct region *r = region_new("madvise", n, 10, 60, 0);
	int it;

	if (!r)
		return R_FAIL;
	settle("madvise: merge");
	note("%ld pages merged before madvise", self_merging_pages());
	for (it = 0; it < (g_bounded ? 2 : 4); it++) {
		/* DONTNEED'd pages must read zero */
		for (i = 0; i < n; i++) {
			if (i % 5 == (size_t)it || (i >= 100 && i < 164)) {
				if (madvise(r->pg[i].addr, PS, MADV_DONTNEED))
					fail("MADV_DONTNEED: %s", strerror(errno));
				r->pg[i].seed = 0;
			}
		}
		region_verify(r);
		/* MADV_FREE'd pages hold their content or zero */
		for (i = 0; i < n; i++) {
			if (i % 7 == 3) {
				if (madvise(r->pg[i].addr, PS, MADV_FREE))
					fail("MADV_FREE: %s", strerror(errno));
				r->pg[i].st = TP_MAYBEZERO;
			}
		}
		region_verify(r);
		madvise(r->map + n / 2 * PS, n / 4 * PS, MADV_COLD);
		madvise(r->map + n / 4 * PS, n / 8 * PS, MADV_PAGEOUT);
		region_verify(r);
		/* refill what was dropped, let ksmd see it */
		for (i = 0; i < n; i++)
			if (r->pg[i].st == TP_MAYBEZERO || r->pg[i].seed == 0)
				region_fill(r, i, pick_seed(20, 60));
		region_verify(r);
		wait_scans(2, "madvise: refilled");
		region_verify(r);
		/* break COW of half, then make it mergeable again */
		if (madvise(r->map, n / 2 * PS, MADV_UNMERGEABLE))
			fail("MADV_UNMERGEABLE: %s", strerror(errno));
		region_verify(r);
		if (madvise(r->map, n / 2 * PS, MADV_MERGEABLE))
			fail("MADV_MERGEABLE: %s", strerror(errno));
		wait_scans(2, "madvise: re-merge");
		region_verify(r);
	}
	/* drop everything, refill */
	madvise(r->map, n * PS, MADV_DONTNEED);
	for (i = 0; i < n; i++)
		r->pg[i].seed = 0;
	region_verify(r);
	for (i = 0; i < n; i++)
		region_fill(r, i, pick_seed(10, 60));
	settle("madvise: final merge");
	region_verify(r);
	region_free(r);
	return R_PASS;
}

struct hist {
	int val;
	long cnt;
};

static void hist_add(struct hist *h, int val)
{
	int i;

	for (i = 0; i < 8; i++) {
		if (h[i].cnt && h[i].val == val) {
			h[i].cnt++;
			return;
		}
		if (!h[i].cnt) {
			h[i].val = val;
			h[i].cnt = 1;
			return;
		}
	}
}

static void hist_print(const char *what, const struct hist *h)
{
	char buf[256] = "";
	int i;

	for (i = 0; i < 8 && h[i].cnt; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " %d(%s)x%ld",
			 h[i].val, h[i].val < 0 ? strerror(-h[i].val) : "node", h[i].cnt);
	note("%s:%s", what, buf);
}

static long sys_move_pages(pid_t pid, unsigned long count, void **pages,
			   const int *nodes, int *status, int flags)
{
	return syscall(SYS_move_pages, pid, count, pages, nodes, status, flags);
}

static long sys_migrate_pages(pid_t pid, unsigned long from, unsigned long to)
{
	return syscall(SYS_migrate_pages, pid, 8 * sizeof(unsigned long), &from, &to);
}

/* move_pages/migrate_pages of merged pages between node 0 and 1. */
static int phase_migrate(void)
{
	size_t n = sz(1024), i;
	struct region *r;
	void **pages;
	int *nodes, *status, it, iters = g_bounded ? 6 : 10;
	double t_end;
	pid_t mut;
	long moved = 0, busy = 0, other = 0, notmig = 0;
	struct hist hist[8] = { 0 };

	if (g_nodes < 2)
		return skip("only %d NUMA node(s) online", g_nodes);
	r = region_new("migrate", n, 10, 60, 0);
	if (!r)
		return R_FAIL;
	pages = calloc(n, sizeof(*pages));
	nodes = calloc(n, sizeof(*nodes));
	status = calloc(n, sizeof(*status));
	settle("migrate: merge");
	note("%ld pages merged before migrating", self_merging_pages());
	/*
	 * A mutator keeps rewriting pages with the shared contents, so that
	 * ksmd keeps adding and removing mappers of the very KSM pages being
	 * migrated.
	 */
	sh->stop_mutator = 0;
	mut = start_child();
	if (mut == 0) {
		struct region *m = region_new("mutator", sz(512), 5, 90, 0);

		while (m && !__atomic_load_n(&sh->stop_mutator, __ATOMIC_RELAXED)) {
			region_churn(m, 10, 5, 90);
			region_verify(m);
			if (rnd_below(4) == 0)
				madvise(m->map + rnd_below(m->n / 2) * PS, m->n / 4 * PS,
					MADV_UNMERGEABLE);
			region_verify(m);
			msleep(5);
		}
		if (m)
			region_verify(m);
		child_exit();
	}
	/* a few passes, more while time allows (debug kernels are slow) */
	t_end = now() + (g_bounded ? 30 : 60);
	for (it = 0; it < iters && (it < (g_bounded ? 2 : 3) || now() < t_end); it++) {
		long ret;
		int c;

		/*
		 * One call per 32-page chunk, all to one node: a call stops at
		 * the first batch that fails and returns how many pages it did
		 * not migrate, leaving later status entries untouched.
		 */
		for (i = 0; i < n; i++) {
			pages[i] = r->pg[i].addr;
			nodes[i] = (int)((i / 32 + it) % 2);
			status[i] = INT_MIN;
		}
		for (i = 0; i < n; i += 32) {
			size_t cnt = n - i < 32 ? n - i : 32, j;

			ret = sys_move_pages(0, cnt, pages + i, nodes + i, status + i,
					     MPOL_MF_MOVE_ALL);
			if (ret < 0 && (errno == ENOSYS || errno == EPERM)) {
				int e = errno;

				__atomic_store_n(&sh->stop_mutator, 1, __ATOMIC_RELAXED);
				if (mut > 0)
					reap_ok(mut, 300, "migrate mutator");
				errno = e;
				region_verify(r);
				free(pages);
				free(nodes);
				free(status);
				region_free(r);
				return skip("move_pages: %s", strerror(errno));
			}
			if (ret < 0)
				fail("move_pages: %s", strerror(errno));
			else if (ret > 0)
				notmig += ret;
			for (j = i; j < i + cnt; j++) {
				if (status[j] == nodes[j])
					moved++;
				else if (status[j] == INT_MIN)
					continue;	/* not attempted */
				else if (status[j] == -EBUSY || status[j] == -EAGAIN ||
					 status[j] == -ENOMEM)
					busy++;
				else {
					other++;
					hist_add(hist, status[j]);
				}
			}
		}
		region_verify(r);
		/* whole processes: ourselves and the churn processes */
		if (sys_migrate_pages(0, 1UL << (it % 2), 1UL << ((it + 1) % 2)) < 0)
			fail("migrate_pages(self): %s", strerror(errno));
		for (c = 0; c < g_nchurn; c++)
			sys_migrate_pages(g_churn[c], 1UL << ((it + 1) % 2), 1UL << (it % 2));
		if (mut > 0)
			sys_migrate_pages(mut, 1UL << (it % 2), 1UL << ((it + 1) % 2));
		region_verify(r);
		region_churn(r, 5, 10, 60);
		region_verify(r);
		wait_scans(1, "migrate: between rounds");
		region_verify(r);
	}
	__atomic_store_n(&sh->stop_mutator, 1, __ATOMIC_RELAXED);
	if (mut > 0)
		reap_ok(mut, 300, "migrate mutator");
	/* where are they now? */
	for (i = 0; i < n; i++)
		pages[i] = r->pg[i].addr;
	if (sys_move_pages(0, n, pages, NULL, status, 0) == 0) {
		long on[2] = { 0, 0 };

		for (i = 0; i < n; i++)
			if (status[i] == 0 || status[i] == 1)
				on[status[i]]++;
		note("move_pages: %ld pages on their target node, %ld not migrated, %ld busy, %ld other status; now %ld on node 0, %ld on node 1",
		     moved, notmig, busy, other, on[0], on[1]);
	}
	if (other)
		hist_print("move_pages other status values", hist);
	if (!moved)
		fail("move_pages did not move a single page");
	settle("migrate: re-merge");
	region_verify(r);
	free(pages);
	free(nodes);
	free(status);
	region_free(r);
	return R_PASS;
}

struct compact_arg {
	int rounds;
	volatile int done;
	int err;
};

static void *compact_thread(void *p)
{
	struct compact_arg *a = p;
	char path[96];
	int i, nd;

	for (i = 0; i < a->rounds; i++) {
		int err = write_file("/proc/sys/vm/compact_memory", "1");

		if (err)
			a->err = err;
		for (nd = 0; nd < g_nodes; nd++) {
			snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/compact", nd);
			write_file(path, "1");
		}
	}
	a->done = 1;
	return NULL;
}

/* Compaction migrating merged pages while we write and verify. */
static int phase_compaction(void)
{
	size_t n = sz(1024), fn = sz(4096), i;
	struct region *r;
	struct compact_arg a = { .rounds = g_bounded ? 2 : 4 };
	pthread_t th;
	char *frag;
	long scanned = vmstat("compact_migrate_scanned"), migrated = vmstat("pgmigrate_success");

	if (access("/proc/sys/vm/compact_memory", W_OK))
		return skip("no /proc/sys/vm/compact_memory (CONFIG_COMPACTION off)");
	/* fragment memory: every other page of a big area freed */
	frag = mmap(NULL, fn * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (frag == MAP_FAILED)
		return skip("mmap: %s", strerror(errno));
	r = region_new("compact", n, 10, 60, 0);
	if (!r) {
		munmap(frag, fn * PS);
		return R_FAIL;
	}
	for (i = 0; i < fn; i++)
		frag[i * PS] = 1;
	for (i = 0; i < fn; i += 2)
		madvise(frag + i * PS, PS, MADV_DONTNEED);
	settle("compaction: merge");
	if (pthread_create(&th, NULL, compact_thread, &a)) {
		fail("pthread_create");
	} else {
		while (!a.done) {
			region_verify(r);
			region_churn(r, 2, 10, 60);
			msleep(10);
		}
		pthread_join(th, NULL);
		if (a.err)
			fail("write compact_memory: %s", strerror(-a.err));
	}
	region_verify(r);
	settle("compaction: re-merge");
	region_verify(r);
	note("compact_migrate_scanned +%ld, pgmigrate_success +%ld",
	     vmstat("compact_migrate_scanned") - scanned, vmstat("pgmigrate_success") - migrated);
	munmap(frag, fn * PS);
	region_free(r);
	return R_PASS;
}

static long smaps_anon_huge_kb(void)
{
	char buf[4096], *p;

	if (read_file("/proc/self/smaps_rollup", buf, sizeof(buf)) <= 0)
		return -1;
	p = strstr(buf, "AnonHugePages:");
	return p ? strtol(p + 14, NULL, 10) : -1;
}

/* THP: merged THPs split, MADV_COLLAPSE back, MADV_NOHUGEPAGE. */
static int phase_thp(void)
{
	size_t huge = g_bounded ? 4 : 8, n = huge * HUGE_SZ / PS, h;
	struct region *r;
	char buf[128];
	int ok = 0, einval = 0, eagain = 0, other = 0;
	pid_t pid;

	if (read_file(THP_DIR "/enabled", buf, sizeof(buf)) <= 0)
		return skip("no " THP_DIR " (CONFIG_TRANSPARENT_HUGEPAGE off)");
	if (strstr(buf, "[never]")) {
		char *l = strchr(buf, '['), *rb = strchr(buf, ']');

		*rb = '\0';
		snprintf(sh->thp_enabled, sizeof(sh->thp_enabled), "%s", l + 1);
		sh->thp_changed = 1;
		write_file(THP_DIR "/enabled", "madvise");
	}
	r = region_new("thp", n, 10, 60, RF_ALIGN2M | RF_HUGE);
	if (!r)
		return R_FAIL;
	note("AnonHugePages after fill: %ld kB", smaps_anon_huge_kb());
	settle("thp: merge");
	note("AnonHugePages after merging: %ld kB, %ld pages merged",
	     smaps_anon_huge_kb(), self_merging_pages());
	region_verify(r);
	for (h = 0; h < huge; h++) {
		char *a = r->map + h * HUGE_SZ;

		/* odd ranges: unmerge first, so that collapsing can work */
		if (h % 2 && madvise(a, HUGE_SZ, MADV_UNMERGEABLE))
			fail("MADV_UNMERGEABLE: %s", strerror(errno));
		if (!madvise(a, HUGE_SZ, MADV_COLLAPSE))
			ok++;
		else if (errno == EINVAL)
			einval++;
		else if (errno == EAGAIN || errno == EBUSY || errno == ENOMEM)
			eagain++;
		else
			other++;
		region_verify(r);
		if (h % 2 && madvise(a, HUGE_SZ, MADV_MERGEABLE))
			fail("MADV_MERGEABLE: %s", strerror(errno));
	}
	note("MADV_COLLAPSE: %d ok, %d EINVAL, %d EAGAIN/EBUSY/ENOMEM, %d other; AnonHugePages %ld kB",
	     ok, einval, eagain, other, smaps_anon_huge_kb());
	if (einval == (int)huge)
		note("MADV_COLLAPSE unsupported here");
	region_churn(r, 5, 10, 60);
	region_verify(r);
	settle("thp: merge again");
	note("AnonHugePages after merging again: %ld kB", smaps_anon_huge_kb());
	region_verify(r);
	pid = start_child();
	if (pid == 0) {
		region_verify(r);
		madvise(r->map, HUGE_SZ, MADV_COLLAPSE);
		region_churn(r, 10, 10, 60);
		region_verify(r);
		madvise(r->map + HUGE_SZ, HUGE_SZ, MADV_COLLAPSE);
		region_verify(r);
		child_exit();
	}
	for (h = 0; h < huge; h += 2)
		madvise(r->map + h * HUGE_SZ, HUGE_SZ, MADV_COLLAPSE);
	region_verify(r);
	if (pid > 0)
		reap_ok(pid, 300, "thp child");
	if (madvise(r->map, n * PS, MADV_NOHUGEPAGE))
		fail("MADV_NOHUGEPAGE: %s", strerror(errno));
	region_churn(r, 5, 10, 60);
	wait_scans(2, "thp: nohugepage");
	region_verify(r);
	region_free(r);
	if (sh->thp_changed) {
		write_file(THP_DIR "/enabled", sh->thp_enabled);
		sh->thp_changed = 0;
	}
	return R_PASS;
}

#ifdef HAVE_UFFD_H
struct uffd_writer {
	struct region *r;
	size_t *idx;
	uint64_t *seeds;
	size_t cnt;
	volatile int done;
};

static void *uffd_writer_fn(void *p)
{
	struct uffd_writer *w = p;
	unsigned char *buf = aligned_alloc(PS, PS);
	size_t k;

	for (k = 0; k < w->cnt && buf; k++) {
		struct tpage *t = &w->r->pg[w->idx[k]];

		memcpy(t->addr, expected(w->seeds[k], buf), PS);
		t->seed = w->seeds[k];
	}
	free(buf);
	w->done = 1;
	return NULL;
}

static int uffd_wp(int uffd, void *addr, size_t len, bool protect)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

/* userfaultfd write-protection of merged pages. */
static int phase_uffd_wp(void)
{
	size_t n = sz(512), i, cnt;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
	struct uffdio_register reg;
	struct uffd_writer w = { 0 };
	struct region *r;
	pthread_t th;
	long faults = 0;
	double end;
	int uffd, err;

	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (uffd < 0)
		uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return skip("userfaultfd: %s", strerror(errno));
	if (ioctl(uffd, UFFDIO_API, &api) || !(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		close(uffd);
		return skip("userfaultfd write-protect not supported");
	}
	r = region_new("uffd", n, 10, 60, 0);
	if (!r) {
		close(uffd);
		return R_FAIL;
	}
	settle("uffd: merge");
	note("%ld pages merged before write-protecting", self_merging_pages());
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)r->map;
	reg.range.len = n * PS;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		int e = errno;

		close(uffd);
		region_free(r);
		return skip("UFFDIO_REGISTER_MODE_WP: %s", strerror(e));
	}
	err = uffd_wp(uffd, r->map, n * PS, true);
	if (err)
		fail("UFFDIO_WRITEPROTECT: %s", strerror(-err));
	region_verify(r);
	wait_scans(2, "uffd: scan write-protected range");
	region_verify(r);

	/* a writer faults on protected pages, we resolve them one by one */
	cnt = n / 8;
	w.r = r;
	w.cnt = cnt;
	w.idx = calloc(cnt, sizeof(*w.idx));
	w.seeds = calloc(cnt, sizeof(*w.seeds));
	for (i = 0; i < cnt; i++) {
		w.idx[i] = i * 8 + 3;
		w.seeds[i] = pick_seed(10, 60);
	}
	if (pthread_create(&th, NULL, uffd_writer_fn, &w)) {
		fail("pthread_create");
		w.done = 1;
	} else {
		end = now() + 120;
		while (!w.done) {
			struct pollfd pfd = { .fd = uffd, .events = POLLIN };
			struct uffd_msg msg;

			if (poll(&pfd, 1, 50) > 0 && read(uffd, &msg, sizeof(msg)) == sizeof(msg)) {
				if (msg.event != UFFD_EVENT_PAGEFAULT) {
					fail("unexpected uffd event %u", msg.event);
					continue;
				}
				if (!(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP))
					fail("missing-page fault at %#llx in a populated range",
					     (unsigned long long)msg.arg.pagefault.address);
				faults++;
				err = uffd_wp(uffd, (void *)(uintptr_t)(msg.arg.pagefault.address & ~(PS - 1)),
					      PS, false);
				if (err)
					fail("un-protect page: %s", strerror(-err));
			}
			if (now() > end) {
				fail("writer stuck on write-protected pages for 120s");
				uffd_wp(uffd, r->map, n * PS, false);
				end = now() + 120;
			}
		}
		pthread_join(th, NULL);
	}
	note("%ld write-protect faults for %zu writes to protected pages", faults, cnt);
	if (!faults)
		fail("no write-protect fault at all");
	region_verify(r);

	/* un-protect all, write, protect again while ksmd merges */
	err = uffd_wp(uffd, r->map, n * PS, false);
	if (err)
		fail("UFFDIO_WRITEPROTECT off: %s", strerror(-err));
	region_churn(r, 10, 10, 60);
	region_verify(r);
	wait_scans(2, "uffd: merge unprotected");
	uffd_wp(uffd, r->map, n * PS, true);
	region_verify(r);
	wait_scans(1, "uffd: protected again");
	uffd_wp(uffd, r->map, n * PS, false);
	region_churn(r, 10, 10, 60);
	region_verify(r);
	{
		struct uffdio_range range = { .start = (uintptr_t)r->map, .len = n * PS };

		if (ioctl(uffd, UFFDIO_UNREGISTER, &range))
			fail("UFFDIO_UNREGISTER: %s", strerror(errno));
	}
	close(uffd);
	settle("uffd: after unregister");
	region_verify(r);
	free(w.idx);
	free(w.seeds);
	region_free(r);
	return R_PASS;
}
#else
static int phase_uffd_wp(void)
{
	return skip("built without <linux/userfaultfd.h>");
}
#endif

/* Check @len bytes read back from the device against @r's seeds. */
static void check_device_copy(struct region *r, const unsigned char *buf, const char *what)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		const unsigned char *exp = expected(r->pg[i].seed, r->scratch);

		if (memcmp(buf + i * PS, exp, PS)) {
			note("%s: device page %zu differs from the buffer written", what, i);
			report_corruption(r, i, buf + i * PS, exp, false);
			g_fail = true;
		}
	}
}

/* O_DIRECT reads into and writes from merged buffers (zram block device). */
static int phase_odirect(void)
{
	size_t n = sz(256), i, c, chunk = 16;
	char dev[64], why[160];
	struct region *w = NULL, *rd = NULL;
	unsigned char *plain = NULL;
	int id, fd = -1, it, iters = g_bounded ? 3 : 6;
	ssize_t got;

	id = zram_get(16 << 20, dev, sizeof(dev), why, sizeof(why));
	if (id < 0)
		return skip("%s", why);
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0) {
		int e = errno;

		zram_put(id);
		return skip("open %s O_DIRECT: %s", dev, strerror(e));
	}
	w = region_new("odirect-src", n, 5, 75, 0);
	rd = region_new("odirect-dst", n, 5, 75, 0);
	plain = aligned_alloc(PS, n * PS);
	if (!w || !rd || !plain)
		goto out;
	settle("odirect: merge");
	note("%ld pages merged before I/O", self_merging_pages());
	for (it = 0; it < iters; it++) {
		/* write from a merged buffer */
		region_churn(w, 20, 5, 80);
		wait_scans(1, "odirect: source merging");
		got = pwrite(fd, w->map, n * PS, 0);
		if (got != (ssize_t)(n * PS))
			fail("O_DIRECT pwrite: %zd (%s)", got, strerror(errno));
		region_verify(w);
		memset(plain, 0xa5, n * PS);
		got = pread(fd, plain, n * PS, 0);
		if (got != (ssize_t)(n * PS))
			fail("O_DIRECT pread (plain): %zd (%s)", got, strerror(errno));
		check_device_copy(w, plain, "O_DIRECT write from merged buffer");

		/* read into merged pages: new data must land in our copy only */
		for (i = 0; i < n; i++)
			region_fill(rd, i, 1 + (w->pg[i].seed % NDUP + 5) % NDUP);
		wait_scans(2, "odirect: destination merging");
		note("I/O pass %d: %ld pages merged before O_DIRECT read", it, self_merging_pages());
		got = pread(fd, rd->map, n * PS, 0);
		if (got != (ssize_t)(n * PS))
			fail("O_DIRECT pread: %zd (%s)", got, strerror(errno));
		for (i = 0; i < n; i++)
			rd->pg[i].seed = w->pg[i].seed;
		region_verify(rd);
		region_verify(w);
		region_verify(anchor);

		/* chunked, racing with ksmd: fill mergeable, wait a bit, read */
		for (c = 0; c + chunk <= n; c += chunk) {
			for (i = c; i < c + chunk; i++)
				region_fill(rd, i, dup_seed());
			msleep(5 + rnd_below(20));
			got = pread(fd, rd->map + c * PS, chunk * PS, (off_t)(c * PS));
			if (got != (ssize_t)(chunk * PS))
				fail("O_DIRECT pread chunk: %zd (%s)", got, strerror(errno));
			for (i = c; i < c + chunk; i++)
				rd->pg[i].seed = w->pg[i].seed;
			if (c % (4 * chunk) == 0) {
				got = pwrite(fd, rd->map + c * PS, chunk * PS, (off_t)(c * PS));
				if (got != (ssize_t)(chunk * PS))
					fail("O_DIRECT pwrite chunk: %zd (%s)", got, strerror(errno));
			}
		}
		region_verify(rd);
		memset(plain, 0x5a, n * PS);
		if (pread(fd, plain, n * PS, 0) != (ssize_t)(n * PS))
			fail("O_DIRECT pread (plain): %s", strerror(errno));
		check_device_copy(w, plain, "O_DIRECT write-back of read data");
	}
out:
	if (fd >= 0)
		close(fd);
	zram_put(id);
	free(plain);
	region_free(w);
	region_free(rd);
	return R_PASS;
}

/* The swap child: verify and rewrite under the memcg limit until swapoff. */
static void swap_child(int gofd, size_t n, bool pageout)
{
	struct region *r;
	char c;
	size_t i;

	if (read(gofd, &c, 1) != 1)
		_exit(1);
	r = region_new("swap", n, 10, 40, 0);
	note("swap child: %zu pages filled", n);
	if (!r)
		_exit(1);
	while (__atomic_load_n(&sh->swap_state, __ATOMIC_RELAXED) == 0) {
		region_verify(r);
		region_churn(r, 5, 10, 40);
		if (pageout) {
			i = rnd_below(n > 64 ? n - 64 : 1);
			madvise(r->map + i * PS, 64 * PS, MADV_PAGEOUT);
		}
		__atomic_add_fetch(&sh->swap_child_loops, 1, __ATOMIC_RELAXED);
		if (g_fail)
			break;
	}
	/* swapoff swapped everything in: check once more */
	region_verify(r);
	region_free(r);
	child_exit();
}

/* Swap-out and swap-in of merged pages under a memcg limit, then swapoff. */
static int phase_swap(void)
{
	size_t n = sz(4096), swapsz = 256 << 20;
	char dev[64], why[160], cg[128], path[192], buf[64];
	long out0 = vmstat("pswpout"), in0 = vmstat("pswpin"), loops;
	int id, err, pfd[2];
	double end;
	pid_t pid;

	id = zram_get(swapsz, dev, sizeof(dev), why, sizeof(why));
	if (id < 0)
		return skip("swap: %s", why);
	err = ksm_write_swap_header(dev, swapsz);
	if (!err && swapon(dev, 0))
		err = -errno;
	if (err) {
		zram_put(id);
		return skip("swapon %s: %s", dev, strerror(-err));
	}
	snprintf(sh->swap_path, sizeof(sh->swap_path), "%s", dev);
	sh->swap_on = 1;
	if (cg_create(cg, sizeof(cg), why, sizeof(why)))
		note("no memcg limit (%s): using MADV_PAGEOUT only", why);
	sh->swap_state = 0;
	sh->swap_child_loops = 0;
	if (pipe(pfd)) {
		fail("pipe: %s", strerror(errno));
		goto out;
	}
	pid = start_child();
	if (pid == 0) {
		close(pfd[1]);
		swap_child(pfd[0], n, true);
	}
	close(pfd[0]);
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		close(pfd[1]);
		goto out;
	}
	if (cg[0]) {
		snprintf(path, sizeof(path), "%s/memory.max", cg);
		snprintf(buf, sizeof(buf), "%zu", n * PS / 3);
		if (write_file(path, buf))
			note("cannot set %s", path);
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		snprintf(buf, sizeof(buf), "%d", pid);
		if (write_file(path, buf))
			fail("cannot move the child into %s", cg);
	}
	if (write(pfd[1], "g", 1) != 1)
		fail("pipe write");
	close(pfd[1]);
	/* let it run a while with ksmd merging and reclaim swapping */
	end = now() + (g_bounded ? 25 : 60);
	while (now() < end && __atomic_load_n(&sh->swap_child_loops, __ATOMIC_RELAXED) <
	       (g_bounded ? 3 : 5)) {
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fail("swap child died early");
			pid = -1;
			break;
		}
		sample_counters();
		msleep(50);
	}
	loops = sh->swap_child_loops;
	note("child did %ld verify loops; pswpout +%ld, pswpin +%ld", loops,
	     vmstat("pswpout") - out0, vmstat("pswpin") - in0);
	if (cg[0]) {
		snprintf(path, sizeof(path), "%s/memory.events", cg);
		if (read_file(path, why, sizeof(why)) > 0) {
			for (char *p = why; *p; p++)
				if (*p == '\n')
					*p = ' ';
			note("memory.events: %s", why);
		}
		/* swapoff must not run into the limit */
		snprintf(path, sizeof(path), "%s/memory.max", cg);
		write_file(path, "max");
	}
	/* swapoff while the child keeps verifying */
	if (swapoff(dev))
		fail("swapoff %s: %s", dev, strerror(errno));
	else
		sh->swap_on = 0;
	__atomic_store_n(&sh->swap_state, 1, __ATOMIC_RELAXED);
	if (pid > 0)
		reap_ok(pid, 300, "swap child");
	if (vmstat("pswpout") - out0 <= 0)
		note("WARNING: nothing was swapped out, the phase did not test swap");
out:
	if (sh->swap_on && !swapoff(dev))
		sh->swap_on = 0;
	if (cg[0])
		cg_remove(cg);
	zram_put(id);
	return R_PASS;
}

/* MADV_SOFT_OFFLINE of merged pages: content must survive. */
static int phase_soft_offline(void)
{
	size_t n = sz(256), i, done = 0, want = g_bounded ? 4 : 8;
	struct region *r;
	int ok = 0, busy = 0;
	pid_t pid;

	if (sh->soft_offlined >= SOFT_OFFLINE_BUDGET)
		return skip("soft-offline budget of %d frames used up", SOFT_OFFLINE_BUDGET);
	r = region_new("softoff", n, 0, 100, 0);
	if (!r)
		return R_FAIL;
	settle("soft_offline: merge");
	for (i = 0; i < n && done < want; i += 7) {
		uint64_t e = pagemap_entry(r->pg[i].addr), pfn = e & PM_PFN_MASK, pfn2;

		if (!(e & PM_PRESENT) || (e & PM_EXCLUSIVE))
			continue;	/* want a page mapped more than once */
		if (!(kpageflags(pfn) & (1ULL << KPF_KSM)) && access("/proc/kpageflags", R_OK) == 0)
			continue;
		done++;
		sh->soft_offlined++;
		if (madvise(r->pg[i].addr, PS, MADV_SOFT_OFFLINE)) {
			if (errno == EINVAL || errno == EPERM || errno == ENOSYS) {
				int e2 = errno;

				region_free(r);
				return skip("MADV_SOFT_OFFLINE: %s", strerror(e2));
			}
			busy++;
			note("MADV_SOFT_OFFLINE page %zu (pfn %#llx): %s", i,
			     (unsigned long long)pfn, strerror(errno));
		} else {
			ok++;
		}
		pfn2 = page_pfn(r->pg[i].addr);
		if (g_verbose)
			note("page %zu: pfn %#llx -> %#llx", i, (unsigned long long)pfn,
			     (unsigned long long)pfn2);
		region_verify(r);
	}
	note("soft-offlined %d merged pages (%d failed), %zu candidates tried", ok, busy, done);
	if (!done)
		note("no merged page found to soft-offline");
	pid = start_child();
	if (pid == 0) {
		region_verify(r);
		region_churn(r, 20, 0, 100);
		region_verify(r);
		child_exit();
	}
	region_churn(r, 10, 0, 100);
	region_verify(r);
	if (pid > 0)
		reap_ok(pid, 300, "soft_offline child");
	wait_scans(2, "soft_offline: re-merge");
	region_verify(r);
	region_free(r);
	return R_PASS;
}

static sigjmp_buf hw_jmp;
static volatile sig_atomic_t hw_probing, hw_sigbus, hw_code;
static volatile uintptr_t hw_addr;

static void hw_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	hw_sigbus++;
	hw_code = si->si_code;
	hw_addr = (uintptr_t)si->si_addr;
	if (hw_probing)
		siglongjmp(hw_jmp, 1);
}

/* Read a page; true if that raised SIGBUS. */
static __attribute__((noinline)) bool probe_page(unsigned char *copy, const char *addr)
{
	if (sigsetjmp(hw_jmp, 1)) {
		hw_probing = 0;
		return true;
	}
	hw_probing = 1;
	memcpy(copy, addr, PS);
	hw_probing = 0;
	return false;
}

/*
 * The hwpoison child: 8 pages of one content private to this child (so
 * they merge only with each other), 4 shared ones, 4 unique ones.  It
 * poisons one page and then expects SIGBUS exactly on the pages mapping
 * the poisoned frame, and intact data everywhere else.
 */
static void hwpoison_child(bool merged_target)
{
	struct region *r = region_new("hwpoison", 16, 0, 0, RF_NOFILL);
	uint64_t pfn[16], hw = HW_TAG | ((uint64_t)getpid() << 8) | 1;
	struct sigaction sa;
	size_t i, target;
	int try, merged = 0, ret;
	unsigned char *copy;

	if (!r)
		_exit(1);
	copy = r->scratch + PS;
	for (i = 0; i < 16; i++)
		region_fill(r, i, i < 8 ? hw : i < 12 ? dup_seed() : uniq_seed());
	target = merged_target ? 0 : 13;
	/* wait (bounded) until the 8 private pages share a frame */
	for (try = 0; try < 8 && merged_target; try++) {
		uint64_t p0 = page_pfn(r->pg[0].addr);

		merged = 0;
		for (i = 1; i < 8; i++)
			merged += p0 && page_pfn(r->pg[i].addr) == p0;
		if (merged >= 7)
			break;
		if (wait_scans(1, "hwpoison: merge"))
			break;
	}
	for (i = 0; i < 16; i++)
		pfn[i] = page_pfn(r->pg[i].addr);
	note("poisoning page %zu (pfn %#llx, mapped by %d other page(s) of this child)",
	     target, (unsigned long long)pfn[target],
	     merged_target ? merged : 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = hw_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	__atomic_add_fetch(&sh->hwpoisoned, 1, __ATOMIC_RELAXED);
	ret = madvise(r->pg[target].addr, PS, MADV_HWPOISON);
	if (ret) {
		int e = errno;

		note("MADV_HWPOISON: %s", strerror(e));
		if (e == EPERM || e == EINVAL || e == ENOSYS)
			_exit(4);
		fail("MADV_HWPOISON failed: %s", strerror(e));
		child_exit();
	}
	note("MADV_HWPOISON returned; %d SIGBUS during the call (code %d)", (int)hw_sigbus,
	     (int)hw_code);
	for (i = 0; i < 16; i++) {
		bool expect = pfn[i] && pfn[i] == pfn[target];
		bool got = probe_page(copy, r->pg[i].addr);

		if (got && !expect)
			fail("SIGBUS (code %d addr %#lx) touching page %zu (pfn %#llx), which does not map the poisoned frame %#llx",
			     (int)hw_code, (unsigned long)hw_addr, i, (unsigned long long)pfn[i],
			     (unsigned long long)pfn[target]);
		else if (!got && expect)
			fail("no SIGBUS touching page %zu, which mapped the poisoned frame %#llx",
			     i, (unsigned long long)pfn[target]);
		else if (got && (hw_addr & ~(PS - 1)) != (uintptr_t)r->pg[i].addr)
			fail("SIGBUS for page %zu reports address %#lx", i, (unsigned long)hw_addr);
		else if (got && hw_code != BUS_MCEERR_AR)
			fail("SIGBUS for page %zu has si_code %d, not BUS_MCEERR_AR", i, (int)hw_code);
		if (!got) {
			const unsigned char *exp = expected(r->pg[i].seed, r->scratch);

			if (memcmp(copy, exp, PS)) {
				report_corruption(r, i, copy, exp, false);
				g_fail = true;
			}
		}
	}
	child_exit();
}

static int phase_hwpoison(void)
{
	int rc;
	pid_t pid;

	if (sh->hwpoisoned >= HWPOISON_BUDGET)
		return skip("hwpoison budget (%d frames per run) used up", HWPOISON_BUDGET);
	if (access("/proc/self/pagemap", R_OK))
		return skip("no /proc/self/pagemap");
	pid = start_child();
	if (pid == 0)
		hwpoison_child(sh->hwpoisoned == 0);
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return R_FAIL;
	}
	rc = reap(pid, 600, "hwpoison child");
	if (rc == 4)
		return skip("MADV_HWPOISON not available (CONFIG_MEMORY_FAILURE off?)");
	if (rc)
		fail("hwpoison child: %s %d", rc > 128 ? "killed by signal" : "exit code",
		     rc > 128 ? rc - 128 : rc);
	region_verify(anchor);
	return R_PASS;
}

static int set_knob_busy(const char *knob, const char *val)
{
	int err, tries;

	for (tries = 0; tries < 3; tries++) {
		err = ksm_set(knob, val);
		if (err != -EBUSY)
			break;
		/* EBUSY: KSM pages still exist; unmerge again */
		note("%s=%s: EBUSY (pages_shared=%ld), unmerging again", knob, val,
		     ksm_long("pages_shared"));
		ksm_set("run", "0");
		ksm_set("run", "2");
	}
	if (err && err != -ENOENT)
		fail("%s=%s: %s", knob, val, strerror(-err));
	return err;
}

/* KSM settings a round runs its phases with (long runs vary them). */
struct round_cfg {
	const char *man, *mps, *uzp;
};

static const struct round_cfg round_cfgs[] = {
	{ "1", "256", "0" },	/* the 6.12 defaults */
	{ "1", "256", "1" },	/* zero pages map the shared zero page */
	{ "0", "256", "0" },	/* one stable tree per NUMA node */
	{ "1", "2", "1" },	/* stable node chains everywhere */
};
static const struct round_cfg *g_cfg = &round_cfgs[0];

static void apply_round_config(int round)
{
	const struct round_cfg *c = &round_cfgs[(round - 1) % 4];
	bool man = access(KSM_DIR "/merge_across_nodes", F_OK) == 0;

	if (c->man[0] == '0' && (g_nodes < 2 || !man))
		c = &round_cfgs[0];
	g_cfg = c;
	printf("# round %d: merge_across_nodes=%s max_page_sharing=%s use_zero_pages=%s\n",
	       round, c->man, c->mps, c->uzp);
	if (!ksm_set("run", "2"))
		check_unmerged("run=2 between rounds");
	if (man)
		set_knob_busy("merge_across_nodes", c->man);
	set_knob_busy("max_page_sharing", c->mps);
	set_knob_busy("use_zero_pages", c->uzp);
	if (ksm_set("run", "1"))
		fail("run=1");
}

/*
 * phase_knobs' run=2: it must succeed and leave nothing merged (@when
 * says after what), and the churned regions @z and @ch must be intact.
 */
static void knobs_run2(const char *when, struct region *z, struct region *ch)
{
	int err = ksm_set("run", "2");

	if (err)
		fail("run=2: %s", strerror(-err));
	else
		check_unmerged(when);
	region_verify(z);
	region_verify(ch);
}

/* run 0/1/2, merge_across_nodes, use_zero_pages, max_page_sharing. */
/* Change the number of ksmd threads a few times while ksmd runs. */
static void knobs_toggle_threads(void)
{
	static const char *const counts[] = { "4", "1", "3", "2" };
	size_t i;
	int err;

	if (access(KSM_DIR "/ksmd_threads", F_OK))
		return;
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		err = ksm_set("ksmd_threads", counts[i]);
		if (err)
			fail("ksmd_threads=%s: %s", counts[i], strerror(-err));
		msleep(50);
	}
}

static int phase_knobs(void)
{
	size_t n = sz(512), i;
	struct region *z, *ch;
	const char *man_saved = "1";
	bool have_man = access(KSM_DIR "/merge_across_nodes", F_OK) == 0;

	z = region_new("knobs-zero", n, 60, 30, 0);
	ch = region_new("knobs-chain", 128, 0, 0, RF_NOFILL);
	if (!z || !ch) {
		region_free(z);
		region_free(ch);
		return R_FAIL;
	}
	for (i = 0; i < ch->n; i++)
		region_fill(ch, i, 1 + i % 2);	/* long chains of two contents */
	settle("knobs: merge");

	/* run=0: ksmd stops, merged pages stay merged */
	if (ksm_set("run", "0"))
		fail("run=0");
	region_verify(z);
	region_verify(anchor);
	region_churn(z, 10, 50, 30);
	region_verify(z);
	if (ksm_set("run", "1"))
		fail("run=1");
	knobs_toggle_threads();
	wait_scans(2, "knobs: run=1 again");
	region_verify(z);

	/* run=2 unmerges everything while the churn processes keep writing */
	knobs_run2("run=2 from run=1", z, ch);
	region_verify(anchor);

	/* knobs that need "nothing merged": max_page_sharing, merge_across_nodes */
	set_knob_busy("max_page_sharing", "2");
	set_knob_busy("stable_node_chains_prune_millisecs", "100");
	if (have_man) {
		long v = ksm_long("merge_across_nodes");

		man_saved = v == 0 ? "0" : "1";
		set_knob_busy("merge_across_nodes", v == 0 ? "1" : "0");
	}
	set_knob_busy("use_zero_pages", "1");
	set_knob_busy("smart_scan", "0");
	if (ksm_set("run", "1"))
		fail("run=1");
	settle("knobs: merge with max_page_sharing=2, use_zero_pages=1");
	note("stable_node_chains=%ld stable_node_dups=%ld ksm_zero_pages=%ld pages_sharing=%ld",
	     ksm_long("stable_node_chains"), ksm_long("stable_node_dups"),
	     ksm_long("ksm_zero_pages"), ksm_long("pages_sharing"));
	region_verify(z);
	region_verify(ch);
	/* write into pages mapping the zero page and into chained pages */
	for (i = 0; i < z->n; i++)
		if (z->pg[i].seed == 0 && rnd_below(3) == 0)
			region_fill(z, i, pick_seed(0, 70));
	for (i = 0; i < ch->n; i += 5)
		region_fill(ch, i, 1 + rnd_below(3));
	region_verify(z);
	region_verify(ch);
	if (g_nodes >= 2) {
		/* move merged pages across nodes with per-node trees (or not) */
		void **pages = calloc(ch->n, sizeof(*pages));
		int *nodes = calloc(ch->n, sizeof(*nodes));
		int *status = calloc(ch->n, sizeof(*status));

		for (i = 0; i < ch->n && pages && nodes && status; i++) {
			pages[i] = ch->pg[i].addr;
			nodes[i] = (int)(i % 2);
		}
		if (pages && nodes && status)
			sys_move_pages(0, ch->n, pages, nodes, status, MPOL_MF_MOVE_ALL);
		free(pages);
		free(nodes);
		free(status);
		region_verify(ch);
	}
	wait_scans(2, "knobs: after writes");
	region_verify(z);
	region_verify(ch);

	/* toggle use_zero_pages and smart_scan while running */
	set_knob_busy("use_zero_pages", g_cfg->uzp[0] == '1' ? "0" : "1");
	set_knob_busy("smart_scan", "1");
	wait_scans(1, "knobs: use_zero_pages=0");
	region_verify(z);

	/* back to the test's settings */
	knobs_run2("run=2 after use_zero_pages/max_page_sharing=2", z, ch);
	if (have_man)
		set_knob_busy("merge_across_nodes", man_saved);
	set_knob_busy("max_page_sharing", g_cfg->mps);
	set_knob_busy("use_zero_pages", g_cfg->uzp);
	set_knob_busy("stable_node_chains_prune_millisecs", "2000");
	if (ksm_set("run", "1"))
		fail("run=1");
	settle("knobs: merge with defaults");
	region_verify(z);
	region_verify(ch);
	region_verify(anchor);
	region_free(z);
	region_free(ch);
	return R_PASS;
}

/* A sparse 1 TiB mergeable mapping must not stop ksmd's full scans. */
static void sparse_child(int readyfd, int gofd)
{
	size_t huge = 1ULL << 40, k;
	struct region r = { .name = "sparse" };
	struct tpage pg[16];
	long merged;
	char c, *m;

	m = mmap(NULL, huge, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		note("mmap 1 TiB MAP_NORESERVE: %s", strerror(errno));
		_exit(4);
	}
	if (madvise(m, huge, MADV_MERGEABLE)) {
		note("MADV_MERGEABLE on 1 TiB: %s", strerror(errno));
		_exit(1);
	}
	memset(pg, 0, sizeof(pg));
	r.pg = pg;
	r.n = r.cap = 16;
	r.scratch = aligned_alloc(PS, 2 * PS);
	for (k = 0; k < 16; k++) {
		pg[k].addr = m + (huge / 16) * k + (k * 4099 % 512) * PS;
		region_fill(&r, k, k < 8 ? 1 + k % 2 : (k < 12 ? 0 : uniq_seed()));
	}
	if (write(readyfd, "r", 1) != 1)
		_exit(1);
	/* until the parent is done waiting for scans (EOF) */
	while (read(gofd, &c, 1) > 0)
		;
	region_verify(&r);
	for (k = 0, merged = 0; k < 12; k++) {
		uint64_t e = pagemap_entry(pg[k].addr);

		/*
		 * 6.12's kpageflags sets KPF_KSM on every anonymous page:
		 * only a frame this child shares is a merged one.
		 */
		if ((e & PM_PRESENT) && !(e & PM_EXCLUSIVE) &&
		    (kpageflags(e & PM_PFN_MASK) & (1ULL << KPF_KSM)))
			merged++;
	}
	note("%ld of the 12 duplicate/zero pages in the 1 TiB mapping are KSM pages", merged);
	/* exit without munmap: an exiting mm makes ksmd let go at once */
	child_exit();
}

#ifndef PR_KSM_DOMAIN		/* ours: merge domains */
#define PR_KSM_DOMAIN		0x4b534d44
#define PR_KSM_DOMAIN_PRIVATE	1
#define PR_KSM_DOMAIN_JOIN	2
#endif
#define DOMAIN_KIDS	4
#define DOMAIN_TAG	77

/* PFN of @addr in @pid's address space, 0 if none or unreadable. */
static uint64_t pfn_in(pid_t pid, const void *addr)
{
	char path[64];
	uint64_t e = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / PS) * sizeof(e)) !=
	    sizeof(e))
		e = 0;
	close(fd);
	return (e & PM_PRESENT) ? (e & PM_PFN_MASK) : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * @pfns holds n PFNs of each of DOMAIN_KIDS children, each tagged with its
 * child's index in the low bits: fail if one frame belongs to two.
 */
static void domain_check_frames(uint64_t *pfns, size_t total)
{
	size_t i;

	qsort(pfns, total, sizeof(*pfns), cmp_u64);
	for (i = 1; i < total; i++) {
		if (!(pfns[i] >> 8) || pfns[i] >> 8 != pfns[i - 1] >> 8 ||
		    (pfns[i] & 0xff) == (pfns[i - 1] & 0xff))
			continue;
		fail("domains: pfn %#llx mapped by children %d and %d, each in a private domain",
		     (unsigned long long)(pfns[i] >> 8), (int)(pfns[i - 1] & 0xff),
		     (int)(pfns[i] & 0xff));
		return;
	}
}

/* A domain child: moves between domains while ksmd merges its pages. */
static void domain_child(size_t n, int moves, char **start, int ready_fd,
			 int hold_fd)
{
	struct region *r = region_new("domains", n, 0, 60, 0);
	char byte;
	int it;

	if (!r)
		child_exit();
	for (it = 0; it < moves; it++) {
		/* Every third move joins the shared tag, the others go private. */
		int err = it % 3 == 2 ?
			prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_JOIN, DOMAIN_TAG, 0, 0) :
			prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 0, 0, 0);

		if (err)
			fail("domains: prctl move %d: %s", it, strerror(errno));
		region_churn(r, 20, 0, 60);
		region_verify(r);
		msleep(20);
	}
	if (prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 0, 0, 0))
		fail("domains: final private domain: %s", strerror(errno));
	region_verify(r);
	*start = r->map;
	if (write(ready_fd, "r", 1) != 1)
		fail("domains: ready pipe");
	while (read(hold_fd, &byte, 1) > 0)
		;
	region_verify(r);
	child_exit();
}

/*
 * Merge domains (ours): processes holding the same contents hop between
 * private domains and a shared tag while ksmd merges and they write. No
 * byte may change, and once each sits in a private domain of its own, no
 * frame may be mapped by two of them.
 */
static int phase_domains(void)
{
	size_t n = sz(256), i;
	int ready[2], hold[2], k, got = 0;
	pid_t pid[DOMAIN_KIDS];
	uint64_t *pfns;
	char **start;
	char byte;

	if (access(KSM_DIR "/merge_domain", F_OK))
		return skip("no merge_domain: not our KSM");
	start = mmap(NULL, PS, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pfns = calloc(DOMAIN_KIDS * n, sizeof(*pfns));
	if (start == MAP_FAILED || !pfns || pipe(ready) || pipe(hold)) {
		fail("domains: setup: %s", strerror(errno));
		return R_FAIL;
	}
	for (k = 0; k < DOMAIN_KIDS; k++) {
		pid[k] = start_child();
		if (pid[k] == 0) {
			close(ready[0]);
			close(hold[1]);
			domain_child(n, g_bounded ? 6 : 15, &start[k], ready[1],
				     hold[0]);
		}
	}
	close(ready[1]);
	close(hold[0]);
	while (got < DOMAIN_KIDS && read(ready[0], &byte, 1) == 1)
		got++;
	if (got < DOMAIN_KIDS)
		fail("domains: only %d of %d children got to their last domain",
		     got, DOMAIN_KIDS);
	settle("domains: private at last");
	if (got == DOMAIN_KIDS) {
		for (k = 0; k < DOMAIN_KIDS; k++)
			for (i = 0; i < n; i++)
				pfns[k * n + i] = pfn_in(pid[k], start[k] + i * PS) << 8 | k;
		domain_check_frames(pfns, DOMAIN_KIDS * n);
	}
	close(hold[1]);
	for (k = 0; k < DOMAIN_KIDS; k++)
		reap_ok(pid[k], 300, "domains child");
	close(ready[0]);
	free(pfns);
	munmap(start, PS);
	return g_fail ? R_FAIL : R_PASS;
}

static int phase_sparse(void)
{
	int rfd[2], gfd[2], rc;
	long fs0, fs1;
	double t0, base, bound, took;
	char c;
	pid_t pid;

	/* how long do 2 full scans take without it? */
	t0 = now();
	if (wait_scans(2, "sparse: baseline"))
		return R_FAIL;
	base = now() - t0;
	bound = 10 * base + 20;
	if (bound > (g_bounded ? 60 : 300))
		bound = g_bounded ? 60 : 300;
	if (pipe(rfd))
		return skip("pipe: %s", strerror(errno));
	if (pipe(gfd)) {
		close(rfd[0]);
		close(rfd[1]);
		return skip("pipe: %s", strerror(errno));
	}
	pid = start_child();
	if (pid == 0) {
		close(rfd[0]);
		close(gfd[1]);
		sparse_child(rfd[1], gfd[0]);
	}
	close(rfd[1]);
	close(gfd[0]);
	if (pid < 0) {
		close(rfd[0]);
		close(gfd[1]);
		return skip("fork: %s", strerror(errno));
	}
	if (read(rfd[0], &c, 1) != 1) {
		close(rfd[0]);
		close(gfd[1]);
		rc = reap(pid, 30, "sparse child");
		if (rc == 4)
			return skip("cannot map 1 TiB");
		fail("sparse child failed to set up (rc %d)", rc);
		return R_FAIL;
	}
	close(rfd[0]);
	fs0 = ksm_long("full_scans");
	t0 = now();
	for (;;) {
		fs1 = ksm_long("full_scans");
		sample_counters();
		if (fs1 >= fs0 + 3 || now() - t0 > bound)
			break;
		msleep(20);
	}
	took = now() - t0;
	if (fs1 >= fs0 + 3)
		note("3 full scans with the 1 TiB mapping took %.1fs (2 took %.1fs without)",
		     took, base);
	else
		fail("full_scans advanced only %ld -> %ld in %.0fs while a sparse 1 TiB mergeable mapping exists (2 scans took %.1fs without it): ksmd walks the holes?",
		     fs0, fs1, took, base);
	close(gfd[1]);		/* the child verifies its pages and exits */
	reap_ok(pid, 300, "sparse child");
	return R_PASS;
}

/* ------------------------------------------------------------------ */
/* Driver                                                             */
/* ------------------------------------------------------------------ */

struct phase {
	const char *name;
	int (*fn)(void);
	int pass, fail, skip;
	double secs;
	char why[160];
};

static struct phase phases[] = {
	{ .name = "fork_storm", .fn = phase_fork_storm },
	{ .name = "munmap_mremap", .fn = phase_munmap_mremap },
	{ .name = "mprotect", .fn = phase_mprotect },
	{ .name = "madvise_dontneed_free", .fn = phase_madvise },
	{ .name = "migrate", .fn = phase_migrate },
	{ .name = "compaction", .fn = phase_compaction },
	{ .name = "thp_collapse_split", .fn = phase_thp },
	{ .name = "uffd_wp", .fn = phase_uffd_wp },
	{ .name = "odirect", .fn = phase_odirect },
	{ .name = "swap_memcg", .fn = phase_swap },
	{ .name = "soft_offline", .fn = phase_soft_offline },
	{ .name = "hwpoison", .fn = phase_hwpoison },
	{ .name = "knob_toggle", .fn = phase_knobs },
	{ .name = "merge_domains", .fn = phase_domains },
	{ .name = "sparse_1tib", .fn = phase_sparse },
};
#define NPHASES (sizeof(phases) / sizeof(phases[0]))
#define NTESTS (NPHASES + 4)

static char *g_only;

static bool phase_selected(const char *name)
{
	char *copy, *tok, *save;
	bool sel = false;

	if (!g_only)
		return true;
	copy = strdup(g_only);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!strcmp(tok, name))
			sel = true;
	free(copy);
	return sel;
}

/*
 * Our KSM scans with several ksmd threads when asked: phases take turns
 * with 1, 2, 3 and 4 of them (more threads than the guest's CPUs, too), and
 * every phase meets each count once in four rounds.
 */
static void set_phase_threads(const struct phase *p)
{
	char val[8];
	int err;

	if (access(KSM_DIR "/ksmd_threads", F_OK))
		return;
	snprintf(val, sizeof(val), "%d", 1 + (int)((p - phases) + g_round) % 4);
	err = ksm_set("ksmd_threads", val);
	if (err)
		fail("ksmd_threads=%s: %s", val, strerror(-err));
	printf("# [%s] ksmd_threads=%s\n", p->name, val);
}

static void run_phase(struct phase *p)
{
	long c0 = sh->corrupt_pages[0];
	double t0 = now();
	int rc;

	g_phase = p->name;
	g_fail = false;
	g_skip[0] = '\0';
	sh->cur_test = (int)(p - phases) + 1;
	reseed((uint64_t)g_round * 1000 + (uint64_t)(p - phases));
	printf("# [%s] round %d start: pages_shared=%ld pages_sharing=%ld full_scans=%ld\n",
	       p->name, g_round, ksm_long("pages_shared"), ksm_long("pages_sharing"),
	       ksm_long("full_scans"));
	fflush(stdout);
	set_phase_threads(p);
	rc = p->fn();
	if (!ksm_running()) {
		fail("ksmd left stopped (run=%ld), restarting it", ksm_long("run"));
		ksm_set("run", "1");
	}
	region_verify(anchor);
	if (sh->corrupt_pages[0] != c0)
		g_fail = true;
	if (kmsg_check())
		fail("kernel bug reported in the kernel log during this phase (see above and the console)");
	check_counters_after(p->name);
	if (g_fail)
		rc = R_FAIL;
	sh->cur_test = 0;
	p->secs += now() - t0;
	if (rc == R_FAIL)
		p->fail++;
	else if (rc == R_SKIP) {
		p->skip++;
		snprintf(p->why, sizeof(p->why), "%s", g_skip);
	} else
		p->pass++;
	printf("# [%s] round %d: %s%s%s in %.1fs (pages_sharing=%ld, max so far %ld, ksm_zero_pages=%ld)\n",
	       p->name, g_round, rc == R_FAIL ? "FAIL" : rc == R_SKIP ? "SKIP" : "ok",
	       rc == R_SKIP ? ": " : "", rc == R_SKIP ? g_skip : "", now() - t0,
	       ksm_long("pages_sharing"), sh->max_sharing, ksm_long("ksm_zero_pages"));
	fflush(stdout);
	g_phase = "main";
}

static int count_nodes(void)
{
	char buf[256], *p;
	int n = 0;

	/* "0-1" or "0,2-3" */
	if (read_file("/sys/devices/system/node/has_memory", buf, sizeof(buf)) <= 0 &&
	    read_file("/sys/devices/system/node/online", buf, sizeof(buf)) <= 0)
		return 1;
	for (p = strtok(buf, ",\n"); p; p = strtok(NULL, ",\n")) {
		int a, b;

		if (sscanf(p, "%d-%d", &a, &b) == 2)
			n += b - a + 1;
		else
			n++;
	}
	/* the phases use nodes 0 and 1 */
	if (n >= 2 && (access("/sys/devices/system/node/node0", F_OK) ||
		       access("/sys/devices/system/node/node1", F_OK)))
		n = 1;
	return n ? n : 1;
}

static int setup_knobs(void)
{
	int err = 0;

	ksm_set("run", "2");
	if (access(KSM_DIR "/advisor_mode", F_OK) == 0)
		err |= ksm_set("advisor_mode", "none");
	err |= ksm_set("pages_to_scan", "5000");
	err |= ksm_set("sleep_millisecs", "0");
	err |= ksm_set("max_page_sharing", "256");
	err |= ksm_set("use_zero_pages", "0");
	if (access(KSM_DIR "/smart_scan", F_OK) == 0)
		err |= ksm_set("smart_scan", "1");
	if (access(KSM_DIR "/merge_across_nodes", F_OK) == 0)
		err |= ksm_set("merge_across_nodes", "1");
	err |= ksm_set("run", "1");
	return err;
}

/* One TAP line for a phase, over all its rounds; returns 1 if it failed. */
static int report_phase(const struct phase *p, int t)
{
	sh->tap_printed++;
	if (p->fail) {
		printf("# %s: %d of %d rounds failed (%.1fs)\n", p->name, p->fail,
		       p->pass + p->fail + p->skip, p->secs);
		printf("not ok %d %s\n", t, p->name);
		return 1;
	}
	if (p->pass) {
		printf("# %s: %d round(s) ok%s (%.1fs)\n", p->name, p->pass,
		       p->skip ? ", some skipped" : "", p->secs);
		printf("ok %d %s\n", t, p->name);
	} else {
		printf("ok %d %s # SKIP %s\n", t, p->name, p->skip ? p->why : "not selected");
	}
	return 0;
}

static int worker(double duration)
{
	double start = now(), end = start + duration;
	int churn = 2, i, failed = 0, t = 0;
	long churn_bad;
	size_t k;

	reseed((uint64_t)getpid());
	kmsg_open();
	if (setup_knobs()) {
		printf("Bail out! cannot set the KSM knobs (sleep_millisecs=0, pages_to_scan=5000, run=1)\n");
		return 1;
	}
	g_phase = "main";
	churn_start(churn);
	anchor = region_new("anchor", sz(512), 10, 60, 0);
	if (!anchor) {
		printf("Bail out! cannot map the anchor region\n");
		return 1;
	}
	do {
		g_round++;
		if (g_round > 1) {
			g_phase = "main";
			g_fail = false;
			apply_round_config(g_round);
		}
		for (k = 0; k < NPHASES; k++) {
			if (!g_bounded && g_round > 1 && now() > end)
				break;
			if (phase_selected(phases[k].name))
				run_phase(&phases[k]);
			/* one round: report each phase as soon as it is done */
			if (g_bounded)
				failed += report_phase(&phases[k], (int)k + 1);
		}
		printf("# round %d done after %.0fs; corrupt pages: %ld (phases) %ld (churn); churn loops %ld\n",
		       g_round, now() - start, sh->corrupt_pages[0], sh->corrupt_pages[1],
		       sh->churn_loops);
		if (sh->corrupt_pages[0] || sh->corrupt_pages[1]) {
			printf("# corruption seen: stopping after this round\n");
			break;
		}
	} while (!g_bounded && now() < end);

	/* stop the background processes; they verify a last time */
	g_phase = "churn";
	g_fail = false;
	__atomic_store_n(&sh->stop_churn, 1, __ATOMIC_RELAXED);
	for (i = 0; i < g_nchurn; i++)
		reap_ok(g_churn[i], 300, "churn process");
	churn_bad = sh->corrupt_pages[1];
	if (kmsg_check())
		fail("kernel bug reported in the kernel log while stopping");
	g_phase = "main";
	region_verify(anchor);
	sample_counters();

	/* report */
	t = NPHASES;
	for (k = 0; k < NPHASES && !g_bounded; k++)
		failed += report_phase(&phases[k], (int)k + 1);
	t++;
	printf("# background churn: %d processes, %ld verify loops, %ld corrupt pages\n",
	       g_nchurn, sh->churn_loops, churn_bad);
	if (g_fail || churn_bad || sh->churn_loops == 0) {
		printf("not ok %d background_churn\n", t);
		failed++;
	} else {
		printf("ok %d background_churn\n", t);
	}
	t++;
	printf("# max pages_shared %ld, pages_sharing %ld, ksm_zero_pages %ld\n",
	       sh->max_shared, sh->max_sharing, sh->max_zero);
	if (sh->max_sharing > 0) {
		printf("ok %d merging_happened\n", t);
	} else {
		printf("not ok %d merging_happened\n", t);
		failed++;
	}
	t++;
	printf("# corrupt: %ld pages / %ld bytes in the phases, %ld pages / %ld bytes in the background\n",
	       sh->corrupt_pages[0], sh->corrupt_bytes[0], sh->corrupt_pages[1],
	       sh->corrupt_bytes[1]);
	if (sh->corrupt_pages[0] || sh->corrupt_pages[1]) {
		printf("not ok %d data_integrity\n", t);
		failed++;
	} else {
		printf("ok %d data_integrity\n", t);
	}
	t++;
	check_counters_after("end");
	printf("# lowest ksm_zero_pages after a phase: %ld; counters left after run=2: %d time(s)%s%s\n",
	       sh->min_zero, sh->unmerge_bad, sh->unmerge_bad ? ", first: " : "",
	       sh->unmerge_bad ? sh->unmerge_msg : "");
	if (sh->min_zero < 0) {
		printf("# ksm_zero_pages went negative (%ld), first after phase %s\n",
		       sh->min_zero, sh->neg_phase);
		printf("not ok %d ksm_counters\n", t);
		failed++;
	} else {
		printf("ok %d ksm_counters\n", t);
	}
	printf("# %d rounds in %.0fs; %d of %d tests failed\n", g_round, now() - start,
	       failed, (int)NTESTS);
	region_free(anchor);
	cleanup_all();
	fflush(stdout);
	return failed ? 1 : 0;
}

static volatile sig_atomic_t g_term;

static void on_term(int sig)
{
	g_term = sig;
}

/* Print state, wchan and kernel stack of every process in group @pgid. */
static void dump_stuck(pid_t pgid)
{
	char path[64], buf[4096], *p;
	int pid, shown = 0;

	for (pid = 1; pid < 65536 && shown < 16; pid++) {
		char state, comm[64];
		int pgrp;

		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (read_file(path, buf, sizeof(buf)) <= 0)
			continue;
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 2, "%c %*d %d", &state, &pgrp) != 2)
			continue;
		if (pgrp != pgid && !strstr(buf, "(ksmd)"))
			continue;
		snprintf(comm, sizeof(comm), "%.*s", (int)(p - strchr(buf, '(') - 1),
			 strchr(buf, '(') + 1);
		snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
		if (read_file(path, buf, sizeof(buf)) <= 0)
			buf[0] = '\0';
		printf("# guardian: pid %d (%s) state %c wchan %s\n", pid, comm, state, buf);
		snprintf(path, sizeof(path), "/proc/%d/stack", pid);
		if (state != 'Z' && read_file(path, buf, sizeof(buf)) > 0) {
			char *save, *l;

			for (l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
				printf("#   %s\n", l);
		}
		shown++;
	}
}

/*
 * Copy the output of child @pid (its stdout/stderr is the pipe @fd) to
 * our stdout until it has exited and the pipe is drained.  At @deadline
 * or on SIGTERM/SIGINT/SIGHUP, show what its process group is stuck on
 * and kill the group.  A process that is stuck in the kernel may never
 * die: give up on it after a while, so that whoever waits for our output
 * (check.sh's tee) is not blocked by it.  Returns true if the child was
 * reaped, with its wait status in *status.
 */
static bool relay(pid_t pid, int fd, double deadline, double grace, const char *what,
		  int *status)
{
	static char buf[65536];
	double killed_at = 0, reaped_at = 0;
	bool reaped = false, eof = false;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (!eof && poll(&pfd, 1, 100) > 0) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n > 0) {
				if (write(STDOUT_FILENO, buf, n) < 0)
					eof = true;
			} else if (n == 0) {
				eof = true;
			}
		} else if (eof) {
			msleep(100);
		}
		if (!reaped && waitpid(pid, status, WNOHANG) == pid) {
			reaped = true;
			reaped_at = now();
		}
		if (reaped && (eof || now() - reaped_at > 5))
			return true;
		if (!killed_at && (g_term || now() > deadline)) {
			if (g_term)
				printf("# guardian: got signal %d, stopping the %s\n", (int)g_term, what);
			else
				printf("# guardian: the %s is still running after its time limit, stopping it\n",
				       what);
			dump_stuck(pid);
			fflush(stdout);
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			killed_at = now();
		}
		if (killed_at && !reaped && now() - killed_at > grace) {
			printf("# guardian: %s (pid %d) did not die within %.0fs of SIGKILL: stuck in the kernel\n",
			       what, pid, grace);
			dump_stuck(pid);
			fflush(stdout);
			return false;
		}
	}
}

/* Fork @fn with its output relayed through a pipe, as its own group. */
static pid_t spawn_relayed(int (*fn)(double), double arg, int *fd)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		close(p[0]);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[1]);
		_exit(fn(arg));
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	setpgid(pid, pid);
	*fd = p[0];
	return pid;
}

static int cleanup_main(double unused)
{
	(void)unused;
	cleanup_all();
	fflush(stdout);
	return 0;
}

static void usage(const char *prog)
{
	printf("usage: %s [-d SECONDS] [-p PHASE[,PHASE...]] [-t SCAN_TIMEOUT] [-v] [-l]\n", prog);
}

int main(int argc, char **argv)
{
	double duration = 0;
	struct sigaction sa;
	struct utsname u;
	char buf[128];
	int opt, st = 0, cst = 0, rc, fd = -1;
	double deadline, end;
	bool reaped;
	size_t k;
	pid_t pid, cpid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "d:p:t:vlh")) != -1) {
		switch (opt) {
		case 'd':
			duration = atof(optarg);
			if (duration > 0) {
				g_bounded = false;
				g_scale = 2;
			}
			break;
		case 'p':
			g_only = optarg;
			break;
		case 't':
			g_scan_timeout = atof(optarg);
			break;
		case 'v':
			g_verbose = true;
			break;
		case 'l':
			for (k = 0; k < NPHASES; k++)
				printf("%s\n", phases[k].name);
			return 0;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	PS = (size_t)sysconf(_SC_PAGESIZE);
	printf("TAP version 13\n");
	if (access(KSM_DIR, F_OK)) {
		printf("1..0 # SKIP " KSM_DIR " not present (CONFIG_KSM off?)\n");
		return 4;
	}
	if (geteuid()) {
		printf("1..0 # SKIP must run as root\n");
		return 4;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	dup_cache = mmap(NULL, (NDUP + 1) * PS, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || dup_cache == MAP_FAILED) {
		printf("Bail out! mmap: %s\n", strerror(errno));
		return 1;
	}
	for (k = 0; k <= NDUP; k++)
		gen_page(k, dup_cache + k * PS);
	for (k = 0; k < MAX_ZRAM; k++)
		sh->zram_id[k] = -1;
	g_nodes = count_nodes();
	uname(&u);
	printf("# ksm_stress_test: kernel %s, %s profile%s, %d NUMA node(s), scan wait bound %.0fs\n",
	       u.release, g_bounded ? "bounded" : "duration",
	       g_bounded ? "" : " (rounds until the time is up)", g_nodes, g_scan_timeout);
	if (!g_bounded)
		printf("# duration %.0fs\n", duration);
	if (read_file(THP_DIR "/enabled", buf, sizeof(buf)) > 0)
		printf("# THP enabled: %s", buf);
	printf("1..%d\n", (int)NTESTS);
	save_knobs();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* the bounded profile must end before check.sh's 300s timeout */
	deadline = now() + (g_bounded ? 280 : duration * 1.25 + 480);
	pid = spawn_relayed(worker, duration, &fd);
	if (pid < 0) {
		printf("Bail out! fork: %s\n", strerror(errno));
		return 1;
	}
	reaped = relay(pid, fd, deadline, 60, "test", &st);
	close(fd);
	/* orphans of the test were reparented to us: collect them */
	kill(-pid, SIGKILL);
	for (end = now() + 10; now() < end;) {
		pid_t r = waitpid(-1, NULL, WNOHANG);

		if (r < 0 && errno == ECHILD)
			break;
		if (r <= 0)
			msleep(10);
	}
	/* undo what the test left behind; bounded, sysfs may block too */
	g_term = 0;
	cpid = spawn_relayed(cleanup_main, 0, &fd);
	if (cpid > 0) {
		relay(cpid, fd, now() + 60, 20, "cleanup", &cst);
		close(fd);
	}
	/* name the phase that was running when the test died */
	if ((!reaped || !WIFEXITED(st)) && sh->cur_test > 0 && sh->cur_test <= (int)NPHASES &&
	    (!g_bounded || sh->tap_printed < sh->cur_test))
		printf("not ok %d %s\n", sh->cur_test, phases[sh->cur_test - 1].name);
	if (!reaped) {
		printf("Bail out! the test process is stuck in the kernel\n");
		rc = 1;
	} else if (WIFEXITED(st)) {
		rc = WEXITSTATUS(st);
	} else {
		printf("# test process killed by signal %d\n", WTERMSIG(st));
		printf("Bail out! test process killed by signal %d\n", WTERMSIG(st));
		rc = 1;
	}
	fflush(stdout);
	return rc;
}
