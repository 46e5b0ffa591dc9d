// SPDX-License-Identifier: GPL-2.0
/*
 * Parallel scanning: the ksmd_threads knob and what several ksmd threads
 * must never change.
 *
 * Several threads split every pass into blocks (2 MiB of one mm each) and
 * share the trees. Whatever the number of threads, the same memory must
 * end up merged exactly as with one thread, nothing may be lost when a
 * thread runs out of budget in the middle of a block (small
 * pages_to_scan), when the thread count changes while ksmd runs, when KSM
 * is stopped or unmerged mid-pass, or when an mm exits while a thread
 * holds one of its blocks.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "ksm_test_util.h"
#include "ksm_test_harness.h"

/* Pages per process: 8 blocks of 2 MiB, every kind of page in each. */
#define NPAGES		4096
/* Contents repeated within one process. */
#define NGROUPS		8

/*
 * What page @i of a process holds: i % 4 == 0: a content the other
 * process has at the same index; 1: one of NGROUPS contents of this
 * process only; 2, 3: a content of its own.
 */
static uint64_t page_seed(uint64_t base, int proc, size_t i)
{
	switch (i % 4) {
	case 0:
		return base + i;
	case 1:
		return base + (1ULL << 32) * (proc + 1) + (i / 4) % NGROUPS;
	default:
		return base + (1ULL << 40) * (proc + 1) + i;
	}
}

/* KSM pages and extra mappers two such processes must end up with. */
#define WANT_SHARED	(NPAGES / 4 + 2 * NGROUPS)
#define WANT_SHARING	(NPAGES / 4 + 2 * (NPAGES / 4 - NGROUPS))

static void fill(char *p, uint64_t base, int proc)
{
	size_t i, ps = ksm_page_size();

	for (i = 0; i < NPAGES; i++)
		ksm_fill_page(p + i * ps, page_seed(base, proc, i));
}

/* Number of pages of @p not holding what fill() put there. */
static size_t count_bad(const char *p, uint64_t base, int proc)
{
	size_t i, bad = 0, ps = ksm_page_size();

	for (i = 0; i < NPAGES; i++)
		bad += !ksm_page_matches(p + i * ps, page_seed(base, proc, i));
	return bad;
}

/* Number of kernel threads called "ksmd" or "ksmd/N". */
static int count_ksmd_threads(void)
{
	char path[64], comm[32];
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		if (ksm_read_file(path, comm, sizeof(comm)) <= 0)
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		if (!strcmp(comm, "ksmd") || !strncmp(comm, "ksmd/", 5))
			n++;
	}
	closedir(d);
	return n;
}

FIXTURE(ksm_threads) {
	struct ksm_saved_knobs saved;
	uint64_t base;
	char *mine;
	pid_t child;
	int to_child[2];	/* one byte: check your pages and exit */
	int from_child[2];	/* one byte: filled, or a check result */
};

FIXTURE_SETUP(ksm_threads)
{
	const char *why = ksm_skip_reason();

	self->mine = NULL;
	self->child = 0;
	if (why)
		SKIP(return, "%s", why);
	if (!ksm_file_exists("ksmd_threads"))
		SKIP(return, "no ksmd_threads knob (not our KSM)");
	ksm_save_knobs(&self->saved);
	ASSERT_EQ(0, ksm_counting_setup(true));
	self->base = ksm_unique_seed() << 8;
}

FIXTURE_TEARDOWN(ksm_threads)
{
	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	if (self->mine)
		ksm_unmap(self->mine, NPAGES);
	EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
	EXPECT_EQ(1, count_ksmd_threads());
}

/*
 * Fork a child that fills NPAGES pages as process 1, makes them mergeable
 * and waits; on a byte from the parent it checks them, answers "0" if all
 * are intact, and exits.
 */
