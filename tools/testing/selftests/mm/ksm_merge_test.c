// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
/*
 * What KSM merges, and exactly how that shows up in the global counters
 * (/sys/kernel/mm/ksm), the per-process ones (/proc/<pid>/ksm_stat,
 * ksm_merging_pages, smaps "KSM:"), the page tables (/proc/<pid>/pagemap:
 * frame numbers and the mapped-once bit) and /proc/vmstat cow_ksm, for
 * Linux 6.12 semantics.
 *
 * Every test starts from a stopped KSM with everything unmerged (run=2,
 * which also resets full_scans and puts the scan cursor at the list head),
 * lets ksmd run for a counted number of complete passes, stops it with
 * run=0 (so the counters are frozen) and then checks exact values.
 */
/*
 * The 6.12 kselftest harness itself trips these with -Wextra (unused
 * "variant"/"ucontext" parameters, setjmp around fork() in TEST_F).
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"

#include "ksm_test_util.h"
#include "../kselftest_harness.h"
#include "ksm_test_harness.h"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#define MAX_REGIONS	8
#define MAX_PAGES	64


#ifndef MPOL_BIND
#define MPOL_BIND	2
#endif

struct region {
	void *addr;
	size_t len;	/* bytes */
	bool guarded;	/* from ksm_map_flags(): unmap guards too */
};

FIXTURE(ksm_merge) {
	struct ksm_saved_knobs saved;
	struct region regions[MAX_REGIONS];
	int nregions;
	pid_t child;
	size_t ps;
};

FIXTURE_SETUP(ksm_merge)
{
	const char *why = ksm_skip_reason();

	if (why)
		SKIP(return, "%s", why);
	self->ps = ksm_page_size();
	self->nregions = 0;
	self->child = 0;
	ksm_save_knobs(&self->saved);
	/* Defaults the exact counts below depend on. */
	ASSERT_EQ(0, ksm_counting_setup(true));
}

FIXTURE_TEARDOWN(ksm_merge)
{
	int i;

	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	for (i = 0; i < self->nregions; i++) {
		if (self->regions[i].guarded)
			ksm_unmap(self->regions[i].addr,
				  self->regions[i].len / self->ps);
		else
			munmap(self->regions[i].addr, self->regions[i].len);
	}
	EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
}

/* A fresh private (or shared) anonymous region of @n pages, not yet touched. */
static char *new_region(struct __test_metadata *_metadata,
			FIXTURE_DATA(ksm_merge) *self, size_t n, int flags)
{
	char *p;

	ASSERT_GT(MAX_REGIONS, self->nregions);
	p = ksm_map_flags(n, flags);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap %zu pages: %s", n, strerror(errno));
	self->regions[self->nregions].addr = p;
	self->regions[self->nregions].len = n * self->ps;
	self->regions[self->nregions].guarded = true;
	self->nregions++;
	return p;
}

static void mergeable(struct __test_metadata *_metadata, void *p, size_t len)
{
	ASSERT_EQ(0, madvise(p, len, MADV_MERGEABLE))
		TH_LOG("MADV_MERGEABLE: %s", strerror(errno));
}

static uint64_t pfn_at(struct __test_metadata *_metadata, pid_t pid, void *addr)
{
	uint64_t pfn = 0;
	int err = ksm_pfn_of(pid, addr, &pfn);

	ASSERT_EQ(0, err) TH_LOG("pagemap of %p: %s", addr, strerror(-err));
	return pfn;
}

/* 1: mapped once, 0: mapped several times (pagemap "exclusive" bit). */
static int exclusive(struct __test_metadata *_metadata, void *addr)
{
	int r = ksm_page_exclusive(addr);

	ASSERT_LE(0, r) TH_LOG("pagemap of %p: %s", addr, strerror(-r));
	return r;
}

/* All @n pages map one and the same (shared) page frame; returns it. */
static uint64_t expect_one_ksm_page(struct __test_metadata *_metadata,
				    char *p, size_t n, size_t stride)
{
	uint64_t first = pfn_at(_metadata, 0, p);
	size_t i;

	for (i = 0; i < n; i++) {
		char *page = p + i * stride;

		EXPECT_EQ(first, pfn_at(_metadata, 0, page))
			TH_LOG("page %zu not mapped to the shared KSM page", i);
		EXPECT_EQ(0, exclusive(_metadata, page))
			TH_LOG("page %zu mapped only once", i);
	}
	return first;
}

/* All @n pages have a frame of their own, mapped only here. */
static void expect_private_pages(struct __test_metadata *_metadata,
				 char *p, size_t n)
{
	uint64_t pfns[MAX_PAGES];
	size_t i, j, ps = ksm_page_size();

	ASSERT_GE((size_t)MAX_PAGES, n);
	for (i = 0; i < n; i++) {
		pfns[i] = pfn_at(_metadata, 0, p + i * ps);
		EXPECT_EQ(1, exclusive(_metadata, p + i * ps))
			TH_LOG("page %zu mapped more than once", i);
		for (j = 0; j < i; j++)
			EXPECT_NE(pfns[j], pfns[i])
				TH_LOG("pages %zu and %zu share a frame", j, i);
	}
}

static void fill_same(char *p, size_t n, uint64_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		ksm_fill_page(p + i * ksm_page_size(), seed);
}

static void expect_content(struct __test_metadata *_metadata, char *p,
			   size_t n, uint64_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		EXPECT_TRUE(ksm_page_matches(p + i * ksm_page_size(), seed))
			TH_LOG("page %zu content changed", i);
}

/*
 * A new region of @n pages of @seed's content, merged by two passes into
 * one KSM page; its frame goes to @kpfn unless NULL.
 */
static char *merged_region(struct __test_metadata *_metadata,
			   FIXTURE_DATA(ksm_merge) *self, size_t n,
			   uint64_t seed, uint64_t *kpfn)
{
	char *p = new_region(_metadata, self, n, MAP_PRIVATE);

	fill_same(p, n, seed);
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	if (kpfn)
		*kpfn = expect_one_ksm_page(_metadata, p, n, self->ps);
	return p;
}

/*
 * ksm_process_profit = (merging + zero) * PAGE_SIZE - rmap_items * S and
 * general_profit = (pages_sharing + ksm_zero_pages) * PAGE_SIZE -
 * rmap_items * S, where S is the engine's (private) rmap item size.  With
 * this process the only KSM user, both use the same rmap_items: derive S
 * from one and check the other.
 */
static void expect_profits(struct __test_metadata *_metadata,
			   const struct ksm_proc_stat *st)
{
	long ps = (long)ksm_page_size(), gross, item, general;

	ASSERT_EQ(0, ksm_read_long("general_profit", &general));
	gross = (st->merging_pages + st->zero_pages) * ps;
	if (!st->rmap_items) {
		EXPECT_EQ(gross, st->process_profit);
		item = 0;
	} else {
		ASSERT_EQ(0, (gross - st->process_profit) % st->rmap_items)
			TH_LOG("profit %ld not gross %ld minus rmap_items %ld * size",
			       st->process_profit, gross, st->rmap_items);
		item = (gross - st->process_profit) / st->rmap_items;
		EXPECT_LT(0L, item);
		EXPECT_GT(ps, item);
	}
	EXPECT_EQ(((long)ksm_get("pages_sharing") + (long)ksm_get("ksm_zero_pages")) * ps -
		  st->rmap_items * item, general)
		TH_LOG("general_profit inconsistent with rmap item size %ld", item);
}

