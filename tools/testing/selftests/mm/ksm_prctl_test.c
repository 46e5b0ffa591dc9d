// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
/*
 * Process-wide KSM via prctl(PR_SET_MEMORY_MERGE / PR_GET_MEMORY_MERGE),
 * Linux 6.12 semantics: argument checking, which VMAs become mergeable
 * (existing and future ones, never shared ones), unmerging on disable,
 * interaction with MADV_(UN)MERGEABLE, and inheritance over fork and
 * execve.
 *
 * With merge-any on, every anonymous area of the process is a candidate
 * (stack, heap, ...), so global counters are only checked where the test
 * controls every mergeable area; otherwise the checks are per region:
 * page frames and the mapped-once bit (pagemap), smaps "KSM:" and VmFlags
 * "mg".
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

#include <signal.h>
#include <sys/wait.h>

#define PROBE_ENV	"KSM_PRCTL_TEST_EXEC_PROBE"
#define MAX_REGIONS	8

/* Raw prctl: every argument passed as a full unsigned long. */
static long prctl5(int op, unsigned long a2, unsigned long a3,
		   unsigned long a4, unsigned long a5)
{
	return syscall(SYS_prctl, op, a2, a3, a4, a5);
}

static long get_merge(void)
{
	return prctl5(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
}

/*
 * Exec probe: when re-executed with PROBE_ENV set, report the merge-any
 * state of the new image through the exit status and exit before the
 * harness starts:  bit 0  PR_GET_MEMORY_MERGE returned 1
 *                  bit 1  a fresh anonymous mapping is VM_MERGEABLE ("mg")
 *                  bit 2  /proc/self/ksm_stat shows no KSM pages yet
 *                  64+    the probe itself failed
 */
__attribute__((constructor)) static void exec_probe(void)
{
	struct ksm_proc_stat st;
	int code = 0, mg;
	long r;
	void *p;

	if (!getenv(PROBE_ENV))
		return;
	r = get_merge();
	if (r < 0)
		_exit(64);
	if (r == 1)
		code |= 1;
	p = ksm_map(1);
	if (p == MAP_FAILED)
		_exit(65);
	*(volatile char *)p = 1;
	mg = ksm_vma_mergeable(0, p);
	if (mg < 0)
		_exit(66);
	if (mg)
		code |= 2;
	if (ksm_read_proc_stat(0, &st))
		_exit(67);
	if (!st.merging_pages && !st.zero_pages)
		code |= 4;
	_exit(code);
}

FIXTURE(ksm_prctl) {
	struct ksm_saved_knobs saved;
	struct { void *addr; size_t npages; } regions[MAX_REGIONS];
	int nregions;
	pid_t child;
	size_t ps;
};

FIXTURE_SETUP(ksm_prctl)
{
	const char *why = ksm_skip_reason();
	long r;

	if (why)
		SKIP(return, "%s", why);
	r = get_merge();
	if (r < 0 && errno == EINVAL)
		SKIP(return, "PR_GET_MEMORY_MERGE not supported");
	ASSERT_EQ(0L, r) TH_LOG("fresh test process already has merge-any");
	self->ps = ksm_page_size();
	self->nregions = 0;
	self->child = 0;
	ksm_save_knobs(&self->saved);
	/* Pages that re-merge must not be skipped by age: smart_scan=0. */
	ASSERT_EQ(0, ksm_counting_setup(false));
}

FIXTURE_TEARDOWN(ksm_prctl)
{
	int i;

	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	prctl5(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	for (i = 0; i < self->nregions; i++)
		ksm_unmap(self->regions[i].addr, self->regions[i].npages);
	EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
}

static char *new_region(struct __test_metadata *_metadata,
			FIXTURE_DATA(ksm_prctl) *self, size_t n, int flags)
{
	char *p;

	ASSERT_GT(MAX_REGIONS, self->nregions);
	p = ksm_map_flags(n, flags);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	self->regions[self->nregions].addr = p;
	self->regions[self->nregions].npages = n;
	self->nregions++;
	return p;
}

#define EXPECT_PRCTL_OK(op, a2, a3, a4, a5) do {			\
	long __r = prctl5(op, a2, a3, a4, a5);				\
	EXPECT_EQ(0L, __r) TH_LOG(#op "(%lu, %lu, %lu, %lu): %s",	\
				  (unsigned long)(a2), (unsigned long)(a3), \
				  (unsigned long)(a4), (unsigned long)(a5), \
				  strerror(errno));			\
} while (0)

#define EXPECT_PRCTL_EINVAL(op, a2, a3, a4, a5) do {			\
	long __r;							\
	errno = 0;							\
	__r = prctl5(op, a2, a3, a4, a5);				\
	EXPECT_EQ(-1L, __r) TH_LOG(#op "(%lu, %lu, %lu, %lu) accepted",	\
				   (unsigned long)(a2), (unsigned long)(a3), \
				   (unsigned long)(a4), (unsigned long)(a5)); \
	EXPECT_EQ(EINVAL, errno);					\
} while (0)

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