static void start_child(struct __test_metadata *_metadata,
			FIXTURE_DATA(ksm_threads) *self)
{
	char c;

	ASSERT_EQ(0, pipe(self->to_child));
	ASSERT_EQ(0, pipe(self->from_child));
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		char *p = ksm_map(NPAGES), ok;

		if (p == MAP_FAILED)
			_exit(1);
		fill(p, self->base, 1);
		if (madvise(p, NPAGES * ksm_page_size(), MADV_MERGEABLE))
			_exit(2);
		if (write(self->from_child[1], "r", 1) != 1)
			_exit(3);
		if (read(self->to_child[0], &ok, 1) != 1)
			_exit(4);
		ok = count_bad(p, self->base, 1) ? '1' : '0';
		_exit(write(self->from_child[1], &ok, 1) == 1 ? 0 : 5);
	}
	ASSERT_EQ(1, read(self->from_child[0], &c, 1));
}

/* Our own NPAGES pages, as process 0. */
static void start_mine(struct __test_metadata *_metadata,
		       FIXTURE_DATA(ksm_threads) *self)
{
	self->mine = ksm_map(NPAGES);
	ASSERT_NE(MAP_FAILED, self->mine);
	fill(self->mine, self->base, 0);
	ASSERT_EQ(0, madvise(self->mine, NPAGES * ksm_page_size(),
			     MADV_MERGEABLE));
}

/* Tell the child to check its pages; expect them intact. */
static void finish_child(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ksm_threads) *self)
{
	int status;
	char res;

	ASSERT_EQ(1, write(self->to_child[1], "c", 1));
	ASSERT_EQ(1, read(self->from_child[0], &res, 1));
	EXPECT_EQ('0', res) TH_LOG("the child's pages changed");
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
}

/* Both processes' pages merged exactly as one thread merges them. */
static void expect_merged(struct __test_metadata *_metadata,
			  FIXTURE_DATA(ksm_threads) *self)
{
	KSM_EXPECT("pages_shared", WANT_SHARED);
	KSM_EXPECT("pages_sharing", WANT_SHARING);
	KSM_EXPECT("pages_unshared", NPAGES);
	KSM_EXPECT("pages_volatile", 0);
	EXPECT_EQ((long)NPAGES / 2, ksm_read_merging_pages(0));
	EXPECT_EQ((long)NPAGES / 2, ksm_read_merging_pages(self->child));
	EXPECT_EQ(0UL, (unsigned long)count_bad(self->mine, self->base, 0));
}

/*
 * The child gone, its items are gone and we are the only mapper of the
 * KSM pages we shared with it (they stay KSM pages, as in 6.12).
 */
static void expect_alone(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ksm_threads) *self)
{
	struct ksm_proc_stat st = ksm_expect_proc_stat(_metadata, 0);

	KSM_EXPECT("pages_shared", NPAGES / 4 + NGROUPS);
	KSM_EXPECT("pages_sharing", NPAGES / 4 - NGROUPS);
	KSM_EXPECT("pages_unshared", NPAGES / 2);
	EXPECT_EQ((long)NPAGES, st.rmap_items);
	EXPECT_EQ((long)NPAGES / 2, st.merging_pages);
	EXPECT_EQ(0UL, (unsigned long)count_bad(self->mine, self->base, 0));
}

/* The knob: default 1, range 1 to 16, one kernel thread per unit. */
TEST_F(ksm_threads, knob)
{
	static const char *const bad[] = {
		"0", "17", "-1", "abc", "1.5", "4294967297", "\n", " 2",
	};
	size_t i;
	int n;

	KSM_EXPECT("ksmd_threads", 1);
	EXPECT_EQ(1, count_ksmd_threads());
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_EQ(-EINVAL, ksm_write("ksmd_threads", bad[i]))
			TH_LOG("ksmd_threads=\"%s\"", bad[i]);
	KSM_EXPECT("ksmd_threads", 1);

	for (n = 1; n <= 16; n *= 2) {
		ASSERT_EQ(0, ksm_write_ul("ksmd_threads", n));
		KSM_EXPECT("ksmd_threads", n);
		EXPECT_EQ(n, count_ksmd_threads());
	}
	ASSERT_EQ(0, ksm_write("ksmd_threads", "3"));
	EXPECT_EQ(3, count_ksmd_threads());
	ASSERT_EQ(0, ksm_write("ksmd_threads", "1"));
	EXPECT_EQ(1, count_ksmd_threads());
}