/*
 * N identical pages: one KSM page (pages_shared 1) mapped N times
 * (pages_sharing N-1), and every observer agrees.  Stopping ksmd (run=0)
 * leaves them merged.
 */
TEST_F_TIMEOUT(ksm_merge, identical_pages, 600)
{
	const size_t n = 32;
	uint64_t seed = ksm_unique_seed();
	struct ksm_proc_stat st;
	char *p;

	p = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(p, n, seed);
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);

	KSM_EXPECT("run", 0);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	KSM_EXPECT("pages_unshared", 0);
	KSM_EXPECT("pages_volatile", 0);
	KSM_EXPECT("stable_node_chains", 0);
	KSM_EXPECT("stable_node_dups", 0);
	KSM_EXPECT("ksm_zero_pages", 0);

	EXPECT_EQ((long)n, ksm_read_merging_pages(0));
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ((long)n, st.rmap_items);
	EXPECT_EQ(0L, st.zero_pages);
	EXPECT_EQ((long)n, st.merging_pages);
	expect_profits(_metadata, &st);

	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(0, p));
	EXPECT_EQ(1, ksm_vma_mergeable(0, p));
	expect_one_ksm_page(_metadata, p, n, self->ps);
	expect_content(_metadata, p, n, seed);
}

/* Two interleaved contents: two KSM pages. */
TEST_F_TIMEOUT(ksm_merge, two_contents, 600)
{
	const size_t n = 32;
	uint64_t a = ksm_unique_seed(), b = ksm_unique_seed(), pa, pb;
	size_t i;
	char *p;

	p = new_region(_metadata, self, n, MAP_PRIVATE);
	for (i = 0; i < n; i++)
		ksm_fill_page(p + i * self->ps, i % 2 ? b : a);
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);

	KSM_EXPECT("pages_shared", 2);
	KSM_EXPECT("pages_sharing", n - 2);
	KSM_EXPECT("pages_unshared", 0);
	KSM_EXPECT("pages_volatile", 0);
	EXPECT_EQ((long)n, ksm_read_merging_pages(0));
	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(0, p));

	pa = expect_one_ksm_page(_metadata, p, n / 2, 2 * self->ps);
	pb = expect_one_ksm_page(_metadata, p + self->ps, n / 2, 2 * self->ps);
	EXPECT_NE(pa, pb);
	for (i = 0; i < n; i++)
		EXPECT_TRUE(ksm_page_matches(p + i * self->ps, i % 2 ? b : a));
}

/*
 * Unique pages stay unmerged and sit in the unstable tree: pages_unshared.
 * (smart_scan off so that none of them is skipped out of the tree.)
 */
TEST_F_TIMEOUT(ksm_merge, unique_pages_unshared, 600)
{
	const size_t n_same = 8, n_unique = 8;
	uint64_t same = ksm_unique_seed(), useeds[8];
	struct ksm_proc_stat st;
	char *s, *u;
	size_t i;

	ASSERT_EQ(0, ksm_write("smart_scan", "0"));
	s = new_region(_metadata, self, n_same, MAP_PRIVATE);
	u = new_region(_metadata, self, n_unique, MAP_PRIVATE);
	fill_same(s, n_same, same);
	for (i = 0; i < n_unique; i++) {
		useeds[i] = ksm_unique_seed();
		ksm_fill_page(u + i * self->ps, useeds[i]);
	}
	mergeable(_metadata, s, n_same * self->ps);
	mergeable(_metadata, u, n_unique * self->ps);
	KSM_RUN_PASSES(2);

	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n_same - 1);
	KSM_EXPECT("pages_unshared", n_unique);
	KSM_EXPECT("pages_volatile", 0);
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ((long)(n_same + n_unique), st.rmap_items);
	EXPECT_EQ((long)n_same, st.merging_pages);
	expect_profits(_metadata, &st);
	EXPECT_EQ((long)(n_same * self->ps / 1024), ksm_smaps_ksm_kb(0, s));
	EXPECT_EQ(0L, ksm_smaps_ksm_kb(0, u));
	expect_private_pages(_metadata, u, n_unique);
	for (i = 0; i < n_unique; i++)
		EXPECT_TRUE(ksm_page_matches(u + i * self->ps, useeds[i]));

	/* More passes change nothing for pages that cannot merge. */
	KSM_RUN_PASSES(3);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n_same - 1);
	KSM_EXPECT("pages_unshared", n_unique);
	KSM_EXPECT("pages_volatile", 0);
}

/*
 * smart_scan=0 never skips; smart_scan=1 starts skipping pages that
 * repeatedly failed to merge (6.12: from their 5th visit on).
 */
TEST_F_TIMEOUT(ksm_merge, smart_scan_skips_unmergeable, 600)
{
	const size_t n = 8;
	unsigned long skipped;
	char *u;
	size_t i;

	u = new_region(_metadata, self, n, MAP_PRIVATE);
	for (i = 0; i < n; i++)
		ksm_fill_page(u + i * self->ps, ksm_unique_seed());
	mergeable(_metadata, u, n * self->ps);

	ASSERT_EQ(0, ksm_write("smart_scan", "0"));
	skipped = ksm_get("pages_skipped");
	KSM_RUN_PASSES(8);
	EXPECT_EQ(skipped, ksm_get("pages_skipped"))
		TH_LOG("pages were skipped with smart_scan=0");
	KSM_EXPECT("pages_unshared", n);

	/* Start over so page ages restart from zero. */
	ASSERT_EQ(0, ksm_reset());
	ASSERT_EQ(0, ksm_write("smart_scan", "1"));
	skipped = ksm_get("pages_skipped");
	KSM_RUN_PASSES(8);
	EXPECT_LT(skipped, ksm_get("pages_skipped"))
		TH_LOG("smart_scan=1 skipped nothing in 8 passes");
	KSM_EXPECT("pages_shared", 0);
	KSM_EXPECT("pages_sharing", 0);
}

/*
 * Two processes with independent but identical memory share one KSM page;
 * each process counts its own mappings.  When one exits, ksmd drops its
 * share on the next pass.
 */
TEST_F_TIMEOUT(ksm_merge, across_processes, 600)
{
	const size_t n = 16;
	uint64_t seed = ksm_unique_seed(), kpfn;
	int up[2], down[2], status;
	struct ksm_proc_stat st;
	void *child_addr = NULL;
	char *p;
	size_t i;

	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		char *c = ksm_map(n), cmd;

		close(up[0]);
		close(down[1]);
		if (c == MAP_FAILED)
			_exit(1);
		fill_same(c, n, seed);
		if (madvise(c, n * ksm_page_size(), MADV_MERGEABLE))
			_exit(2);
		if (write(up[1], &c, sizeof(c)) != sizeof(c))
			_exit(3);
		/* Stay alive until told (or until the parent is gone). */
		if (read(down[0], &cmd, 1) != 1)
			_exit(4);
		if (!ksm_pages_match(c, n, seed))
			_exit(5);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	ASSERT_EQ((ssize_t)sizeof(child_addr), read(up[0], &child_addr, sizeof(child_addr)));

	p = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(p, n, seed);
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);

	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", 2 * n - 1);
	KSM_EXPECT("pages_unshared", 0);
	EXPECT_EQ((long)n, ksm_read_merging_pages(0));
	EXPECT_EQ((long)n, ksm_read_merging_pages(self->child));
	st = ksm_expect_proc_stat(_metadata, self->child);
	EXPECT_EQ((long)n, st.rmap_items);
	EXPECT_EQ((long)n, st.merging_pages);
	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(self->child, child_addr));

	kpfn = expect_one_ksm_page(_metadata, p, n, self->ps);
	for (i = 0; i < n; i++)
		EXPECT_EQ(kpfn, pfn_at(_metadata, self->child,
				       (char *)child_addr + i * self->ps));

	/* Let the child verify its data and exit. */
	ASSERT_EQ(1, write(down[1], "q", 1));
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child saw wrong content");

	/* Our mappings are untouched by the child's exit. */
	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(0, p));
	KSM_RUN_PASSES(3);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	EXPECT_EQ((long)n, ksm_read_merging_pages(0));
	expect_content(_metadata, p, n, seed);
	close(up[0]);
	close(down[1]);
}