static uint64_t pfn_at(struct __test_metadata *_metadata, void *addr)
{
	uint64_t pfn = 0;
	int err = ksm_pfn(addr, &pfn);

	ASSERT_EQ(0, err) TH_LOG("pagemap of %p: %s", addr, strerror(-err));
	return pfn;
}

/* Every page of every listed region maps the same KSM page frame. */
static void expect_all_on(struct __test_metadata *_metadata, uint64_t kpfn,
			  char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		EXPECT_EQ(kpfn, pfn_at(_metadata, p + i * ksm_page_size()))
			TH_LOG("page %zu of %p not merged", i, p);
		EXPECT_EQ(0, ksm_page_exclusive(p + i * ksm_page_size()))
			TH_LOG("page %zu of %p mapped only once", i, p);
	}
}

/* Every page has a private frame, mapped only here. */
static void expect_unmerged(struct __test_metadata *_metadata, char *p, size_t n)
{
	uint64_t prev[64];
	size_t i, j;

	ASSERT_GE((size_t)64, n);
	for (i = 0; i < n; i++) {
		prev[i] = pfn_at(_metadata, p + i * ksm_page_size());
		EXPECT_EQ(1, ksm_page_exclusive(p + i * ksm_page_size()));
		for (j = 0; j < i; j++)
			EXPECT_NE(prev[j], prev[i]);
	}
}

TEST_F(ksm_prctl, default_off)
{
	EXPECT_EQ(0L, get_merge());
}

/*
 * PR_SET_MEMORY_MERGE: arg3..arg5 must be 0, any non-zero arg2 enables.
 * PR_GET_MEMORY_MERGE: arg2..arg5 must be 0.  Rejected calls change
 * nothing.
 */
TEST_F(ksm_prctl, argument_checks)
{
	EXPECT_PRCTL_EINVAL(PR_SET_MEMORY_MERGE, 1, 1, 0, 0);
	EXPECT_PRCTL_EINVAL(PR_SET_MEMORY_MERGE, 1, 0, 1, 0);
	EXPECT_PRCTL_EINVAL(PR_SET_MEMORY_MERGE, 1, 0, 0, 1);
	EXPECT_PRCTL_EINVAL(PR_SET_MEMORY_MERGE, 0, ~0UL, 0, 0);
	EXPECT_EQ(0L, get_merge());

	EXPECT_PRCTL_EINVAL(PR_GET_MEMORY_MERGE, 1, 0, 0, 0);
	EXPECT_PRCTL_EINVAL(PR_GET_MEMORY_MERGE, 0, 1, 0, 0);
	EXPECT_PRCTL_EINVAL(PR_GET_MEMORY_MERGE, 0, 0, 1, 0);
	EXPECT_PRCTL_EINVAL(PR_GET_MEMORY_MERGE, 0, 0, 0, 1);

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	EXPECT_EQ(1L, get_merge());
	EXPECT_PRCTL_EINVAL(PR_SET_MEMORY_MERGE, 0, 0, 0, 1);
	EXPECT_EQ(1L, get_merge());
	EXPECT_PRCTL_EINVAL(PR_GET_MEMORY_MERGE, 1, 0, 0, 0);

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	EXPECT_EQ(0L, get_merge());

	/* Not a boolean: any non-zero value turns it on, GET says 1. */
	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 7, 0, 0, 0);
	EXPECT_EQ(1L, get_merge());
	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, ~0UL, 0, 0, 0);
	EXPECT_EQ(1L, get_merge());
}