/*
 * Four threads with a budget far smaller than a block: every block is
 * parked and resumed many times per pass. The result is exactly what one
 * thread gives, and the content of every page is intact.
 */
TEST_F_TIMEOUT(ksm_threads, exact_merge, 600)
{
	ASSERT_EQ(0, ksm_write("ksmd_threads", "4"));
	ASSERT_EQ(0, ksm_write("pages_to_scan", "37"));
	start_child(_metadata, self);
	start_mine(_metadata, self);
	KSM_RUN_PASSES(2);
	expect_merged(_metadata, self);
	finish_child(_metadata, self);

	/* The child's exit leaves us the only mapper of what it shared. */
	KSM_RUN_PASSES(2);
	expect_alone(_metadata, self);
}

/* Changing the thread count while ksmd runs loses nothing. */
TEST_F_TIMEOUT(ksm_threads, count_changes_mid_pass, 600)
{
	static const char *const counts[] = { "3", "1", "4", "2", "1", "2" };
	unsigned long start;
	size_t i;

	ASSERT_EQ(0, ksm_write("pages_to_scan", "50"));
	start_child(_metadata, self);
	start_mine(_metadata, self);
	start = ksm_get("full_scans");
	ASSERT_EQ(0, ksm_write("run", "1"));
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		ASSERT_EQ(0, ksm_write("ksmd_threads", counts[i]));
		EXPECT_EQ(atoi(counts[i]), count_ksmd_threads());
		usleep(20000);
	}
	ASSERT_EQ(0, ksm_write("run", "0"));
	/* Whatever pass ksmd was in, two more whole ones merge all. */
	KSM_RUN_PASSES(3);
	EXPECT_LE(start + 3, ksm_get("full_scans"));
	expect_merged(_metadata, self);
	finish_child(_metadata, self);
}

/*
 * Stopping mid-pass parks the blocks in progress; run=2 then unmerges
 * everything and forgets them, and a new start merges again from scratch.
 */
TEST_F_TIMEOUT(ksm_threads, stop_and_unmerge_mid_pass, 600)
{
	unsigned long scanned;
	double deadline;

	ASSERT_EQ(0, ksm_write("ksmd_threads", "3"));
	ASSERT_EQ(0, ksm_write("pages_to_scan", "29"));
	start_child(_metadata, self);
	start_mine(_metadata, self);
	ASSERT_EQ(0, ksm_write("run", "1"));
	/* Let the threads get well into the first pass, not through it. */
	deadline = ksm_now() + KSM_SCAN_TIMEOUT_SEC;
	do {
		scanned = ksm_get("pages_scanned");
		ASSERT_GT(deadline, ksm_now())
			TH_LOG("ksmd scanned only %lu pages", scanned);
		usleep(2000);
	} while (scanned < NPAGES / 2);
	ASSERT_EQ(0, ksm_write("run", "0"));
	ASSERT_EQ(0, ksm_write("run", "2"));
	KSM_EXPECT("pages_shared", 0);
	KSM_EXPECT("pages_sharing", 0);
	KSM_EXPECT("pages_unshared", 0);
	KSM_EXPECT("full_scans", 0);
	EXPECT_EQ(0L, ksm_read_merging_pages(0));
	EXPECT_EQ(0L, ksm_expect_proc_stat(_metadata, 0).rmap_items);
	EXPECT_EQ(0L, ksm_expect_proc_stat(_metadata, self->child).rmap_items);

	ASSERT_EQ(0, ksm_write("run", "0"));
	KSM_RUN_PASSES(2);
	expect_merged(_metadata, self);
	finish_child(_metadata, self);
}