/*
 * Writing to a merged page copies exactly that page (cow_ksm +1); the
 * other mappings keep the KSM page.  ksmd then accounts the change.
 */
TEST_F_TIMEOUT(ksm_merge, cow_breaks_one_page, 600)
{
	const size_t n = 16, victim = 5;
	uint64_t seed = ksm_unique_seed(), kpfn;
	unsigned long cow_before, cow_after;
	struct ksm_proc_stat st;
	unsigned char old;
	char *p, *v;
	size_t i;

	ASSERT_EQ(0, ksm_write("smart_scan", "0"));
	p = merged_region(_metadata, self, n, seed, &kpfn);

	ASSERT_EQ(0, ksm_vmstat("cow_ksm", &cow_before))
		TH_LOG("no cow_ksm in /proc/vmstat");
	v = p + victim * self->ps;
	old = (unsigned char)v[100];
	v[100] = (char)(old ^ 0x5a);
	ASSERT_EQ(0, ksm_vmstat("cow_ksm", &cow_after));
	EXPECT_EQ(cow_before + 1, cow_after);

	/* Only the written byte of only the written page differs. */
	for (i = 0; i < n; i++)
		if (i != victim)
			EXPECT_TRUE(ksm_page_matches(p + i * self->ps, seed));
	v[100] = (char)old;
	EXPECT_TRUE(ksm_page_matches(v, seed));
	v[100] = (char)(old ^ 0x5a);

	EXPECT_NE(kpfn, pfn_at(_metadata, 0, v));
	EXPECT_EQ(1, exclusive(_metadata, v));
	for (i = 0; i < n; i++)
		if (i != victim)
			EXPECT_EQ(kpfn, pfn_at(_metadata, 0, p + i * self->ps));
	EXPECT_EQ((long)((n - 1) * self->ps / 1024), ksm_smaps_ksm_kb(0, p));

	/* ksmd notices on its next visit; the new content is unique. */
	KSM_RUN_PASSES(3);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 2);
	KSM_EXPECT("pages_unshared", 1);
	KSM_EXPECT("pages_volatile", 0);
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ((long)n, st.rmap_items);
	EXPECT_EQ((long)(n - 1), st.merging_pages);
	expect_profits(_metadata, &st);
	ASSERT_EQ(0, ksm_vmstat("cow_ksm", &cow_before));
	EXPECT_EQ(cow_after, cow_before) TH_LOG("cow_ksm moved without writes");

	/* Restoring the old content lets the page merge back. */
	v[100] = (char)old;
	KSM_RUN_PASSES(3);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	KSM_EXPECT("pages_unshared", 0);
	EXPECT_EQ((long)n, ksm_read_merging_pages(0));
	expect_one_ksm_page(_metadata, p, n, self->ps);
	EXPECT_EQ(kpfn, pfn_at(_metadata, 0, v));
	expect_content(_metadata, p, n, seed);
}

/* A write from another thread, which a userfaultfd may hold up. */
struct blocked_write {
	char *addr;
	volatile int done;
};

static void *write_byte(void *arg)
{
	struct blocked_write *w = arg;

	w->addr[100] ^= 0x5a;
	w->done = 1;
	return NULL;
}

/*
 * Wait for @fd's next message while @w's write is pending; false if the
 * write went through first or nothing came within a minute.
 */
static bool uffd_next_msg(int fd, struct blocked_write *w,
			  struct uffd_msg *msg)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	double t0 = ksm_now();

	while (ksm_now() - t0 < 60) {
		if (poll(&pfd, 1, 100) == 1)
			return read(fd, msg, sizeof(*msg)) == sizeof(*msg);
		if (w->done)
			return false;
	}
	return false;
}

/*
 * Pages write-protected with userfaultfd stay protected once merged: a
 * write to any of them, the page promoted to KSM page and the pages that
 * were replaced by it alike, reaches the monitor as a write-protect fault
 * and completes, on a private copy, only once the monitor lifts the
 * protection of that page.
 */
TEST_F_TIMEOUT(ksm_merge, uffd_wp_kept_by_merge, 600)
{
	const size_t n = 8;
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { 0 };
	uint64_t seed = ksm_unique_seed();
	struct blocked_write w;
	struct uffd_msg msg;
	pthread_t thread;
	char *p;
	size_t i;
	int fd;

	p = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(p, n, seed);
	mergeable(_metadata, p, n * self->ps);
	fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		SKIP(return, "userfaultfd: %s", strerror(errno));
	reg.range.start = (uintptr_t)p;
	reg.range.len = n * self->ps;
	if (ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg)) {
		close(fd);
		SKIP(return, "no userfaultfd write-protection: %s", strerror(errno));
	}
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	ASSERT_EQ(0, ioctl(fd, UFFDIO_WRITEPROTECT, &wp)) TH_LOG("%s", strerror(errno));

	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	expect_one_ksm_page(_metadata, p, n, self->ps);

	for (i = 0; i < n; i++) {
		w.addr = p + i * self->ps;
		w.done = 0;
		ASSERT_EQ(0, pthread_create(&thread, NULL, write_byte, &w));
		if (!uffd_next_msg(fd, &w, &msg)) {
			pthread_join(thread, NULL);
			close(fd);
			ASSERT_TRUE(false)
				TH_LOG("page %zu: the write %s", i, w.done ?
				       "went through without a write-protect fault" :
				       "neither faulted nor finished in 60 s");
		}
		EXPECT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
		EXPECT_TRUE(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP);
		EXPECT_EQ((uintptr_t)w.addr,
			  msg.arg.pagefault.address & ~(uint64_t)(self->ps - 1));
		EXPECT_EQ(0, w.done);
		wp.range.start = (uintptr_t)w.addr;
		wp.range.len = self->ps;
		wp.mode = 0;
		ASSERT_EQ(0, ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
			TH_LOG("%s", strerror(errno));
		ASSERT_EQ(0, pthread_join(thread, NULL));
		EXPECT_EQ(1, w.done);
		EXPECT_EQ(1, exclusive(_metadata, w.addr))
			TH_LOG("page %zu written without a copy", i);
		w.addr[100] ^= 0x5a;
		EXPECT_TRUE(ksm_page_matches(w.addr, seed));
	}
	close(fd);
}

/*
 * MADV_UNMERGEABLE on part of an area splits it: only the advised pages
 * get private copies, the rest stay on the KSM page.
 */