/* Setting either value twice is fine; VMAs follow the setting. */
TEST_F(ksm_prctl, set_get_idempotent)
{
	char *before, *after;

	before = new_region(_metadata, self, 2, MAP_PRIVATE);
	EXPECT_EQ(0, ksm_vma_mergeable(0, before));

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	EXPECT_EQ(1L, get_merge());
	EXPECT_EQ(1, ksm_vma_mergeable(0, before));
	after = new_region(_metadata, self, 2, MAP_PRIVATE);
	EXPECT_EQ(1, ksm_vma_mergeable(0, after));

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	EXPECT_EQ(0L, get_merge());
	EXPECT_EQ(0, ksm_vma_mergeable(0, before));
	EXPECT_EQ(0, ksm_vma_mergeable(0, after));
}

/*
 * With merge-any on, identical anonymous pages merge without any madvise:
 * both in a mapping that existed before the prctl and in one created after.
 */
TEST_F_TIMEOUT(ksm_prctl, merges_without_madvise, 600)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed(), kpfn;
	char *old, *young;

	old = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(old, n, seed);
	EXPECT_EQ(0, ksm_vma_mergeable(0, old));

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	young = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(young, n, seed);
	EXPECT_EQ(1, ksm_vma_mergeable(0, old));
	EXPECT_EQ(1, ksm_vma_mergeable(0, young));

	KSM_RUN_PASSES(2);
	kpfn = pfn_at(_metadata, old);
	expect_all_on(_metadata, kpfn, old, n);
	expect_all_on(_metadata, kpfn, young, n);
	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(0, old));
	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(0, young));
	EXPECT_LE((long)(2 * n), ksm_read_merging_pages(0));
	EXPECT_LE(1UL, ksm_get("pages_shared"));
	EXPECT_LE(2 * n - 1, ksm_get("pages_sharing"));
	expect_content(_metadata, old, n, seed);
	expect_content(_metadata, young, n, seed);
}

/*
 * Turning merge-any off unmerges at once and clears VM_MERGEABLE from
 * every VMA; ksmd then drops the accounting.  A madvise()d one-page
 * anchor keeps the mm on ksmd's list so that passes keep completing.
 */
TEST_F_TIMEOUT(ksm_prctl, disable_unmerges, 600)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed();
	struct ksm_proc_stat st;
	char *a, *b, *anchor;

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	a = new_region(_metadata, self, n, MAP_PRIVATE);
	b = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(a, n, seed);
	fill_same(b, n, seed);
	KSM_RUN_PASSES(2);
	expect_all_on(_metadata, pfn_at(_metadata, a), b, n);

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	EXPECT_EQ(0L, get_merge());
	EXPECT_EQ(0, ksm_vma_mergeable(0, a));
	EXPECT_EQ(0, ksm_vma_mergeable(0, b));
	EXPECT_EQ(0L, ksm_smaps_ksm_kb(0, a));
	EXPECT_EQ(0L, ksm_smaps_ksm_kb(0, b));
	expect_unmerged(_metadata, a, n);
	expect_unmerged(_metadata, b, n);
	EXPECT_NE(pfn_at(_metadata, a), pfn_at(_metadata, b));
	expect_content(_metadata, a, n, seed);
	expect_content(_metadata, b, n, seed);

	/* New mappings are not mergeable any more. */
	anchor = new_region(_metadata, self, 1, MAP_PRIVATE);
	EXPECT_EQ(0, ksm_vma_mergeable(0, anchor));
	ksm_fill_page(anchor, ksm_unique_seed());
	ASSERT_EQ(0, madvise(anchor, self->ps, MADV_MERGEABLE));

	KSM_RUN_PASSES(3);
	EXPECT_EQ(0UL, ksm_get("pages_shared"));
	EXPECT_EQ(0UL, ksm_get("pages_sharing"));
	EXPECT_EQ(0L, ksm_read_merging_pages(0));
	st = (struct ksm_proc_stat){ 0 };
	ASSERT_EQ(0, ksm_read_proc_stat(0, &st));
	EXPECT_EQ(1L, st.rmap_items) TH_LOG("only the anchor page is tracked");
	EXPECT_EQ(0L, st.merging_pages);
}

/*
 * MADV_UNMERGEABLE still works per area under merge-any: it unmerges and
 * clears that area only; the process stays merge-any, new areas are still
 * mergeable, and MADV_MERGEABLE brings the area back.
 */
