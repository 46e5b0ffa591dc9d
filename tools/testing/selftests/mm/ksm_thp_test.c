// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
/*
 * KSM and transparent huge pages, with THP "always", "madvise" and "never".
 *
 * Four processes each map three 2 MiB-aligned regions:
 *
 *   main  four huge pages, each 25% zero pages, 40% pages shared with the
 *         same huge page of the other processes, 10% one page repeated,
 *         25% unique pages;
 *   few   one huge page with only 8 pages shared with the other processes;
 *   uniq  one huge page of unique pages.
 *
 * With use_zero_pages=1 every count is exact: after 3 full scans from a
 * reset, the main huge pages are split and merged as if they had been
 * small pages all along, while "few" (fewer mergeable pages than
 * huge_split_min_subpages) and "uniq" stay huge. Lowering the threshold to
 * 1 merges "few" too. khugepaged, made to scan everything twice, must not
 * collapse the merged ranges back. Every byte is verified after merging and
 * after writes that copy-on-write merged pages.
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

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE	14
#endif

#define THP_DIR		"/sys/kernel/mm/transparent_hugepage"
#define KHUGEPAGED_DIR	THP_DIR "/khugepaged"
#define HUGE_SIZE	(2UL << 20)
#define NPROC		4
#define NHUGE		4	/* huge pages in "main" */

/* Layout of one huge page of "main", in pages. */
#define ZERO_END	128	/* [0, 128): zero-filled */
#define SHARED_END	333	/* [128, 333): same in every process */
#define REPEAT_END	384	/* [333, 384): one page, repeated */
#define FEW_SHARED	8	/* "few": pages shared across processes */

enum region { MAIN, FEW, UNIQ, NREGIONS };
static const size_t region_huge[NREGIONS] = { NHUGE, 1, 1 };

FIXTURE(ksm_thp) {
	struct ksm_saved_knobs saved;
	char thp_saved[32];
	char khp_sleep[32], khp_pages[32];
	pid_t pid[NPROC];
	int cmd[NPROC], reply[NPROC];
	uintptr_t addr[NPROC][NREGIONS];
	size_t pages_per_huge;
};

FIXTURE_VARIANT(ksm_thp) {
	const char *thp;	/* transparent_hugepage/enabled */
	bool huge;		/* regions are backed by huge pages */
	bool zero_pages;	/* use_zero_pages */
};

FIXTURE_VARIANT_ADD(ksm_thp, always) {
	.thp = "always", .huge = true, .zero_pages = true };
FIXTURE_VARIANT_ADD(ksm_thp, madvise) {
	.thp = "madvise", .huge = true, .zero_pages = true };
FIXTURE_VARIANT_ADD(ksm_thp, never) {
	.thp = "never", .huge = false, .zero_pages = true };
FIXTURE_VARIANT_ADD(ksm_thp, always_no_zero_pages) {
	.thp = "always", .huge = true, .zero_pages = false };
FIXTURE_VARIANT_ADD(ksm_thp, never_no_zero_pages) {
	.thp = "never", .huge = false, .zero_pages = false };