TEST_F_TIMEOUT(ksm_merge, partial_unmerge, 600)
{
	const size_t n = 16, cut = 4;
	uint64_t seed = ksm_unique_seed(), kpfn;
	char *p;

	p = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(p, n, seed);
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);
	kpfn = expect_one_ksm_page(_metadata, p, n, self->ps);

	ASSERT_EQ(0, madvise(p, cut * self->ps, MADV_UNMERGEABLE));
	EXPECT_EQ(0, ksm_vma_mergeable(0, p));
	EXPECT_EQ(1, ksm_vma_mergeable(0, p + cut * self->ps));
	EXPECT_EQ(0L, ksm_smaps_ksm_kb(0, p));
	EXPECT_EQ((long)((n - cut) * self->ps / 1024),
		  ksm_smaps_ksm_kb(0, p + cut * self->ps));
	expect_private_pages(_metadata, p, cut);
	EXPECT_EQ(kpfn, expect_one_ksm_page(_metadata, p + cut * self->ps,
					    n - cut, self->ps));

	KSM_RUN_PASSES(3);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - cut - 1);
	EXPECT_EQ((long)(n - cut), ksm_read_merging_pages(0));
	EXPECT_EQ((long)(n - cut), ksm_expect_proc_stat(_metadata, 0).rmap_items);
	expect_content(_metadata, p, n, seed);
}

/*
 * MADV_UNMERGEABLE gives every page its own copy right away and clears
 * VM_MERGEABLE; ksmd drops the stale accounting on its next pass.  A
 * separate one-page mergeable "anchor" keeps this mm on ksmd's list so
 * that passes keep completing.
 */
TEST_F_TIMEOUT(ksm_merge, madv_unmergeable, 600)
{
	const size_t n = 16;
	uint64_t seed = ksm_unique_seed();
	struct ksm_proc_stat st;
	char *p, *anchor;

	p = new_region(_metadata, self, n, MAP_PRIVATE);
	anchor = new_region(_metadata, self, 1, MAP_PRIVATE);
	fill_same(p, n, seed);
	ksm_fill_page(anchor, ksm_unique_seed());
	mergeable(_metadata, p, n * self->ps);
	mergeable(_metadata, anchor, self->ps);
	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);

	ASSERT_EQ(0, madvise(p, n * self->ps, MADV_UNMERGEABLE));
	EXPECT_EQ(0, ksm_vma_mergeable(0, p));
	EXPECT_EQ(1, ksm_vma_mergeable(0, anchor));
	EXPECT_EQ(0L, ksm_smaps_ksm_kb(0, p));
	expect_private_pages(_metadata, p, n);
	expect_content(_metadata, p, n, seed);
	/* Again: nothing left to do. */
	EXPECT_EQ(0, madvise(p, n * self->ps, MADV_UNMERGEABLE));

	KSM_RUN_PASSES(3);
	KSM_EXPECT("pages_shared", 0);
	KSM_EXPECT("pages_sharing", 0);
	EXPECT_EQ(0L, ksm_read_merging_pages(0));
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ(1L, st.rmap_items) TH_LOG("only the anchor page is tracked");
	EXPECT_EQ(0L, st.merging_pages);
	expect_private_pages(_metadata, p, n);
	expect_content(_metadata, p, n, seed);
}

/*
 * run=2 unmerges everything synchronously and forgets all tracking, but
 * keeps the areas mergeable: run=1 merges them again.
 */
TEST_F_TIMEOUT(ksm_merge, run2_unmerges_all, 600)
{
	const size_t n = 16;
	uint64_t seed = ksm_unique_seed();
	struct ksm_proc_stat st;
	char *p;

	p = merged_region(_metadata, self, n, seed, NULL);

	ASSERT_EQ(0, ksm_write("run", "2"));
	KSM_EXPECT("run", 2);
	KSM_EXPECT("pages_shared", 0);
	KSM_EXPECT("pages_sharing", 0);
	KSM_EXPECT("pages_unshared", 0);
	KSM_EXPECT("pages_volatile", 0);
	KSM_EXPECT("full_scans", 0);
	KSM_EXPECT("stable_node_chains", 0);
	KSM_EXPECT("stable_node_dups", 0);
	KSM_EXPECT("general_profit", 0);
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ(0L, st.rmap_items);
	EXPECT_EQ(0L, st.merging_pages);
	EXPECT_EQ(0L, st.zero_pages);
	EXPECT_EQ(0L, st.process_profit);
	EXPECT_EQ(0L, ksm_read_merging_pages(0));
	EXPECT_EQ(0L, ksm_smaps_ksm_kb(0, p));
	EXPECT_EQ(1, ksm_vma_mergeable(0, p));
	expect_private_pages(_metadata, p, n);
	expect_content(_metadata, p, n, seed);

	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	expect_one_ksm_page(_metadata, p, n, self->ps);
	expect_content(_metadata, p, n, seed);
}

/* A process that never touched KSM reports all zeros, in this format. */
TEST_F(ksm_merge, proc_files_untouched)
{
	char buf[256];

	ASSERT_LT(0, ksm_read_file("/proc/self/ksm_stat", buf, sizeof(buf)));
	EXPECT_STREQ("ksm_rmap_items 0\nksm_zero_pages 0\n"
		     "ksm_merging_pages 0\nksm_process_profit 0\n"
		     "ksm_merge_any: no\nksm_mergeable: no\n", buf);
	ASSERT_LT(0, ksm_read_file("/proc/self/ksm_merging_pages", buf, sizeof(buf)));
	EXPECT_STREQ("0\n", buf);
}

/*
 * use_zero_pages=1: zero-filled pages are mapped to the shared zero page
 * instead of a KSM page; ksm_zero_pages counts them (globally and per
 * process) and drops immediately on CoW, unmerge and unmap.
 */
TEST_F_TIMEOUT(ksm_merge, use_zero_pages, 600)
{
	const size_t n = 16;
	uint64_t zero_pfn;
	struct ksm_proc_stat st;
	char *p, *probe;
	size_t i;

	ASSERT_EQ(0, ksm_write("use_zero_pages", "1"));
	/* A read fault on untouched anonymous memory maps the zero page. */
	probe = new_region(_metadata, self, 1, MAP_PRIVATE);
	ASSERT_EQ(0, *(volatile char *)probe);
	zero_pfn = pfn_at(_metadata, 0, probe);

	p = new_region(_metadata, self, n, MAP_PRIVATE);
	memset(p, 0, n * self->ps);	/* real, zero-filled anonymous pages */
	for (i = 0; i < n; i++)
		ASSERT_NE(zero_pfn, pfn_at(_metadata, 0, p + i * self->ps));
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);

	KSM_EXPECT("ksm_zero_pages", n);
	KSM_EXPECT("pages_shared", 0);
	KSM_EXPECT("pages_sharing", 0);
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ((long)n, st.zero_pages);
	EXPECT_EQ(0L, st.merging_pages);
	EXPECT_EQ(0L, ksm_read_merging_pages(0));
	expect_profits(_metadata, &st);
	EXPECT_EQ(0L, ksm_smaps_ksm_kb(0, p));
	for (i = 0; i < n; i++) {
		EXPECT_EQ(zero_pfn, pfn_at(_metadata, 0, p + i * self->ps))
			TH_LOG("page %zu not on the zero page", i);
		EXPECT_TRUE(ksm_page_is_zero(p + i * self->ps));
	}

	/* CoW of one page. */
	p[0] = 1;
	KSM_EXPECT("ksm_zero_pages", n - 1);
	EXPECT_EQ((long)(n - 1), ksm_expect_proc_stat(_metadata, 0).zero_pages);
	EXPECT_NE(zero_pfn, pfn_at(_metadata, 0, p));

	/* Unmerge pages 1..7: they get private zeroed pages again. */
	ASSERT_EQ(0, madvise(p + self->ps, 7 * self->ps, MADV_UNMERGEABLE));
	KSM_EXPECT("ksm_zero_pages", n - 8);
	EXPECT_EQ((long)(n - 8), ksm_expect_proc_stat(_metadata, 0).zero_pages);
	for (i = 1; i < 8; i++) {
		EXPECT_NE(zero_pfn, pfn_at(_metadata, 0, p + i * self->ps));
		EXPECT_TRUE(ksm_page_is_zero(p + i * self->ps));
	}

	/* Unmapping the rest. */
	ASSERT_EQ(0, munmap(p + 8 * self->ps, (n - 8) * self->ps));
	KSM_EXPECT("ksm_zero_pages", 0);
	EXPECT_EQ(0L, ksm_expect_proc_stat(_metadata, 0).zero_pages);
}