TEST_F_TIMEOUT(ksm_prctl, madvise_under_merge_any, 600)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed();
	char *a, *b, *c;

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	a = new_region(_metadata, self, n, MAP_PRIVATE);
	b = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(a, n, seed);
	fill_same(b, n, seed);
	/* Already mergeable: MADV_MERGEABLE is a no-op success. */
	EXPECT_EQ(0, madvise(a, n * self->ps, MADV_MERGEABLE));
	KSM_RUN_PASSES(2);
	expect_all_on(_metadata, pfn_at(_metadata, a), a, n);
	expect_all_on(_metadata, pfn_at(_metadata, a), b, n);

	ASSERT_EQ(0, madvise(a, n * self->ps, MADV_UNMERGEABLE));
	EXPECT_EQ(1L, get_merge());
	EXPECT_EQ(0, ksm_vma_mergeable(0, a));
	EXPECT_EQ(1, ksm_vma_mergeable(0, b));
	EXPECT_EQ(0L, ksm_smaps_ksm_kb(0, a));
	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(0, b));
	expect_unmerged(_metadata, a, n);
	expect_content(_metadata, a, n, seed);

	c = new_region(_metadata, self, 1, MAP_PRIVATE);
	EXPECT_EQ(1, ksm_vma_mergeable(0, c));

	ASSERT_EQ(0, madvise(a, n * self->ps, MADV_MERGEABLE));
	EXPECT_EQ(1, ksm_vma_mergeable(0, a));
	KSM_RUN_PASSES(3);
	expect_all_on(_metadata, pfn_at(_metadata, b), a, n);
	expect_content(_metadata, a, n, seed);
}

/* Merge-any never marks MAP_SHARED mappings. */
TEST_F(ksm_prctl, shared_mappings_excluded)
{
	char *sh_before, *sh_after, *pr;

	sh_before = new_region(_metadata, self, 2, MAP_SHARED);
	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	sh_after = new_region(_metadata, self, 2, MAP_SHARED);
	pr = new_region(_metadata, self, 2, MAP_PRIVATE);
	EXPECT_EQ(0, ksm_vma_mergeable(0, sh_before));
	EXPECT_EQ(0, ksm_vma_mergeable(0, sh_after));
	EXPECT_EQ(1, ksm_vma_mergeable(0, pr));
}

/*
 * PR_SET_MEMORY_MERGE 0 only undoes merge-any: on a process that never
 * enabled it, madvise()d areas stay mergeable and keep merging.
 */
TEST_F_TIMEOUT(ksm_prctl, disable_keeps_madvise, 600)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed();
	char *p;

	p = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(p, n, seed);
	ASSERT_EQ(0, madvise(p, n * self->ps, MADV_MERGEABLE));
	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	EXPECT_EQ(0L, get_merge());
	EXPECT_EQ(1, ksm_vma_mergeable(0, p));

	KSM_RUN_PASSES(2);
	/* Only this area is mergeable: the global counts are exact. */
	EXPECT_EQ(1UL, ksm_get("pages_shared"));
	EXPECT_EQ(n - 1, ksm_get("pages_sharing"));
	EXPECT_EQ((long)n, ksm_read_merging_pages(0));
	expect_all_on(_metadata, pfn_at(_metadata, p), p, n);
}

/*
 * fork(): the child inherits merge-any and the mergeable VMAs, maps the
 * same KSM pages, but starts with its own KSM counters at zero.  Turning
 * merge-any off in the child does not affect the parent.
 */