static int sys_read(const char *path, char *buf, size_t len)
{
	ssize_t n = ksm_read_file(path, buf, len);

	if (n < 0)
		return (int)n;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Content of page @j of huge page @h of region @r in process @p. */
static uint64_t page_seed(int p, enum region r, size_t h, size_t j)
{
	switch (r) {
	case MAIN:
		if (j < ZERO_END)
			return 0;
		if (j < SHARED_END)
			return ksm_mix(0x1000000 + h * 4096 + j);
		if (j < REPEAT_END)
			return ksm_mix(0x2000000 + p * 64 + h);
		break;
	case FEW:
		if (j < FEW_SHARED)
			return ksm_mix(0x3000000 + j);
		break;
	default:
		break;
	}
	return ksm_mix(0x4000000 + ((uint64_t)p << 20) + (r << 16) + h * 4096 + j);
}

static void fill_or_check_page(char *page, uint64_t seed, bool check, bool *ok)
{
	if (!check) {
		if (seed)
			ksm_fill_page(page, seed);
		else
			memset(page, 0, ksm_page_size());
	} else if (seed ? !ksm_page_matches(page, seed) : !ksm_page_is_zero(page)) {
		*ok = false;
	}
}

/* Pages each process rewrites to copy-on-write merged pages. */
static bool cow_page(enum region r, size_t j)
{
	return r == MAIN && (j == 0 || j == 200 || j == 340);
}

static uint64_t cow_seed(int p, size_t h, size_t j)
{
	return ksm_mix(0x5000000 + p * 65536 + h * 4096 + j);
}

/* Fill (or verify) all regions of process @p; @cowed: after cow writes. */
static bool walk_regions(int p, char *const base[NREGIONS], bool check,
			 bool cowed)
{
	size_t ps = ksm_page_size(), per = HUGE_SIZE / ps, h, j;
	bool ok = true;
	int r;

	for (r = 0; r < NREGIONS; r++)
		for (h = 0; h < region_huge[r]; h++)
			for (j = 0; j < per; j++) {
				uint64_t seed = page_seed(p, r, h, j);

				if (cowed && cow_page(r, j))
					seed = cow_seed(p, h, j);
				fill_or_check_page(base[r] + (h * per + j) * ps,
						   seed, check, &ok);
			}
	return ok;
}

/* A 2 MiB-aligned anonymous VMA of @n huge pages starting exactly there. */
static char *map_aligned(size_t n)
{
	size_t len = n * HUGE_SIZE;
	char *raw, *p;

	raw = mmap(NULL, len + HUGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)raw + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1));
	if (p > raw)
		munmap(raw, p - raw);
	if (p + len < raw + len + HUGE_SIZE)
		munmap(p + len, raw + len + HUGE_SIZE - (p + len));
	return p;
}

/*
 * The child: map, fill and advise its regions, send their addresses, then
 * serve commands: 'v' verify, 'w' write the cow pages then verify. Replies
 * one byte, 1 for intact. Exits when the command pipe closes.
 */
static void child_main(int p, bool madv_huge, int cmd, int reply)
{
	char *base[NREGIONS];
	uintptr_t addrs[NREGIONS];
	size_t ps = ksm_page_size(), per = HUGE_SIZE / ps, h, j;
	char c, ok;
	int r;

	for (r = 0; r < NREGIONS; r++) {
		base[r] = map_aligned(region_huge[r]);
		if (!base[r])
			_exit(90);
		if (madv_huge &&
		    madvise(base[r], region_huge[r] * HUGE_SIZE, MADV_HUGEPAGE))
			_exit(91);
		addrs[r] = (uintptr_t)base[r];
	}
	walk_regions(p, base, false, false);
	for (r = 0; r < NREGIONS; r++)
		if (madvise(base[r], region_huge[r] * HUGE_SIZE, MADV_MERGEABLE))
			_exit(92);
	if (write(reply, addrs, sizeof(addrs)) != sizeof(addrs))
		_exit(93);
	while (read(cmd, &c, 1) == 1) {
		for (h = 0; c == 'w' && h < NHUGE; h++)
			for (j = 0; j < per; j++)
				if (cow_page(MAIN, j))
					ksm_fill_page(base[MAIN] + (h * per + j) * ps,
						      cow_seed(p, h, j));
		ok = walk_regions(p, base, true, c == 'w');
		if (write(reply, &ok, 1) != 1)
			_exit(94);
	}
	_exit(0);
}