/* With use_zero_pages, @n zero-filled pages merged into KSM zero pages. */
static char *zero_pages_merged(struct __test_metadata *_metadata,
			       FIXTURE_DATA(ksm_merge) *self, size_t n)
{
	char *p;

	ASSERT_EQ(0, ksm_write("use_zero_pages", "1"));
	p = new_region(_metadata, self, n, MAP_PRIVATE);
	memset(p, 0, n * self->ps);
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);
	KSM_EXPECT("ksm_zero_pages", n);
	return p;
}

/*
 * A forked child inherits the KSM-placed zero pages: its ksm_stat starts
 * with the parent's ksm_zero_pages (unlike rmap_items / merging_pages,
 * which start at 0) and the global count includes both until it exits.
 */
TEST_F_TIMEOUT(ksm_merge, zero_pages_across_fork, 600)
{
	const size_t n = 8;
	int status;
	char *p = zero_pages_merged(_metadata, self, n);

	/* ksmd is stopped: the child's counters can only come from fork. */
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		struct ksm_proc_stat st;

		if (ksm_read_proc_stat(0, &st))
			_exit(1);
		if (st.zero_pages != (long)n || st.rmap_items || st.merging_pages)
			_exit(2);
		if (ksm_get("ksm_zero_pages") != 2 * n)
			_exit(3);
		/* CoW in the child only drops the child's share. */
		p[0] = 1;
		if (ksm_read_proc_stat(0, &st) || st.zero_pages != (long)n - 1)
			_exit(4);
		if (ksm_get("ksm_zero_pages") != 2 * n - 1)
			_exit(5);
		_exit(0);
	}
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child check %d failed",
						  WEXITSTATUS(status));
	/* The child's exit unmapped its remaining zero pages. */
	KSM_EXPECT("ksm_zero_pages", n);
	EXPECT_EQ((long)n, ksm_expect_proc_stat(_metadata, 0).zero_pages);
	EXPECT_TRUE(ksm_page_is_zero(p));
}

/* AnonHugePages of the VMA at @addr in this process, in kB; -1 if unknown. */
static long anon_huge_kb(void *addr)
{
	unsigned long kb = 0;

	return ksm_smaps_lookup(0, addr, "AnonHugePages", &kb, NULL, NULL) ?
	       -1 : (long)kb;
}

/*
 * Counting the KSM zero pages a fork does not copy (those in DONTFORK and
 * WIPEONFORK VMAs) looks at PTEs only: a THP the parent maps with a PMD in
 * such a VMA stays mapped by the PMD.
 */
TEST_F_TIMEOUT(ksm_merge, fork_keeps_parent_thp, 600)
{
	const size_t n = 8, huge = 2 << 20;
	char *area, *thp;
	int status;

	zero_pages_merged(_metadata, self, n);

	area = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	self->regions[self->nregions].addr = area;
	self->regions[self->nregions].len = 2 * huge;
	self->regions[self->nregions++].guarded = false;
	thp = (char *)(((uintptr_t)area + huge - 1) & ~(uintptr_t)(huge - 1));
	if (madvise(thp, huge, MADV_HUGEPAGE))
		SKIP(return, "MADV_HUGEPAGE: %s", strerror(errno));
	memset(thp, 0x5a, huge);
	if (anon_huge_kb(thp) != (long)(huge >> 10))
		SKIP(return, "no THP for the region (AnonHugePages %ld kB)",
		     anon_huge_kb(thp));
	ASSERT_EQ(0, madvise(thp, huge, MADV_WIPEONFORK));

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child)
		_exit(ksm_page_is_zero(thp) ? 0 : 1);
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("the child's wiped THP region was not zero");
	EXPECT_EQ((long)(huge >> 10), anon_huge_kb(thp))
		TH_LOG("fork split the parent's huge PMD");
	KSM_EXPECT("ksm_zero_pages", n);
}

/*
 * A forked child starts with ksm_rmap_items and ksm_merging_pages of 0 and
 * then counts only its own mappings: once ksmd has visited it, parent and
 * child show n each, and the global counters hold both.
 */
TEST_F_TIMEOUT(ksm_merge, fork_child_counts_own, 600)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed(), kpfn;
	int up[2], down[2], status;
	struct ksm_proc_stat st;
	char *p, cmd;
	size_t i;

	p = merged_region(_metadata, self, n, seed, &kpfn);

	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		close(up[0]);
		close(down[1]);
		if (ksm_read_proc_stat(0, &st))
			_exit(1);
		if (st.rmap_items || st.merging_pages || st.zero_pages)
			_exit(2);
		if (write(up[1], "r", 1) != 1 || read(down[0], &cmd, 1) != 1)
			_exit(3);
		if (!ksm_pages_match(p, n, seed))
			_exit(4);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	ASSERT_EQ(1, read(up[0], &cmd, 1));
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ((long)n, st.rmap_items);
	EXPECT_EQ((long)n, st.merging_pages);

	KSM_RUN_PASSES(2);
	st = ksm_expect_proc_stat(_metadata, self->child);
	EXPECT_EQ((long)n, st.rmap_items);
	EXPECT_EQ((long)n, st.merging_pages);
	EXPECT_EQ(0L, st.zero_pages);
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ((long)n, st.rmap_items);
	EXPECT_EQ((long)n, st.merging_pages);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", 2 * n - 1);
	for (i = 0; i < n; i++)
		EXPECT_EQ(kpfn, pfn_at(_metadata, self->child, p + i * self->ps));

	ASSERT_EQ(1, write(down[1], "q", 1));
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child check %d failed",
						  WEXITSTATUS(status));
	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ((long)n, st.rmap_items);
	EXPECT_EQ((long)n, st.merging_pages);
	close(up[0]);
	close(down[1]);
}

static void expect_zero_pages(struct __test_metadata *_metadata, long global,
			      long mine, const char *after)
{
	EXPECT_EQ(global, (long)ksm_get("ksm_zero_pages"))
		TH_LOG("global ksm_zero_pages after %s", after);
	EXPECT_EQ(mine, ksm_expect_proc_stat(_metadata, 0).zero_pages)
		TH_LOG("this process's ksm_zero_pages after %s", after);
}

/*
 * KSM zero pages stay counted exactly on each path that moves, keeps or
 * drops them: MADV_DONTNEED, mprotect, mremap, and a fork that leaves
 * some of them behind (MADV_DONTFORK, MADV_WIPEONFORK regions).  Stock
 * 6.12 miscounts the last one: its child starts from the parent's whole
 * count, including pages the child never got.
 */