/*
 * An mm that exits while threads hold (or have parked) its blocks is
 * reaped once they let go: its items and its share of the counters go.
 */
TEST_F_TIMEOUT(ksm_threads, exit_while_claimed, 600)
{
	int status;

	ASSERT_EQ(0, ksm_write("ksmd_threads", "4"));
	ASSERT_EQ(0, ksm_write("pages_to_scan", "23"));
	start_child(_metadata, self);
	start_mine(_metadata, self);
	KSM_RUN_PASSES(2);
	expect_merged(_metadata, self);

	ASSERT_EQ(0, ksm_write("run", "1"));
	usleep(5000);
	kill(self->child, SIGKILL);
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = 0;
	ASSERT_EQ(0, ksm_write("run", "0"));
	KSM_RUN_PASSES(3);
	expect_alone(_metadata, self);
}

/* Mappers per KSM page in joins_respect_max_page_sharing. */
#define JOIN_MAX_SHARING	16

static int pfn_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Frames mapping our NPAGES pages: how many distinct ones, and the most
 * pages one of them maps.
 */
static int count_frames(const char *p, size_t *frames, size_t *most)
{
	uint64_t *pfn = calloc(NPAGES, sizeof(*pfn));
	size_t i, run = 0;

	if (!pfn)
		return -ENOMEM;
	for (i = 0; i < NPAGES; i++) {
		int err = ksm_pfn(p + i * ksm_page_size(), &pfn[i]);

		if (err) {
			free(pfn);
			return err;
		}
	}
	qsort(pfn, NPAGES, sizeof(*pfn), pfn_cmp);
	*frames = 0;
	*most = 0;
	for (i = 0; i < NPAGES; i++) {
		run = i && pfn[i] == pfn[i - 1] ? run + 1 : 1;
		*frames += run == 1;
		if (run > *most)
			*most = run;
	}
	free(pfn);
	return 0;
}

/*
 * Four threads merge pages of one content into the same KSM pages, each
 * from its own blocks: max_page_sharing holds exactly, and two passes
 * merge every page, as with one thread.
 */
TEST_F_TIMEOUT(ksm_threads, joins_respect_max_page_sharing, 600)
{
	const unsigned long want_shared = NPAGES / JOIN_MAX_SHARING;
	size_t i, frames, most;
	int err;

	ASSERT_EQ(0, ksm_write_ul("max_page_sharing", JOIN_MAX_SHARING));
	ASSERT_EQ(0, ksm_write("ksmd_threads", "4"));
	ASSERT_EQ(0, ksm_write("pages_to_scan", "1000"));
	self->mine = ksm_map(NPAGES);
	ASSERT_NE(MAP_FAILED, self->mine);
	for (i = 0; i < NPAGES; i++)
		ksm_fill_page(self->mine + i * ksm_page_size(), self->base);
	ASSERT_EQ(0, madvise(self->mine, NPAGES * ksm_page_size(),
			     MADV_MERGEABLE));

	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_shared", want_shared);
	KSM_EXPECT("pages_sharing", NPAGES - want_shared);
	KSM_EXPECT("stable_node_chains", 1);
	KSM_EXPECT("stable_node_dups", want_shared);
	EXPECT_EQ((long)NPAGES, ksm_read_merging_pages(0));

	err = count_frames(self->mine, &frames, &most);
	if (err == -EPERM)
		SKIP(return, "PFNs hidden in /proc/self/pagemap");
	ASSERT_EQ(0, err);
	EXPECT_EQ(want_shared, frames);
	EXPECT_EQ((size_t)JOIN_MAX_SHARING, most);
	EXPECT_TRUE(ksm_pages_match(self->mine, NPAGES, self->base));
}

TEST_HARNESS_MAIN