FIXTURE_SETUP(ksm_thp)
{
	const char *why = ksm_skip_reason();
	char buf[128];
	int i;

	self->thp_saved[0] = '\0';
	self->khp_sleep[0] = '\0';
	for (i = 0; i < NPROC; i++)
		self->pid[i] = 0;
	if (why)
		SKIP(return, "%s", why);
	if (!ksm_file_exists("huge_split_min_subpages"))
		SKIP(return, "no huge_split_min_subpages: not our KSM");
	if (ksm_read_file(THP_DIR "/enabled", buf, sizeof(buf)) < 0)
		SKIP(return, "no transparent huge pages in this kernel");
	if (ksm_selected_word(buf, self->thp_saved, sizeof(self->thp_saved)))
		SKIP(return, "cannot parse " THP_DIR "/enabled: %s", buf);
	ASSERT_EQ(0, sys_read(KHUGEPAGED_DIR "/scan_sleep_millisecs",
			      self->khp_sleep, sizeof(self->khp_sleep)));
	ASSERT_EQ(0, sys_read(KHUGEPAGED_DIR "/pages_to_scan",
			      self->khp_pages, sizeof(self->khp_pages)));
	ASSERT_EQ(0, ksm_write_str(THP_DIR "/enabled", variant->thp));
	self->pages_per_huge = HUGE_SIZE / ksm_page_size();

	ksm_save_knobs(&self->saved);
	ASSERT_EQ(0, ksm_reset());
	ASSERT_EQ(0, ksm_fast_scanning());
	ASSERT_EQ(0, ksm_write("max_page_sharing", "256"));
	ASSERT_EQ(0, ksm_write("use_zero_pages", variant->zero_pages ? "1" : "0"));
	ASSERT_EQ(0, ksm_write("huge_split_min_subpages", "64"));

	for (i = 0; i < NPROC; i++) {
		int cmd[2], reply[2];

		ASSERT_EQ(0, pipe(cmd));
		ASSERT_EQ(0, pipe(reply));
		self->pid[i] = fork();
		ASSERT_LE(0, self->pid[i]);
		if (!self->pid[i]) {
			close(cmd[1]);
			close(reply[0]);
			child_main(i, !strcmp(variant->thp, "madvise"), cmd[0],
				   reply[1]);
		}
		close(cmd[0]);
		close(reply[1]);
		self->cmd[i] = cmd[1];
		self->reply[i] = reply[0];
		ASSERT_EQ((ssize_t)sizeof(self->addr[i]),
			  read(self->reply[i], self->addr[i], sizeof(self->addr[i])))
			TH_LOG("process %d did not set up", i);
	}
}

FIXTURE_TEARDOWN(ksm_thp)
{
	int i;

	for (i = 0; i < NPROC; i++) {
		if (self->pid[i] <= 0)
			continue;
		close(self->cmd[i]);
		close(self->reply[i]);
		kill(self->pid[i], SIGKILL);
		waitpid(self->pid[i], NULL, 0);
	}
	if (self->khp_sleep[0]) {
		ksm_write_str(KHUGEPAGED_DIR "/scan_sleep_millisecs", self->khp_sleep);
		ksm_write_str(KHUGEPAGED_DIR "/pages_to_scan", self->khp_pages);
	}
	if (self->thp_saved[0])
		ksm_write_str(THP_DIR "/enabled", self->thp_saved);
	if (self->pid[0] > 0) {
		EXPECT_EQ(0, ksm_reset());
		EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
	}
}

/* AnonHugePages of region @r of process @i, in kB. */
static long huge_kb(FIXTURE_DATA(ksm_thp) *self, int i, enum region r)
{
	unsigned long kb = 0;
	int err = ksm_smaps_lookup(self->pid[i], (void *)self->addr[i][r],
				   "AnonHugePages", &kb, NULL, NULL);

	return err ? err : (long)kb;
}

static void expect_huge(struct __test_metadata *_metadata,
			FIXTURE_DATA(ksm_thp) *self, enum region r, bool huge,
			const char *when)
{
	long want = huge ? (long)(region_huge[r] * HUGE_SIZE >> 10) : 0;
	int i;

	for (i = 0; i < NPROC; i++)
		EXPECT_EQ(want, huge_kb(self, i, r))
			TH_LOG("process %d region %d AnonHugePages %s", i, r, when);
}

/* Ask every process to verify (or cow-write and verify) its memory. */
static void expect_intact(struct __test_metadata *_metadata,
			  FIXTURE_DATA(ksm_thp) *self, char how)
{
	char ok = 0;
	int i;

	for (i = 0; i < NPROC; i++) {
		ASSERT_EQ(1, write(self->cmd[i], &how, 1));
		ASSERT_EQ(1, read(self->reply[i], &ok, 1));
		EXPECT_EQ(1, ok) TH_LOG("process %d found a corrupt page (%c)", i, how);
	}
}

/*
 * What merging "main" (plus "few" when @few) must give: per huge page,
 * each shared page is one KSM page mapped NPROC times and the repeated
 * page one KSM page per process.  Zero pages map the zero page, with
 * use_zero_pages or when KSM split their huge page (the split maps them
 * there); otherwise they merge into KSM pages of 256 mappers each.
 */