TEST_F_TIMEOUT(ksm_merge, zero_pages_every_path, 600)
{
	const size_t n = 32, m = 8;
	char *a, *dontfork, *wipe, *dst;
	int status;
	size_t i;

	ASSERT_EQ(0, ksm_write("use_zero_pages", "1"));
	a = new_region(_metadata, self, n, MAP_PRIVATE);
	dontfork = new_region(_metadata, self, m, MAP_PRIVATE);
	wipe = new_region(_metadata, self, m, MAP_PRIVATE);
	dst = new_region(_metadata, self, m, MAP_PRIVATE);
	ASSERT_EQ(0, madvise(dontfork, m * self->ps, MADV_DONTFORK));
	ASSERT_EQ(0, madvise(wipe, m * self->ps, MADV_WIPEONFORK));
	memset(a, 0, n * self->ps);
	memset(dontfork, 0, m * self->ps);
	memset(wipe, 0, m * self->ps);
	mergeable(_metadata, a, n * self->ps);
	mergeable(_metadata, dontfork, m * self->ps);
	mergeable(_metadata, wipe, m * self->ps);
	KSM_RUN_PASSES(2);
	expect_zero_pages(_metadata, n + 2 * m, n + 2 * m, "merging");

	/* Four zero pages dropped. */
	ASSERT_EQ(0, madvise(a, 4 * self->ps, MADV_DONTNEED));
	expect_zero_pages(_metadata, n + 2 * m - 4, n + 2 * m - 4,
			  "MADV_DONTNEED");

	/* Protection changes keep them. */
	ASSERT_EQ(0, mprotect(a + 4 * self->ps, 4 * self->ps, PROT_READ));
	ASSERT_EQ(0, mprotect(a + 4 * self->ps, 4 * self->ps,
			      PROT_READ | PROT_WRITE));
	expect_zero_pages(_metadata, n + 2 * m - 4, n + 2 * m - 4, "mprotect");

	/*
	 * mremap unmerges what it moves (6.12's move_vma asks KSM to), so
	 * eight of them become private zero-filled pages again.
	 */
	ASSERT_EQ(dst, mremap(a + 8 * self->ps, m * self->ps, m * self->ps,
			      MREMAP_MAYMOVE | MREMAP_FIXED, dst));
	expect_zero_pages(_metadata, n + m - 4, n + m - 4, "mremap");
	for (i = 0; i < m; i++)
		EXPECT_TRUE(ksm_page_is_zero(dst + i * self->ps));

	/*
	 * The child gets all but the DONTFORK and WIPEONFORK pages; ksmd is
	 * stopped, so nothing else changes the counts.
	 */
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		struct ksm_proc_stat st;
		long mine = n - m - 4;

		if (ksm_read_proc_stat(0, &st))
			_exit(1);
		if (st.zero_pages != mine)
			_exit(2);
		if (ksm_get("ksm_zero_pages") != (unsigned long)(mine + n + m - 4))
			_exit(3);
		if (wipe[0] || dst[0])
			_exit(4);
		_exit(0);
	}
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("child check %d failed (2: its own count, 3: global)",
		       WEXITSTATUS(status));
	expect_zero_pages(_metadata, n + m - 4, n + m - 4, "the child's exit");
}

/*
 * MADV_COLLAPSE over KSM zero pages copies them into the new huge page:
 * they stop being KSM zero pages and the counts drop by exactly that many.
 */
TEST_F_TIMEOUT(ksm_merge, zero_pages_collapse, 600)
{
	const size_t huge = 2UL << 20, n = huge / self->ps;
	char *raw, *p;
	size_t i;

	ASSERT_EQ(0, ksm_write("use_zero_pages", "1"));
	ASSERT_GT(MAX_REGIONS, self->nregions);
	raw = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, raw);
	self->regions[self->nregions].addr = raw;
	self->regions[self->nregions].len = 2 * huge;
	self->regions[self->nregions].guarded = false;
	self->nregions++;
	p = (char *)(((uintptr_t)raw + huge - 1) & ~(huge - 1));
	ASSERT_EQ(0, madvise(p, huge, MADV_NOHUGEPAGE));
	/* Even pages zero, odd pages unique: only the even ones merge. */
	for (i = 0; i < n; i++) {
		if (i & 1)
			ksm_fill_page(p + i * self->ps, 1000 + i);
		else
			memset(p + i * self->ps, 0, self->ps);
	}
	mergeable(_metadata, p, huge);
	KSM_RUN_PASSES(2);
	expect_zero_pages(_metadata, n / 2, n / 2, "merging");

	ASSERT_EQ(0, madvise(p, huge, MADV_HUGEPAGE));
	if (madvise(p, huge, MADV_COLLAPSE)) {
		if (errno == EINVAL)
			SKIP(return, "MADV_COLLAPSE not supported");
		ASSERT_EQ(0, errno) TH_LOG("MADV_COLLAPSE: %s", strerror(errno));
	}
	expect_zero_pages(_metadata, 0, 0, "MADV_COLLAPSE");
	for (i = 0; i < n; i++) {
		bool intact = i & 1 ? ksm_page_matches(p + i * self->ps, 1000 + i) :
				      ksm_page_is_zero(p + i * self->ps);

		EXPECT_TRUE(intact) TH_LOG("page %zu changed by the collapse", i);
	}
}

/* use_zero_pages=0: zero-filled pages merge like any other content. */
TEST_F_TIMEOUT(ksm_merge, zero_filled_pages_default, 600)
{
	const size_t n = 16;
	char *p;
	size_t i;

	p = new_region(_metadata, self, n, MAP_PRIVATE);
	memset(p, 0, n * self->ps);
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);

	KSM_EXPECT("ksm_zero_pages", 0);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	EXPECT_EQ(0L, ksm_expect_proc_stat(_metadata, 0).zero_pages);
	expect_one_ksm_page(_metadata, p, n, self->ps);
	for (i = 0; i < n; i++)
		EXPECT_TRUE(ksm_page_is_zero(p + i * self->ps));
}

/*
 * MADV_MERGEABLE on a MAP_SHARED mapping succeeds but is ignored: no
 * VM_MERGEABLE, and its pages never merge, not even with identical private
 * pages that do merge among themselves.
 */
TEST_F_TIMEOUT(ksm_merge, shared_mapping_ignored, 600)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed();
	char *sh, *pr;
	size_t i;

	sh = new_region(_metadata, self, n, MAP_SHARED);
	pr = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(sh, n, seed);
	fill_same(pr, n, seed);
	mergeable(_metadata, sh, n * self->ps);
	mergeable(_metadata, pr, n * self->ps);
	EXPECT_EQ(0, ksm_vma_mergeable(0, sh));
	EXPECT_EQ(1, ksm_vma_mergeable(0, pr));
	KSM_RUN_PASSES(2);

	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	EXPECT_EQ((long)n, ksm_expect_proc_stat(_metadata, 0).rmap_items);
	EXPECT_EQ(0L, ksm_smaps_ksm_kb(0, sh));
	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(0, pr));
	expect_private_pages(_metadata, sh, n);
	for (i = 0; i < n; i++)
		EXPECT_TRUE(ksm_page_matches(sh + i * self->ps, seed));
}

/*
 * madvise() range rules as seen through KSM advice: unaligned start is
 * EINVAL, holes give ENOMEM (the mapped parts are still marked), partial
 * ranges split the VMA, repeated advice is a no-op.
 */