TEST_F_TIMEOUT(ksm_prctl, fork_inherits, 600)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed(), kpfn;
	int status;
	char *p;

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	p = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(p, n, seed);
	KSM_RUN_PASSES(2);
	kpfn = pfn_at(_metadata, p);
	expect_all_on(_metadata, kpfn, p, n);

	/* ksmd is stopped: nothing can scan the child behind our back. */
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		struct ksm_proc_stat st;
		uint64_t pfn;
		size_t i;

		if (get_merge() != 1)
			_exit(10);
		if (ksm_read_proc_stat(0, &st))
			_exit(11);
		if (st.rmap_items || st.merging_pages || st.zero_pages)
			_exit(12);
		if (ksm_read_merging_pages(0) != 0)
			_exit(13);
		if (ksm_vma_mergeable(0, p) != 1)
			_exit(14);
		if (ksm_smaps_ksm_kb(0, p) != (long)(n * ksm_page_size() / 1024))
			_exit(15);
		for (i = 0; i < n; i++)
			if (ksm_pfn(p + i * ksm_page_size(), &pfn) || pfn != kpfn)
				_exit(16);
		if (prctl5(PR_SET_MEMORY_MERGE, 0, 0, 0, 0))
			_exit(17);
		if (get_merge() != 0 || ksm_vma_mergeable(0, p) != 0 ||
		    ksm_smaps_ksm_kb(0, p) != 0)
			_exit(18);
		if (!ksm_pages_match(p, n, seed))
			_exit(19);
		_exit(0);
	}
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("child check %d failed (see the _exit codes)",
		       WEXITSTATUS(status));

	EXPECT_EQ(1L, get_merge());
	EXPECT_EQ(1, ksm_vma_mergeable(0, p));
	EXPECT_EQ((long)(n * self->ps / 1024), ksm_smaps_ksm_kb(0, p));
	expect_all_on(_metadata, kpfn, p, n);
	expect_content(_metadata, p, n, seed);
}

/*
 * /proc/self/ksm_stat: after the four 6.12 lines, "ksm_merge_any" says
 * whether PR_SET_MEMORY_MERGE is on and "ksm_mergeable" whether any VMA
 * is mergeable; both follow every change.
 */
TEST_F(ksm_prctl, proc_stat_flags)
{
	struct ksm_proc_stat st;
	char *p;

	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ(0, st.merge_any);
	EXPECT_EQ(0, st.mergeable);

	p = new_region(_metadata, self, 1, MAP_PRIVATE);
	ASSERT_EQ(0, madvise(p, self->ps, MADV_MERGEABLE));
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ(0, st.merge_any);
	EXPECT_EQ(1, st.mergeable);

	ASSERT_EQ(0, madvise(p, self->ps, MADV_UNMERGEABLE));
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ(0, st.merge_any);
	EXPECT_EQ(0, st.mergeable);

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ(1, st.merge_any);
	EXPECT_EQ(1, st.mergeable);

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
	st = ksm_expect_proc_stat(_metadata, 0);
	EXPECT_EQ(0, st.merge_any);
	EXPECT_EQ(0, st.mergeable);
}