static void expect_counts(struct __test_metadata *_metadata,
			  const FIXTURE_VARIANT(ksm_thp) *variant, bool few)
{
	unsigned long shared = NHUGE * (SHARED_END - ZERO_END) +
			       NPROC * NHUGE;
	unsigned long sharing = NHUGE * (SHARED_END - ZERO_END) * (NPROC - 1) +
				NPROC * NHUGE * (REPEAT_END - SHARED_END - 1);
	unsigned long zero = NPROC * NHUGE * ZERO_END;

	if (few) {
		shared += FEW_SHARED;
		sharing += FEW_SHARED * (NPROC - 1);
	}
	if (!variant->zero_pages && !variant->huge) {
		shared += zero / 256;
		sharing += zero - zero / 256;
		zero = 0;
	}
	EXPECT_EQ(shared, ksm_get("pages_shared"));
	EXPECT_EQ(sharing, ksm_get("pages_sharing"));
	EXPECT_EQ(zero, ksm_get("ksm_zero_pages"));
}

/* Let khugepaged scan everything twice (bounded), then stop it again. */
static int khugepaged_two_scans(void)
{
	char buf[32];
	unsigned long base, cur;
	double deadline = ksm_now() + KSM_SCAN_TIMEOUT_SEC;
	int err;

	err = sys_read(KHUGEPAGED_DIR "/full_scans", buf, sizeof(buf));
	if (err)
		return err;
	base = strtoul(buf, NULL, 10);
	if (ksm_write_str(KHUGEPAGED_DIR "/pages_to_scan", "65536") ||
	    ksm_write_str(KHUGEPAGED_DIR "/scan_sleep_millisecs", "1"))
		return -EIO;
	do {
		usleep(20000);
		err = sys_read(KHUGEPAGED_DIR "/full_scans", buf, sizeof(buf));
		if (err)
			return err;
		cur = strtoul(buf, NULL, 10);
		if (ksm_now() > deadline)
			return -ETIMEDOUT;
	} while (cur < base + 2);
	return ksm_write_str(KHUGEPAGED_DIR "/scan_sleep_millisecs", "10000");
}

TEST_F_TIMEOUT(ksm_thp, merge_split_and_keep, 900)
{
	unsigned long split0 = ksm_get("huge_pages_split");
	int err;

	/* Before merging: huge pages where THP is on, none where it is off. */
	expect_huge(_metadata, self, MAIN, variant->huge, "before merging");
	expect_huge(_metadata, self, FEW, variant->huge, "before merging");
	expect_huge(_metadata, self, UNIQ, variant->huge, "before merging");

	KSM_RUN_PASSES(3);
	/* "few" merges only where it is not a huge page to begin with. */
	expect_counts(_metadata, variant, !variant->huge);
	expect_huge(_metadata, self, MAIN, false, "after merging");
	expect_huge(_metadata, self, FEW, variant->huge, "after merging");
	expect_huge(_metadata, self, UNIQ, variant->huge, "after merging");
	EXPECT_EQ(variant->huge ? NPROC * NHUGE : 0,
		  ksm_get("huge_pages_split") - split0);
	if (variant->huge)
		EXPECT_LE(1UL, ksm_get("huge_pages_kept"));
	expect_intact(_metadata, self, 'v');

	if (variant->huge) {
		/* khugepaged must not copy merged pages back into huge ones. */
		err = khugepaged_two_scans();
		ASSERT_EQ(0, err) TH_LOG("khugepaged full scans: %s", strerror(-err));
		expect_huge(_metadata, self, MAIN, false, "after khugepaged");
		expect_counts(_metadata, variant, false);

		/* Any mergeable page justifies a split now. */
		ASSERT_EQ(0, ksm_write("huge_split_min_subpages", "1"));
		KSM_RUN_PASSES(3);
		expect_counts(_metadata, variant, true);
		expect_huge(_metadata, self, FEW, false, "with threshold 1");
		expect_huge(_metadata, self, UNIQ, true, "with threshold 1");
		EXPECT_EQ(NPROC * NHUGE + NPROC,
			  ksm_get("huge_pages_split") - split0);
		expect_intact(_metadata, self, 'v');
	}

	/* Copy-on-write of merged pages: a zero, a shared and a repeated one. */
	expect_intact(_metadata, self, 'w');
	if (variant->zero_pages || variant->huge)
		EXPECT_EQ((unsigned long)NPROC * NHUGE * (ZERO_END - 1),
			  ksm_get("ksm_zero_pages"));
}