TEST_F(ksm_merge, madvise_ranges)
{
	size_t ps = self->ps;
	char *area;

	area = new_region(_metadata, self, 5, MAP_PRIVATE);

	errno = 0;
	EXPECT_EQ(-1, madvise(area + 1, ps, MADV_MERGEABLE));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, madvise(area + 1, ps, MADV_UNMERGEABLE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, madvise(area, 0, MADV_MERGEABLE));
	EXPECT_EQ(0, ksm_vma_mergeable(0, area));

	/* Pages 1..2 only: the VMA is split in three. */
	ASSERT_EQ(0, madvise(area + ps, 2 * ps, MADV_MERGEABLE));
	EXPECT_EQ(0, ksm_vma_mergeable(0, area));
	EXPECT_EQ(1, ksm_vma_mergeable(0, area + ps));
	EXPECT_EQ(0, ksm_vma_mergeable(0, area + 3 * ps));
	EXPECT_EQ(0, madvise(area + ps, 2 * ps, MADV_MERGEABLE));
	EXPECT_EQ(1, ksm_vma_mergeable(0, area + ps));

	/* Advising the whole range merges the pieces back together. */
	ASSERT_EQ(0, madvise(area, 5 * ps, MADV_MERGEABLE));
	EXPECT_EQ(1, ksm_vma_mergeable(0, area));

	/* Un-advising clears it; doing so again is a silent no-op. */
	ASSERT_EQ(0, madvise(area, 5 * ps, MADV_UNMERGEABLE));
	EXPECT_EQ(0, ksm_vma_mergeable(0, area));
	EXPECT_EQ(0, madvise(area, 5 * ps, MADV_UNMERGEABLE));
	EXPECT_EQ(0, ksm_vma_mergeable(0, area));

	/* Punch a hole at page 2: ENOMEM, but both sides become mergeable. */
	ASSERT_EQ(0, munmap(area + 2 * ps, ps));
	errno = 0;
	EXPECT_EQ(-1, madvise(area, 5 * ps, MADV_MERGEABLE));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(1, ksm_vma_mergeable(0, area));
	EXPECT_EQ(1, ksm_vma_mergeable(0, area + 3 * ps));
	errno = 0;
	EXPECT_EQ(-1, madvise(area + 2 * ps, ps, MADV_MERGEABLE));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(-1, madvise(area, 5 * ps, MADV_UNMERGEABLE));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(0, ksm_vma_mergeable(0, area));
	EXPECT_EQ(0, ksm_vma_mergeable(0, area + 3 * ps));
}

/*
 * MAP_PRIVATE file mapping: only pages that were CoW'ed into anonymous
 * memory are candidates; untouched page-cache pages are never scanned.
 */
TEST_F_TIMEOUT(ksm_merge, private_file_mapping, 600)
{
	const size_t n = 8, cowed = 4;
	uint64_t seed = ksm_unique_seed(), kpfn;
	struct ksm_proc_stat st;
	unsigned long anon_kb = 0;
	char *buf, *p;
	size_t i;
	int fd;

	fd = memfd_create("ksm_merge_test", 0);
	ASSERT_LE(0, fd) TH_LOG("memfd_create: %s", strerror(errno));
	buf = malloc(self->ps);
	ASSERT_NE(NULL, buf);
	ksm_fill_page(buf, seed);
	for (i = 0; i < n; i++)
		ASSERT_EQ((ssize_t)self->ps, write(fd, buf, self->ps));
	free(buf);

	p = mmap(NULL, n * self->ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	close(fd);
	self->regions[self->nregions].addr = p;
	self->regions[self->nregions].len = n * self->ps;
	self->regions[self->nregions].guarded = false;
	self->nregions++;

	/* Read-fault everything; rewrite a byte of the first pages (CoW). */
	for (i = 0; i < n; i++)
		ASSERT_TRUE(ksm_page_matches(p + i * self->ps, seed));
	for (i = 0; i < cowed; i++) {
		volatile char *c = p + i * self->ps;

		*c = *c;
	}
	ASSERT_EQ(0, ksm_smaps_lookup(0, p, "Anonymous", &anon_kb, NULL, NULL));
	ASSERT_EQ(cowed * self->ps / 1024, anon_kb) TH_LOG("CoW did not happen");
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);

	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", cowed - 1);
	KSM_EXPECT("pages_unshared", 0);
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ((long)cowed, st.rmap_items);
	EXPECT_EQ((long)cowed, st.merging_pages);
	EXPECT_EQ((long)(cowed * self->ps / 1024), ksm_smaps_ksm_kb(0, p));
	kpfn = expect_one_ksm_page(_metadata, p, cowed, self->ps);
	for (i = cowed; i < n; i++)
		EXPECT_NE(kpfn, pfn_at(_metadata, 0, p + i * self->ps));
	expect_content(_metadata, p, n, seed);
}

/*
 * max_page_sharing=2: each KSM page takes at most two mappings, so four
 * identical pages need two KSM pages, chained as duplicates of one content.
 */
TEST_F_TIMEOUT(ksm_merge, max_page_sharing_chain, 600)
{
	const size_t n = 4;
	uint64_t seed = ksm_unique_seed(), pfns[4];
	size_t i, j, same;
	char *p;

	ASSERT_EQ(0, ksm_write("max_page_sharing", "2"));
	p = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(p, n, seed);
	mergeable(_metadata, p, n * self->ps);
	KSM_RUN_PASSES(2);

	KSM_EXPECT("pages_shared", 2);
	KSM_EXPECT("pages_sharing", 2);
	KSM_EXPECT("pages_unshared", 0);
	KSM_EXPECT("stable_node_chains", 1);
	KSM_EXPECT("stable_node_dups", 2);
	EXPECT_EQ((long)n, ksm_read_merging_pages(0));
	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(0, p));

	/* Two frames, each mapped exactly twice. */
	for (i = 0; i < n; i++) {
		pfns[i] = pfn_at(_metadata, 0, p + i * self->ps);
		EXPECT_EQ(0, exclusive(_metadata, p + i * self->ps));
	}
	for (i = 0; i < n; i++) {
		for (same = 0, j = 0; j < n; j++)
			same += pfns[i] == pfns[j];
		EXPECT_EQ(2UL, same) TH_LOG("page %zu's frame mapped %zu times", i, same);
	}
	expect_content(_metadata, p, n, seed);
}

/* ---------------------------------------------------------------- */

static bool node_online(int node)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	return access(path, F_OK) == 0;
}

/* Bind [p, p+len) to @node before it is touched; -errno on failure. */
static int bind_to_node(void *p, size_t len, int node)
{
	unsigned long mask = 1UL << node;

	/* maxnode counts one more than the bits used, as the kernel expects */
	if (syscall(SYS_mbind, p, len, MPOL_BIND, &mask, 3UL, 0))
		return -errno;
	return 0;
}

/* The node backing each page (move_pages() in query mode). */
static int page_nodes(void *p, size_t n, int *nodes)
{
	void *pages[MAX_PAGES];
	size_t i;

	for (i = 0; i < n; i++)
		pages[i] = (char *)p + i * ksm_page_size();
	if (syscall(SYS_move_pages, 0, n, pages, NULL, nodes, 0))
		return -errno;
	return 0;
}

/*
 * Common start of the NUMA tests: skip without nodes 0 and 1, set
 * merge_across_nodes to @across, then fill @n pages of *@a bound to node 0
 * and @n pages of *@b bound to node 1 with @seed.  Returns false if the
 * test was skipped.
 */