/* Bounds of the VMA holding @addr, from /proc/self/maps; -ENOENT if none. */
static int vma_bounds(const void *addr, unsigned long *start,
		      unsigned long *end)
{
	unsigned long a = (unsigned long)addr, s, e;
	char line[512];
	int ret = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/maps", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && s <= a && a < e) {
			*start = s;
			*end = e;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* Expect [@from, @to) to lie in one VMA. */
static void expect_one_vma(struct __test_metadata *_metadata,
			   const char *from, const char *to)
{
	unsigned long s1 = 0, e1 = 0, s2 = 0, e2 = 0;

	ASSERT_EQ(0, vma_bounds(from, &s1, &e1));
	ASSERT_EQ(0, vma_bounds(to - 1, &s2, &e2));
	EXPECT_EQ(s1, s2) TH_LOG("%p-%p is %lx-%lx and %lx-%lx", from, to,
				 s1, e1, s2, e2);
	EXPECT_EQ(e1, e2);
}

/* Two mmap() calls of @n pages each, the second right after the first. */
static char *map_two_halves(struct __test_metadata *_metadata,
			    FIXTURE_DATA(ksm_prctl) *self, size_t n)
{
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
	size_t len = n * self->ps;
	char *area;

	/* A reservation with guard pages, mapped over in two halves. */
	area = new_region(_metadata, self, 2 * n, MAP_PRIVATE);
	ASSERT_EQ(area, mmap(area, len, PROT_READ | PROT_WRITE, flags, -1, 0));
	memset(area, 1, len);
	ASSERT_EQ(area + len, mmap(area + len, len, PROT_READ | PROT_WRITE,
				   flags, -1, 0));
	return area;
}

/*
 * Under merge-any a new anonymous mapping is mergeable from the start, so
 * two adjacent mmap()s become one VMA, as they do without the prctl.
 */
TEST_F(ksm_prctl, new_mappings_merge_into_one_vma)
{
	const size_t n = 4;
	char *p;

	/* Without merge-any: the behaviour to keep. */
	p = map_two_halves(_metadata, self, n);
	expect_one_vma(_metadata, p, p + 2 * n * self->ps);
	EXPECT_EQ(0, ksm_vma_mergeable(0, p));

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	p = map_two_halves(_metadata, self, n);
	expect_one_vma(_metadata, p, p + 2 * n * self->ps);
	EXPECT_EQ(1, ksm_vma_mergeable(0, p));
}

/* ... and brk() keeps growing one heap VMA. */
TEST_F(ksm_prctl, brk_grows_one_vma)
{
	const int steps = 3;
	char *cur, *base;
	size_t pad;
	int i;

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	cur = sbrk(0);
	ASSERT_NE((void *)-1, cur);
	pad = -(uintptr_t)cur & (self->ps - 1);
	ASSERT_NE((void *)-1, sbrk(pad));
	base = cur + pad;
	for (i = 0; i < steps; i++) {
		char *page = sbrk(self->ps);

		ASSERT_EQ(base + i * self->ps, page);
		*page = 1;
	}
	expect_one_vma(_metadata, base, base + steps * self->ps);
	EXPECT_EQ(1, ksm_vma_mergeable(0, base));
	/* Give the pages back unless malloc grew the heap meanwhile. */
	if (sbrk(0) == base + steps * self->ps)
		ASSERT_NE((void *)-1, sbrk(-(intptr_t)(pad + steps * self->ps)));
}

/* Run this binary again in a child as the exec probe; return its status. */
static int run_probe(struct __test_metadata *_metadata,
		     FIXTURE_DATA(ksm_prctl) *self)
{
	int status;

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		char *argv[] = { "ksm_prctl_test", NULL };
		char *envp[] = { PROBE_ENV "=1", NULL };

		execve("/proc/self/exe", argv, envp);
		_exit(127);
	}
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_GT(64, WEXITSTATUS(status))
		TH_LOG("exec probe failed: %d", WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

/* Merge-any survives execve: the new image is merge-any from the start. */
TEST_F(ksm_prctl, execve_inherits)
{
	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	EXPECT_EQ(1 | 2 | 4, run_probe(_metadata, self))
		TH_LOG("bit 0: merge-any, bit 1: new mapping has mg, bit 2: clean stats");
}

/* ... and without it, the new image is not. */
TEST_F(ksm_prctl, execve_without_merge_any)
{
	EXPECT_EQ(4, run_probe(_metadata, self));
	/* The parent's own madvise() state is not inherited over exec. */
	ASSERT_EQ(0, madvise(new_region(_metadata, self, 1, MAP_PRIVATE),
			     self->ps, MADV_MERGEABLE));
	EXPECT_EQ(4, run_probe(_metadata, self));
}

/*
 * Merge-any survives execve while ksmd scans the execing process at full
 * speed: every one of many execs starts with merge-any on and its first
 * mapping mergeable. Bounded by count or time; a slow host runs fewer.
 */
TEST_F_TIMEOUT(ksm_prctl, execve_while_scanning, 600)
{
	const size_t n = 256;
	const unsigned int most = 200, least = 10;
	const double seconds = 90;
	unsigned int runs = 0;
	double start;
	char *p;

	EXPECT_PRCTL_OK(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	p = new_region(_metadata, self, n, MAP_PRIVATE);
	fill_same(p, n, ksm_unique_seed());
	ASSERT_EQ(0, ksm_write("pages_to_scan", "2000"));
	ASSERT_EQ(0, ksm_write("sleep_millisecs", "0"));
	ASSERT_EQ(0, ksm_write("run", "1"));
	start = ksm_now();
	while (runs < most && ksm_now() - start < seconds) {
		int code = run_probe(_metadata, self);

		ASSERT_EQ(1 | 2, code & (1 | 2))
			TH_LOG("exec %u: bit 0 merge-any, bit 1 mergeable", runs);
		runs++;
	}
	ASSERT_EQ(0, ksm_write("run", "0"));
	TH_LOG("%u execs in %.1f s", runs, ksm_now() - start);
	EXPECT_LE(least, runs);
}

TEST_HARNESS_MAIN