/* huge_split_min_subpages: 0 up to the pages of a PMD-sized THP. */
TEST_F(ksm_thp, threshold_knob)
{
	char max[16];

	snprintf(max, sizeof(max), "%zu", self->pages_per_huge);
	EXPECT_EQ(0, ksm_write("huge_split_min_subpages", "0"));
	EXPECT_EQ(0, ksm_write("huge_split_min_subpages", max));
	EXPECT_EQ(self->pages_per_huge, ksm_get("huge_split_min_subpages"));
	snprintf(max, sizeof(max), "%zu", self->pages_per_huge + 1);
	EXPECT_EQ(-EINVAL, ksm_write("huge_split_min_subpages", max));
	EXPECT_EQ(-EINVAL, ksm_write("huge_split_min_subpages", "-1"));
	EXPECT_EQ(-EINVAL, ksm_write("huge_split_min_subpages", "many"));
	EXPECT_EQ(-EINVAL, ksm_write("huge_split_min_subpages", "\n"));
	EXPECT_EQ(self->pages_per_huge, ksm_get("huge_split_min_subpages"));
}

/* Pages 0..7 alike, so that merging splits the THP; no page zero. */
static uint64_t split_test_seed(size_t j)
{
	return ksm_mix(0x6000000 + (j < 8 ? 0 : j));
}

/*
 * A split claims as KSM zero pages only the zero pages it made: a page of
 * the folio's range that already mapped the zero page (read back after
 * MADV_DONTNEED of a page of a PTE-mapped THP) stays a plain zero page.
 */
TEST(split_claims_only_its_zero_pages)
{
	size_t ps = ksm_page_size(), per = HUGE_SIZE / ps, j;
	unsigned long split0, kb = 0;
	struct ksm_saved_knobs saved;
	const size_t hole = 100;
	char thp_saved[32], buf[128];
	const char *why = ksm_skip_reason();
	char *p;
	bool ok = true;

	if (why)
		SKIP(return, "%s", why);
	if (!ksm_file_exists("huge_split_min_subpages"))
		SKIP(return, "no huge_split_min_subpages: not our KSM");
	if (ksm_read_file(THP_DIR "/enabled", buf, sizeof(buf)) < 0 ||
	    ksm_selected_word(buf, thp_saved, sizeof(thp_saved)))
		SKIP(return, "no transparent huge pages in this kernel");
	ASSERT_EQ(0, ksm_write_str(THP_DIR "/enabled", "madvise"));
	p = map_aligned(1);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, madvise(p, HUGE_SIZE, MADV_HUGEPAGE));
	for (j = 0; j < per; j++)
		ksm_fill_page(p + j * ps, split_test_seed(j));
	ASSERT_EQ(0, ksm_smaps_lookup(0, p, "AnonHugePages", &kb, NULL, NULL));
	if (kb != HUGE_SIZE >> 10) {
		munmap(p, HUGE_SIZE);
		ksm_write_str(THP_DIR "/enabled", thp_saved);
		SKIP(return, "no huge page for the region (AnonHugePages %lu kB)", kb);
	}
	ksm_save_knobs(&saved);
	ASSERT_EQ(0, ksm_reset());
	ASSERT_EQ(0, ksm_fast_scanning());
	ASSERT_EQ(0, ksm_write("use_zero_pages", "1"));
	ASSERT_EQ(0, ksm_write("huge_split_min_subpages", "1"));

	/* The PMD becomes a page table; its hole reads as the zero page. */
	ASSERT_EQ(0, madvise(p + hole * ps, ps, MADV_DONTNEED));
	ASSERT_TRUE(ksm_page_is_zero(p + hole * ps));

	split0 = ksm_get("huge_pages_split");
	ASSERT_EQ(0, madvise(p, HUGE_SIZE, MADV_MERGEABLE));
	KSM_RUN_PASSES(3);
	EXPECT_EQ(1UL, ksm_get("huge_pages_split") - split0);
	EXPECT_EQ(1UL, ksm_get("pages_shared"));
	EXPECT_EQ(7UL, ksm_get("pages_sharing"));
	EXPECT_EQ(0UL, ksm_get("ksm_zero_pages"));
	for (j = 0; j < per; j++) {
		if (j == hole)
			ok &= ksm_page_is_zero(p + j * ps);
		else
			ok &= ksm_page_matches(p + j * ps, split_test_seed(j));
	}
	EXPECT_TRUE(ok);

	munmap(p, HUGE_SIZE);
	EXPECT_EQ(0, ksm_reset());
	EXPECT_EQ(0, ksm_restore_knobs(&saved));
	ksm_write_str(THP_DIR "/enabled", thp_saved);
}

TEST_HARNESS_MAIN