static bool numa_setup(struct __test_metadata *_metadata,
		       FIXTURE_DATA(ksm_merge) *self, int across, size_t n,
		       uint64_t seed, char **a, char **b)
{
	int err;

	if (!ksm_file_exists("merge_across_nodes") || !node_online(0) ||
	    !node_online(1))
		SKIP(return false, "needs CONFIG_NUMA and nodes 0 and 1");
	ASSERT_EQ(0, ksm_write("merge_across_nodes", across ? "1" : "0"));

	*a = new_region(_metadata, self, n, MAP_PRIVATE);
	*b = new_region(_metadata, self, n, MAP_PRIVATE);
	err = bind_to_node(*a, n * self->ps, 0);
	if (err == -ENOSYS)
		SKIP(return false, "mbind() not available");
	ASSERT_EQ(0, err) TH_LOG("mbind node 0: %s", strerror(-err));
	ASSERT_EQ(0, bind_to_node(*b, n * self->ps, 1));
	fill_same(*a, n, seed);
	fill_same(*b, n, seed);
	return true;
}

/*
 * Identical pages on two NUMA nodes: with merge_across_nodes=1 they share
 * one KSM page, with 0 each node keeps its own.  Runs for both settings.
 */
static void numa_merge(struct __test_metadata *_metadata,
		       FIXTURE_DATA(ksm_merge) *self, int across)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed(), k0, k1;
	int nodes[MAX_PAGES];
	char *a, *b;
	size_t i;

	if (!numa_setup(_metadata, self, across, n, seed, &a, &b))
		return;
	ASSERT_EQ(0, page_nodes(a, n, nodes));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, nodes[i]) TH_LOG("page %zu of a on node %d", i, nodes[i]);
	ASSERT_EQ(0, page_nodes(b, n, nodes));
	for (i = 0; i < n; i++)
		ASSERT_EQ(1, nodes[i]) TH_LOG("page %zu of b on node %d", i, nodes[i]);

	mergeable(_metadata, a, n * self->ps);
	mergeable(_metadata, b, n * self->ps);
	KSM_RUN_PASSES(2);

	k0 = expect_one_ksm_page(_metadata, a, n, self->ps);
	k1 = expect_one_ksm_page(_metadata, b, n, self->ps);
	if (across) {
		KSM_EXPECT("pages_shared", 1);
		KSM_EXPECT("pages_sharing", 2 * n - 1);
		EXPECT_EQ(k0, k1);
	} else {
		KSM_EXPECT("pages_shared", 2);
		KSM_EXPECT("pages_sharing", 2 * n - 2);
		EXPECT_NE(k0, k1);
		/* Each node's KSM page stays on that node. */
		ASSERT_EQ(0, page_nodes(a, 1, nodes));
		EXPECT_EQ(0, nodes[0]);
		ASSERT_EQ(0, page_nodes(b, 1, nodes));
		EXPECT_EQ(1, nodes[0]);
	}
	EXPECT_EQ((long)(2 * n), ksm_read_merging_pages(0));
	expect_content(_metadata, a, n, seed);
	expect_content(_metadata, b, n, seed);
}

TEST_F_TIMEOUT(ksm_merge, numa_merge_across_nodes, 600)
{
	numa_merge(_metadata, self, 1);
}

TEST_F_TIMEOUT(ksm_merge, numa_per_node, 600)
{
	numa_merge(_metadata, self, 0);
}

#ifndef MPOL_MF_MOVE_ALL
#define MPOL_MF_MOVE_ALL	(1 << 2)
#endif

/* Move the page at @p (even if mapped many times) to @node. */
static int move_page_to(void *p, int node)
{
	int status = -1;

	if (syscall(SYS_move_pages, 0, 1UL, &p, &node, &status,
		    MPOL_MF_MOVE_ALL))
		return -errno;
	return status < 0 ? status : 0;
}

/*
 * A KSM page migrated to the other node stays one correct KSM page for
 * all its mappers: same content, every mapping moved to the new frame,
 * counters unchanged, copy-on-write still private.  With
 * merge_across_nodes=0, pages of node 0 filled later must still only
 * merge into a KSM page on node 0, never into the one that moved away.
 */
static void numa_migrate(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ksm_merge) *self, int across)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed(), k0, k1, moved;
	int nodes[MAX_PAGES], err;
	char *a, *b, *c;
	size_t i;

	if (!numa_setup(_metadata, self, across, n, seed, &a, &b))
		return;
	/* Filled only later, after a's KSM page has moved to node 1. */
	c = new_region(_metadata, self, n, MAP_PRIVATE);
	ASSERT_EQ(0, bind_to_node(c, n * self->ps, 0));
	mergeable(_metadata, a, n * self->ps);
	mergeable(_metadata, b, n * self->ps);
	KSM_RUN_PASSES(2);
	k0 = expect_one_ksm_page(_metadata, a, n, self->ps);
	k1 = expect_one_ksm_page(_metadata, b, n, self->ps);
	EXPECT_EQ(across ? 1UL : 2UL, ksm_get("pages_shared"));
	ASSERT_EQ(0, page_nodes(a, 1, nodes));
	if (nodes[0] != 0) {
		ASSERT_EQ(0, move_page_to(a, 0));
		k0 = pfn_at(_metadata, 0, a);
	}

	/* ksmd is stopped: only the migration changes anything. */
	err = move_page_to(a, 1);
	ASSERT_EQ(0, err) TH_LOG("move_pages of a KSM page: %s", strerror(-err));
	moved = expect_one_ksm_page(_metadata, a, n, self->ps);
	EXPECT_NE(k0, moved);
	ASSERT_EQ(0, page_nodes(a, n, nodes));
	for (i = 0; i < n; i++)
		EXPECT_EQ(1, nodes[i]) TH_LOG("page %zu of a on node %d", i, nodes[i]);
	/* b still maps the shared page (across) or its own node's one. */
	EXPECT_EQ(across ? moved : k1, pfn_at(_metadata, 0, b));
	expect_content(_metadata, a, n, seed);
	expect_content(_metadata, b, n, seed);
	KSM_EXPECT("pages_shared", across ? 1 : 2);
	KSM_EXPECT("pages_sharing", 2 * n - (across ? 1 : 2));

	/* More passes, now with a third copy of the content on node 0. */
	fill_same(c, n, seed);
	mergeable(_metadata, c, n * self->ps);
	KSM_RUN_PASSES(3);
	expect_one_ksm_page(_metadata, c, n, self->ps);
	ASSERT_EQ(0, page_nodes(c, n, nodes));
	for (i = 0; !across && i < n; i++)
		EXPECT_EQ(0, nodes[i])
			TH_LOG("page %zu of c merged into a page on node %d",
			       i, nodes[i]);
	EXPECT_EQ((long)(3 * n), ksm_read_merging_pages(0));
	EXPECT_EQ(3 * n, ksm_get("pages_shared") + ksm_get("pages_sharing"));

	/* Copy-on-write of the migrated page stays private. */
	a[0] ^= 1;
	EXPECT_FALSE(ksm_page_matches(a, seed));
	a[0] ^= 1;
	EXPECT_TRUE(ksm_page_matches(a, seed));
	EXPECT_EQ(1, exclusive(_metadata, a));
	expect_content(_metadata, a, n, seed);
	expect_content(_metadata, b, n, seed);
	expect_content(_metadata, c, n, seed);
}

TEST_F_TIMEOUT(ksm_merge, numa_migrate_across_nodes, 600)
{
	numa_migrate(_metadata, self, 1);
}

TEST_F_TIMEOUT(ksm_merge, numa_migrate_per_node, 600)
{
	numa_migrate(_metadata, self, 0);
}

TEST_HARNESS_MAIN
