// SPDX-License-Identifier: GPL-2.0
/*
 * KSM at scale: many mappers of one KSM page, many VMAs under one
 * anon_vma, many registered processes, a huge sparse mergeable mapping
 * and a stable tree with many keys.  No KSM operation may cost more the
 * more mappers, VMAs or processes there are; these tests build each of
 * those situations and check that the result is exact: every counter in
 * /sys/kernel/mm/ksm, the per-process ksm_stat, which page frame every
 * page maps (/proc/PID/pagemap) and every byte of data.
 *
 * Each step prints how long it took ("time: ..." lines).  Nothing here
 * asserts on time: speed targets belong to the bench.  Every wait for
 * ksmd counts full scans and gives up when a single full scan takes
 * longer than a generous bound (KSM_SCAN_TIMEOUT_SEC, 8 times that in
 * the big profile).
 *
 * Every test runs twice: with max_page_sharing=256 (variant max256; a
 * content with more mappers gets several KSM pages, each filled to 256
 * before the next is made) and with max_page_sharing = every page of the
 * workload (variant whole; one KSM page per content).
 *
 *   many_mappers  3 processes x 8 MiB of 'c' merge into one content;
 *                 rewritten as 'd' with one 'e' page each, they merge
 *                 again; then MADV_UNMERGEABLE of half of one process,
 *                 the exit of another, and run=2.
 *   many_vmas     2000 pages of one content, mprotect()ed into 2000 VMAs
 *                 under one anon_vma and shared with a forked child;
 *                 merged, then every KSM page migrated with move_pages()
 *                 to node 1 and back to node 0 (where node 1 exists), the
 *                 child exits, run=2.
 *   many_procs    100 processes, each with 2 pages every process has and
 *                 2 of its own; merged, then all exit.
 *   sparse_64g    a 64 GiB MAP_NORESERVE mergeable mapping with 1000 pages
 *                 present, in pairs of equal content; the time of a full
 *                 scan over it is printed.
 *   many_keys     32768 tracked pages: 5000 contents twice each, the rest
 *                 unique; then MADV_UNMERGEABLE of all of it.
 *
 * Profiles: without KSM_SCALE in the environment, the sizes above keep
 * each test case to seconds under TCG (about 35 s for all ten on the
 * debug kernel of make check).  KSM_SCALE=big, for long runs such as
 * make stress, selects 3 x 128 MiB, 20000 VMAs, 1000 processes and
 * 524288 tracked pages with 100000 contents twice each (2 GiB in one
 * process).
 *
 * Needs root and KSM; the migration step needs NUMA nodes 0 and 1 and
 * otherwise only moves pages to the node they are on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "ksm_test_util.h"
#include "ksm_test_harness.h"

#ifndef MAP_NORESERVE
#define MAP_NORESERVE		0x4000
#endif
#ifndef MPOL_MF_MOVE_ALL
#define MPOL_MF_MOVE_ALL	(1 << 2)
#endif

/* Most children one test keeps at a time (many_procs, big profile). */
#define MAX_CHILDREN		1100
/* Parent ends of the worker pipes of one test. */
#define MAX_FDS			16
/* kselftest's own per-test bound; make check bounds the binary anyway. */
#define SCALE_TEST_TIMEOUT	3600

FIXTURE(ksm_scale) {
	struct ksm_saved_knobs saved;
	bool big;		/* KSM_SCALE=big */
	bool ours;		/* our KSM: stable_node_chains/dups exact too */
	unsigned int bound;	/* seconds one full scan (or reply) may take */
	size_t ps;
	pid_t *pids;		/* children not reaped yet */
	size_t npids;
	int fds[MAX_FDS];	/* parent ends of worker pipes */
	int nfds;
	char *region;		/* from ksm_map_flags(), unmapped at the end */
	size_t region_pages;
};

FIXTURE_VARIANT(ksm_scale) {
	bool whole;		/* max_page_sharing = all pages of the test */
};

FIXTURE_VARIANT_ADD(ksm_scale, max256) {
	.whole = false,
};

FIXTURE_VARIANT_ADD(ksm_scale, whole) {
	.whole = true,
};

FIXTURE_SETUP(ksm_scale)
{
	const char *why = ksm_skip_reason(), *scale = getenv("KSM_SCALE");

	self->pids = NULL;
	self->npids = 0;
	self->nfds = 0;
	self->region = NULL;
	self->ps = ksm_page_size();
	if (why)
		SKIP(return, "%s", why);
	self->big = scale && !strcmp(scale, "big");
	self->bound = KSM_SCAN_TIMEOUT_SEC * (self->big ? 8 : 1);
	self->ours = ksm_file_exists("merge_fresh_frames");
	self->pids = calloc(MAX_CHILDREN, sizeof(*self->pids));
	ASSERT_NE(NULL, self->pids);
	/* A child that died must fail a write to its pipe, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	ksm_save_knobs(&self->saved);
	/* smart_scan=0: a page without a twin always counts as unshared. */
	ASSERT_EQ(0, ksm_counting_setup(false));
	TH_LOG("profile: %s", self->big ? "big (KSM_SCALE=big)" : "default");
}

FIXTURE_TEARDOWN(ksm_scale)
{
	size_t i;
	int j;

	for (i = 0; i < self->npids; i++) {
		if (self->pids[i] <= 0)
			continue;
		kill(self->pids[i], SIGKILL);
		waitpid(self->pids[i], NULL, 0);
	}
	for (j = 0; j < self->nfds; j++)
		close(self->fds[j]);
	if (self->region)
		ksm_unmap(self->region, self->region_pages);
	free(self->pids);
	EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
}

/* ------------------------------------------------------------------ */
/* Timing and waiting                                                 */
/* ------------------------------------------------------------------ */

static void log_time(struct __test_metadata *_metadata, const char *what,
		     double since)
{
	TH_LOG("time: %s: %.2f s", what, ksm_now() - since);
}

/* Let ksmd do @passes more full scans, or fail; print how long it took. */
static void ksmd_passes(struct __test_metadata *_metadata,
			FIXTURE_DATA(ksm_scale) *self, unsigned int passes,
			const char *what)
{
	struct ksm_scan_run run = {
		.min_passes = passes, .max_passes = passes,
		.bound = self->bound,
	};
	int err = ksm_run_scans(&run);

	ASSERT_EQ(0, err)
		TH_LOG("%s: ksmd: full_scans %lu -> %lu, wanted +%u, at most %u s for each: %s",
		       what, run.base, run.base + run.passes, passes,
		       self->bound, strerror(-err));
	if (run.last >= 0)
		TH_LOG("time: %s: %u full scans %.2f s, the last one %.2f s",
		       what, passes, run.elapsed, run.last);
	else
		TH_LOG("time: %s: %u full scans %.2f s", what, passes,
		       run.elapsed);
}

/* run=2: unmerge everything (the write returns when it is done). */
static void unmerge_all(struct __test_metadata *_metadata, const char *what)
{
	double t = ksm_now();

	ASSERT_EQ(0, ksm_write("run", "2"));
	log_time(_metadata, what, t);
}

/* ------------------------------------------------------------------ */
/* Expected counters                                                  */
/* ------------------------------------------------------------------ */

struct ksm_want {
	unsigned long shared;
	unsigned long sharing;
	unsigned long unshared;
	unsigned long chains;	/* contents with more than one KSM page */
	unsigned long dups;	/* KSM pages of those contents */
};

/*
 * Add @n pages of one content, all merged from scratch with at most @max
 * mappers per KSM page.  A content gets another KSM page only when every
 * one it has is full; the pages that open it are a pair from the unstable
 * tree, so a single page left over stays unshared.
 */
static void want_content(struct ksm_want *w, unsigned long n,
			 unsigned long max)
{
	unsigned long copies = n / max, rest = n % max, lone = 0;

	if (rest >= 2)
		copies++;
	else
		lone = rest;
	w->shared += copies;
	w->sharing += n - copies - lone;
	w->unshared += lone;
	if (copies > 1) {
		w->chains++;
		w->dups += copies;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Add @n merged pages of one content from the frames they map (sorted in
 * place): one KSM page per distinct frame.  Returns the largest number
 * of these pages mapping one frame.
 */
static unsigned long want_frames(struct ksm_want *w, uint64_t *pfn, size_t n)
{
	unsigned long distinct = 0, run = 0, most = 0;
	size_t i;

	qsort(pfn, n, sizeof(*pfn), cmp_u64);
	for (i = 0; i < n; i++) {
		if (i && pfn[i] == pfn[i - 1]) {
			run++;
		} else {
			distinct++;
			run = 1;
		}
		if (run > most)
			most = run;
	}
	w->shared += distinct;
	w->sharing += n - distinct;
	if (distinct > 1) {
		w->chains++;
		w->dups += distinct;
	}
	return most;
}

/* The global counters say exactly @w (and KSM is otherwise idle). */
static void expect_counts(struct __test_metadata *_metadata,
			  FIXTURE_DATA(ksm_scale) *self,
			  const struct ksm_want *w, const char *when)
{
	TH_LOG("%s: shared %lu sharing %lu unshared %lu chains %lu dups %lu",
	       when, ksm_get("pages_shared"), ksm_get("pages_sharing"),
	       ksm_get("pages_unshared"), ksm_get("stable_node_chains"),
	       ksm_get("stable_node_dups"));
	EXPECT_EQ(w->shared, ksm_get("pages_shared")) TH_LOG("%s", when);
	EXPECT_EQ(w->sharing, ksm_get("pages_sharing")) TH_LOG("%s", when);
	EXPECT_EQ(w->unshared, ksm_get("pages_unshared")) TH_LOG("%s", when);
	EXPECT_EQ(0UL, ksm_get("pages_volatile")) TH_LOG("%s", when);
	EXPECT_EQ(0UL, ksm_get("ksm_zero_pages")) TH_LOG("%s", when);
	if (!self->ours)
		return;
	EXPECT_EQ(w->chains, ksm_get("stable_node_chains")) TH_LOG("%s", when);
	EXPECT_EQ(w->dups, ksm_get("stable_node_dups")) TH_LOG("%s", when);
}

/* What the page frames show agrees with what the counters must say. */
static void expect_same(struct __test_metadata *_metadata,
			const struct ksm_want *frames,
			const struct ksm_want *want, const char *when)
{
	EXPECT_EQ(want->shared, frames->shared)
		TH_LOG("%s: distinct KSM page frames", when);
	EXPECT_EQ(want->sharing, frames->sharing)
		TH_LOG("%s: pages mapping a KSM frame mapped before", when);
	EXPECT_EQ(want->chains, frames->chains)
		TH_LOG("%s: contents with several KSM frames", when);
	EXPECT_EQ(want->dups, frames->dups) TH_LOG("%s: frames of those", when);
}

/* max_page_sharing for a test of @total pages, per the variant. */
static unsigned long set_max_sharing(struct __test_metadata *_metadata,
				     const FIXTURE_VARIANT(ksm_scale) *variant,
				     unsigned long total)
{
	unsigned long max = variant->whole ? total : 256;
	int err;

	if (max < 2)
		max = 2;
	err = ksm_write_ul("max_page_sharing", max);
	ASSERT_EQ(0, err) TH_LOG("max_page_sharing=%lu: %s", max, strerror(-err));
	TH_LOG("max_page_sharing %lu", max);
	return max;
}

/* Per-process view: @merging pages merged out of @items tracked ones. */
static void expect_proc(struct __test_metadata *_metadata, pid_t pid,
			long items, long merging)
{
	struct ksm_proc_stat st = ksm_expect_proc_stat(_metadata, pid);

	EXPECT_EQ(items, st.rmap_items) TH_LOG("ksm_rmap_items of %d", pid);
	EXPECT_EQ(merging, st.merging_pages) TH_LOG("ksm_merging_pages of %d", pid);
	EXPECT_EQ(merging, ksm_read_merging_pages(pid))
		TH_LOG("/proc/%d/ksm_merging_pages", pid);
}

/* ------------------------------------------------------------------ */
/* Page contents                                                      */
/* ------------------------------------------------------------------ */

/* Fill a page with words that depend on @tag: distinct tags, distinct pages. */
static void fill_tag(char *page, uint64_t tag)
{
	uint64_t *w = (uint64_t *)page;
	size_t i, n = ksm_page_size() / sizeof(*w);

	for (i = 0; i < n; i++)
		w[i] = tag ^ (i * 0x9e3779b97f4a7c15ULL);
}

static bool tag_ok(const char *page, uint64_t tag)
{
	const uint64_t *w = (const uint64_t *)page;
	size_t i, n = ksm_page_size() / sizeof(*w);

	for (i = 0; i < n; i++)
		if (w[i] != (tag ^ (i * 0x9e3779b97f4a7c15ULL)))
			return false;
	return true;
}

/* Do all @len bytes at @p hold @c? */
static bool bytes_are(const char *p, size_t len, char c)
{
	return p[0] == c && !memcmp(p, p + 1, len - 1);
}

/* ------------------------------------------------------------------ */
/* /proc                                                              */
/* ------------------------------------------------------------------ */

/* Raw pagemap entries of @n pages from @addr in @pid (0: ourselves). */
static int read_pagemap(pid_t pid, const char *addr, size_t n, uint64_t *ent)
{
	size_t done = 0, len = n * sizeof(*ent);
	off_t off = (off_t)((uintptr_t)addr / ksm_page_size()) * sizeof(*ent);
	char path[64];
	ssize_t got;
	int fd, err = 0;

	ksm_proc_path(path, sizeof(path), pid, "pagemap");
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	while (done < len) {
		got = pread(fd, (char *)ent + done, len - done, off + done);
		if (got <= 0) {
			err = got < 0 ? -errno : -EIO;
			break;
		}
		done += got;
	}
	close(fd);
	return err;
}

/* The frames @n pages from @addr of @pid map; each must be present. */
static void get_frames(struct __test_metadata *_metadata, pid_t pid,
		       const char *addr, size_t n, uint64_t *pfn)
{
	int err = read_pagemap(pid, addr, n, pfn);
	size_t i;

	ASSERT_EQ(0, err) TH_LOG("pagemap of %d: %s", pid, strerror(-err));
	for (i = 0; i < n; i++) {
		ASSERT_TRUE(pfn[i] & KSM_PM_PRESENT)
			TH_LOG("page %zu at %p of %d not present", i, addr, pid);
		pfn[i] &= KSM_PM_PFN_MASK;
		ASSERT_NE(0ULL, (unsigned long long)pfn[i])
			TH_LOG("pagemap shows no page frame numbers");
	}
}

/* How many of @n pages from @addr of @pid are not mapped exactly once. */
static unsigned long count_not_exclusive(struct __test_metadata *_metadata,
					 pid_t pid, const char *addr, size_t n)
{
	uint64_t *ent = malloc(n * sizeof(*ent));
	unsigned long bad = 0;
	size_t i;
	int err;

	ASSERT_NE(NULL, ent);
	err = read_pagemap(pid, addr, n, ent);
	if (err)
		free(ent);
	ASSERT_EQ(0, err) TH_LOG("pagemap of %d: %s", pid, strerror(-err));
	for (i = 0; i < n; i++)
		if (!(ent[i] & KSM_PM_PRESENT) || !(ent[i] & KSM_PM_MMAP_EXCLUSIVE))
			bad++;
	free(ent);
	return bad;
}

/*
 * VMAs of @pid that lie within [@start, @start + @len): their number and
 * the sum of their smaps "KSM:" fields (with @ksm_kb) or from maps.
 */
static int vmas_in(pid_t pid, const char *start, size_t len,
		   unsigned long *ksm_kb, size_t *nr)
{
	uintptr_t lo = (uintptr_t)start, hi = lo + len;
	unsigned long s, e, kb;
	bool in = false;
	char path[64], line[512];
	FILE *f;

	ksm_proc_path(path, sizeof(path), pid, ksm_kb ? "smaps" : "maps");
	f = fopen(path, "r");
	if (!f)
		return -errno;
	*nr = 0;
	if (ksm_kb)
		*ksm_kb = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = s >= lo && e <= hi;
			*nr += in;
			continue;
		}
		if (in && ksm_kb && sscanf(line, "KSM: %lu kB", &kb) == 1)
			*ksm_kb += kb;
	}
	fclose(f);
	return 0;
}

/* ------------------------------------------------------------------ */
/* NUMA                                                               */
/* ------------------------------------------------------------------ */

static bool node_online(int node)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	return access(path, F_OK) == 0;
}

/* Nodes of @n pages of @pid (move_pages() without target nodes). */
static int query_nodes(pid_t pid, void **pages, size_t n, int *nodes)
{
	if (syscall(SYS_move_pages, pid, n, pages, NULL, nodes, 0))
		return -errno;
	return 0;
}

/* Move @n pages of @pid, however many processes map them, to @node. */
static int move_to(pid_t pid, void **pages, size_t n, int node, int *status)
{
	int *nodes = malloc(n * sizeof(*nodes)), err = 0;
	size_t i;

	if (!nodes)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		nodes[i] = node;
	if (syscall(SYS_move_pages, pid, n, pages, nodes, status,
		    MPOL_MF_MOVE_ALL))
		err = -errno;
	free(nodes);
	return err;
}

/* ------------------------------------------------------------------ */
/* Children                                                           */
/* ------------------------------------------------------------------ */

static void track_pid(struct __test_metadata *_metadata,
		      FIXTURE_DATA(ksm_scale) *self, pid_t pid)
{
	ASSERT_GT(MAX_CHILDREN, self->npids);
	self->pids[self->npids++] = pid;
}

/* Reap @pid, which is exiting, and expect a clean exit. */
static void reap(struct __test_metadata *_metadata,
		 FIXTURE_DATA(ksm_scale) *self, pid_t pid)
{
	int status = 0;
	size_t i;

	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	for (i = 0; i < self->npids; i++)
		if (self->pids[i] == pid)
			self->pids[i] = 0;
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("child %d: exit status 0x%x", pid, status);
}

/* Read @len bytes from @fd within @secs seconds: 0, -ETIMEDOUT or -EIO. */
static int recv_exact(int fd, void *buf, size_t len, unsigned int secs)
{
	double deadline = ksm_now() + secs;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t done = 0;
	ssize_t got;

	while (done < len) {
		int left = (int)((deadline - ksm_now()) * 1000);

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) <= 0)
			continue;
		got = read(fd, (char *)buf + done, len - done);
		if (got <= 0)
			return -EIO;
		done += got;
	}
	return 0;
}

/*
 * A child driven over two pipes: one command byte in, one answer byte
 * out; it exits on end of file.
 */
struct worker {
	pid_t pid;
	int cmd;
	int reply;
	char *addr;	/* its memory */
};

typedef void (*child_body)(int cmd, int reply, const void *arg);

static void spawn(struct __test_metadata *_metadata,
		  FIXTURE_DATA(ksm_scale) *self, struct worker *w,
		  child_body body, const void *arg, bool sends_addr)
{
	int down[2], up[2], i, err;

	ASSERT_GE(MAX_FDS - 2, self->nfds);
	ASSERT_EQ(0, pipe(down));
	ASSERT_EQ(0, pipe(up));
	w->pid = fork();
	ASSERT_LE(0, w->pid);
	if (!w->pid) {
		for (i = 0; i < self->nfds; i++)
			close(self->fds[i]);
		close(down[1]);
		close(up[0]);
		body(down[0], up[1], arg);
		_exit(0);
	}
	close(down[0]);
	close(up[1]);
	w->cmd = down[1];
	w->reply = up[0];
	self->fds[self->nfds++] = w->cmd;
	self->fds[self->nfds++] = w->reply;
	track_pid(_metadata, self, w->pid);
	w->addr = NULL;
	if (!sends_addr)
		return;
	err = recv_exact(w->reply, &w->addr, sizeof(w->addr), self->bound);
	ASSERT_EQ(0, err) TH_LOG("child %d did not start: %s", w->pid,
				 strerror(-err));
}

/* Send @cmd to @w and return its answer. */
static char ask(struct __test_metadata *_metadata,
		FIXTURE_DATA(ksm_scale) *self, struct worker *w, char cmd)
{
	char r = 0;
	int err;

	ASSERT_EQ(1, write(w->cmd, &cmd, 1)) TH_LOG("child %d gone", w->pid);
	err = recv_exact(w->reply, &r, 1, self->bound);
	ASSERT_EQ(0, err) TH_LOG("child %d, '%c': %s", w->pid, cmd, strerror(-err));
	return r;
}

/* Let @w exit (end of file on its command pipe) and reap it. */
static void finish(struct __test_metadata *_metadata,
		   FIXTURE_DATA(ksm_scale) *self, struct worker *w)
{
	int i;

	for (i = 0; i < self->nfds; i++) {
		if (self->fds[i] == w->cmd || self->fds[i] == w->reply) {
			close(self->fds[i]);
			self->fds[i--] = self->fds[--self->nfds];
		}
	}
	reap(_metadata, self, w->pid);
}

/* A fresh region of @n pages of ours, unmapped at teardown. */
static char *map_region(struct __test_metadata *_metadata,
			FIXTURE_DATA(ksm_scale) *self, size_t n, int flags)
{
	char *p;

	ASSERT_EQ(NULL, self->region);
	p = ksm_map_flags(n, flags);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap of %zu pages: %s", n, strerror(errno));
	self->region = p;
	self->region_pages = n;
	return p;
}

/* ------------------------------------------------------------------ */
/* many_mappers                                                       */
/* ------------------------------------------------------------------ */

/*
 * A mapper's memory: @pages pages of 'c', or after the rewrite 'd' with
 * the last page 'e'.  Commands: 'v' check every byte, 'w' rewrite,
 * 'u' MADV_UNMERGEABLE of the first half.  Answers '0' on success.
 */
static bool mapper_intact(const char *p, size_t pages, bool rewritten)
{
	size_t i, ps = ksm_page_size();
	char want;

	for (i = 0; i < pages; i++) {
		want = !rewritten ? 'c' : i == pages - 1 ? 'e' : 'd';
		if (!bytes_are(p + i * ps, ps, want)) {
			fprintf(stderr, "# child %d: page %zu is not all '%c'\n",
				getpid(), i, want);
			return false;
		}
	}
	return true;
}

static void mapper_body(int cmd, int reply, const void *arg)
{
	size_t pages = *(const size_t *)arg, ps = ksm_page_size();
	bool rewritten = false;
	char *p, c, r;

	p = ksm_map(pages);
	if (p == MAP_FAILED)
		_exit(10);
	memset(p, 'c', pages * ps);
	if (madvise(p, pages * ps, MADV_MERGEABLE))
		_exit(11);
	if (write(reply, &p, sizeof(p)) != sizeof(p))
		_exit(12);
	while (read(cmd, &c, 1) == 1) {
		r = '0';
		switch (c) {
		case 'v':
			if (!mapper_intact(p, pages, rewritten))
				r = '1';
			break;
		case 'w':
			memset(p, 'd', (pages - 1) * ps);
			memset(p + (pages - 1) * ps, 'e', ps);
			rewritten = true;
			break;
		case 'u':
			if (madvise(p, pages / 2 * ps, MADV_UNMERGEABLE))
				r = '2';
			break;
		default:
			r = '?';
		}
		if (write(reply, &r, 1) != 1)
			_exit(13);
	}
	_exit(0);
}

#define NR_MAPPERS	3

/* Every mapper in @w[0..@n) answers '0' to @cmd. */
static void ask_all(struct __test_metadata *_metadata,
		    FIXTURE_DATA(ksm_scale) *self, struct worker *w, int n,
		    char cmd, const char *what)
{
	double t = ksm_now();
	int i;

	for (i = 0; i < n; i++)
		EXPECT_EQ('0', ask(_metadata, self, &w[i], cmd))
			TH_LOG("%s: child %d", what, w[i].pid);
	log_time(_metadata, what, t);
}

/*
 * What the frames of the mappers say: their 'd' (or 'c') pages from page
 * @from[i] on, and their last pages when @rewritten.  Fails if a frame
 * has more than @max mappers.
 */
static void mapper_frames(struct __test_metadata *_metadata,
			  FIXTURE_DATA(ksm_scale) *self, struct worker *w,
			  int n, const size_t *from, size_t pages,
			  bool rewritten, unsigned long max,
			  struct ksm_want *fw)
{
	size_t body = rewritten ? pages - 1 : pages, nr = 0;
	uint64_t *pfn = malloc(n * pages * sizeof(*pfn)), last[NR_MAPPERS];
	unsigned long most;
	int i;

	ASSERT_NE(NULL, pfn);
	for (i = 0; i < n; i++) {
		get_frames(_metadata, w[i].pid, w[i].addr + from[i] * self->ps,
			   body - from[i], pfn + nr);
		nr += body - from[i];
		if (rewritten)
			get_frames(_metadata, w[i].pid,
				   w[i].addr + (pages - 1) * self->ps, 1, &last[i]);
	}
	memset(fw, 0, sizeof(*fw));
	most = want_frames(fw, pfn, nr);
	free(pfn);
	EXPECT_GE(max, most) TH_LOG("a KSM page has more than %lu mappers", max);
	if (rewritten) {
		most = want_frames(fw, last, n);
		EXPECT_GE(max, most);
	}
}

/*
 * Three processes map the same content; their pages become a handful of
 * KSM pages with thousands of mappers each (one with all of them in the
 * variant "whole").  Rewriting them all, unmerging a range, an exit and
 * run=2 remove mappers by the thousand: the counters must follow exactly
 * and no byte may change.
 */
TEST_F_TIMEOUT(ksm_scale, many_mappers, SCALE_TEST_TIMEOUT)
{
	size_t pages = (self->big ? 128 : 8) * (1UL << 20) / self->ps;
	size_t total = NR_MAPPERS * pages, half = pages / 2;
	size_t from[NR_MAPPERS] = { 0 };
	struct worker w[NR_MAPPERS];
	struct ksm_want want = { 0 }, fw;
	unsigned long max;
	double t;
	int i;

	max = set_max_sharing(_metadata, variant, total);
	t = ksm_now();
	for (i = 0; i < NR_MAPPERS; i++)
		spawn(_metadata, self, &w[i], mapper_body, &pages, true);
	log_time(_metadata, "3 processes fill their memory", t);

	/* One content, every page of every process. */
	ksmd_passes(_metadata, self, 2, "merge");
	want_content(&want, total, max);
	expect_counts(_metadata, self, &want, "merged");
	for (i = 0; i < NR_MAPPERS; i++)
		expect_proc(_metadata, w[i].pid, pages, pages);
	mapper_frames(_metadata, self, w, NR_MAPPERS, from, pages, false, max, &fw);
	expect_same(_metadata, &fw, &want, "merged");
	ask_all(_metadata, self, w, NR_MAPPERS, 'v', "check every byte");

	/* Every mapper leaves its KSM page at once, for a new content. */
	ask_all(_metadata, self, w, NR_MAPPERS, 'w', "rewrite all of it");
	ksmd_passes(_metadata, self, 3, "merge the new content");
	memset(&want, 0, sizeof(want));
	want_content(&want, NR_MAPPERS * (pages - 1), max);
	want_content(&want, NR_MAPPERS, max);
	expect_counts(_metadata, self, &want, "merged again");
	for (i = 0; i < NR_MAPPERS; i++)
		expect_proc(_metadata, w[i].pid, pages, pages);
	mapper_frames(_metadata, self, w, NR_MAPPERS, from, pages, true, max, &fw);
	expect_same(_metadata, &fw, &want, "merged again");
	ask_all(_metadata, self, w, NR_MAPPERS, 'v', "check every byte");

	/* Half of one process unmerged: private at once, forgotten in a pass. */
	ask_all(_metadata, self, w, 1, 'u', "MADV_UNMERGEABLE of half a process");
	EXPECT_EQ(0UL, count_not_exclusive(_metadata, w[0].pid, w[0].addr, half))
		TH_LOG("unmerged pages still mapped more than once");
	ksmd_passes(_metadata, self, 2, "drop the unmerged mappers");
	from[0] = half;
	mapper_frames(_metadata, self, w, NR_MAPPERS, from, pages, true, max, &fw);
	expect_counts(_metadata, self, &fw, "after MADV_UNMERGEABLE");
	EXPECT_EQ(total - half, fw.shared + fw.sharing);
	expect_proc(_metadata, w[0].pid, pages - half, pages - half);
	ask_all(_metadata, self, w, NR_MAPPERS, 'v', "check every byte");

	/* One process exits: all its mappers go. */
	t = ksm_now();
	finish(_metadata, self, &w[2]);
	log_time(_metadata, "exit of a process", t);
	ksmd_passes(_metadata, self, 2, "drop the mappers of the exited process");
	mapper_frames(_metadata, self, w, 2, from, pages, true, max, &fw);
	expect_counts(_metadata, self, &fw, "after the exit");
	EXPECT_EQ(2 * pages - half, fw.shared + fw.sharing);
	expect_proc(_metadata, w[1].pid, pages, pages);

	/* run=2: nothing merged, nothing tracked, nothing changed. */
	unmerge_all(_metadata, "run=2");
	memset(&want, 0, sizeof(want));
	expect_counts(_metadata, self, &want, "after run=2");
	for (i = 0; i < 2; i++) {
		expect_proc(_metadata, w[i].pid, 0, 0);
		EXPECT_EQ(0UL, count_not_exclusive(_metadata, w[i].pid,
						   w[i].addr, pages))
			TH_LOG("child %d: pages still shared after run=2", w[i].pid);
	}
	ask_all(_metadata, self, w, 2, 'v', "check every byte");
}

/* ------------------------------------------------------------------ */
/* many_vmas                                                          */
/* ------------------------------------------------------------------ */

struct tagged {
	const char *p;
	size_t pages;
	uint64_t tag;
};

/* Number of the @pages pages at @p that do not hold @tag. */
static unsigned long count_bad_tags(const char *p, size_t pages, uint64_t tag)
{
	size_t i, ps = ksm_page_size();
	unsigned long bad = 0;

	for (i = 0; i < pages; i++)
		bad += !tag_ok(p + i * ps, tag);
	return bad;
}

/* A forked child that checks its copy of the region on 'v'. */
static void tagged_body(int cmd, int reply, const void *arg)
{
	const struct tagged *t = arg;
	char c, r;

	while (read(cmd, &c, 1) == 1) {
		r = c == 'v' && !count_bad_tags(t->p, t->pages, t->tag) ? '0' : '1';
		if (write(reply, &r, 1) != 1)
			_exit(13);
	}
	_exit(0);
}

struct frame_ref {
	uint64_t pfn;
	size_t idx;	/* < pages: ours, else the child's page idx - pages */
};

static int cmp_ref(const void *a, const void *b)
{
	const struct frame_ref *x = a, *y = b;

	if (x->pfn != y->pfn)
		return x->pfn < y->pfn ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Frames of our pages then the child's (same addresses), in @ref order. */
static void both_frames(struct __test_metadata *_metadata, pid_t child,
			const char *p, size_t pages, struct frame_ref *ref)
{
	uint64_t *pfn = malloc(2 * pages * sizeof(*pfn));
	size_t i;

	ASSERT_NE(NULL, pfn);
	get_frames(_metadata, 0, p, pages, pfn);
	get_frames(_metadata, child, p, pages, pfn + pages);
	for (i = 0; i < 2 * pages; i++) {
		ref[i].pfn = pfn[i];
		ref[i].idx = i;
	}
	free(pfn);
	qsort(ref, 2 * pages, sizeof(*ref), cmp_ref);
}

/* Every one of our and the child's pages is on @node. */
static void expect_on_node(struct __test_metadata *_metadata, pid_t child,
			   char *p, size_t pages, int node)
{
	void **addr = malloc(pages * sizeof(*addr));
	int *nodes = malloc(pages * sizeof(*nodes));
	pid_t who[2] = { 0, child };
	unsigned long off = 0;
	size_t i, j;
	int err = 0;

	ASSERT_TRUE(addr && nodes);
	for (i = 0; i < pages; i++)
		addr[i] = p + i * ksm_page_size();
	for (j = 0; j < 2 && !err; j++) {
		err = query_nodes(who[j], addr, pages, nodes);
		for (i = 0; !err && i < pages; i++) {
			if (nodes[i] != node && !off)
				TH_LOG("page %zu of %d on node %d, not %d",
				       i, who[j], nodes[i], node);
			off += nodes[i] != node;
		}
	}
	free(addr);
	free(nodes);
	ASSERT_EQ(0, err) TH_LOG("move_pages query: %s", strerror(-err));
	EXPECT_EQ(0UL, off) TH_LOG("pages not on node %d", node);
}

/*
 * Migrate every KSM page mapped in our region or the child's to @node
 * with one move_pages() per process, naming each KSM page once; then
 * every page must be on @node, and the pages that shared a frame before
 * must still share one, a frame no other group maps.
 */
static void migrate_ksm_pages(struct __test_metadata *_metadata,
			      FIXTURE_DATA(ksm_scale) *self, pid_t child,
			      char *p, size_t pages, int node)
{
	struct frame_ref *ref = malloc(2 * pages * sizeof(*ref));
	uint64_t *now = malloc(2 * pages * sizeof(*now));
	uint64_t *moved_to = malloc(2 * pages * sizeof(*moved_to));
	void **mine = malloc(2 * pages * sizeof(*mine)), **theirs;
	int *status = malloc(pages * sizeof(*status)), err;
	size_t i, nmine = 0, ntheirs = 0, groups = 0;
	unsigned long moved = 0, bad = 0;
	double t;

	ASSERT_TRUE(ref && now && moved_to && mine && status);
	theirs = mine + pages;
	both_frames(_metadata, child, p, pages, ref);
	for (i = 0; i < 2 * pages; i++) {
		size_t idx = ref[i].idx;

		if (i && ref[i].pfn == ref[i - 1].pfn)
			continue;
		/* Sorted by index too: a frame we map is moved through us. */
		if (idx < pages)
			mine[nmine++] = p + idx * self->ps;
		else
			theirs[ntheirs++] = p + (idx - pages) * self->ps;
	}

	t = ksm_now();
	err = nmine ? move_to(0, mine, nmine, node, status) : 0;
	ASSERT_EQ(0, err) TH_LOG("move_pages of our KSM pages: %s", strerror(-err));
	for (i = 0; i < nmine; i++)
		bad += status[i] != node;
	err = ntheirs ? move_to(child, theirs, ntheirs, node, status) : 0;
	ASSERT_EQ(0, err) TH_LOG("move_pages of the child's: %s", strerror(-err));
	for (i = 0; i < ntheirs; i++)
		bad += status[i] != node;
	TH_LOG("time: move_pages of %zu KSM pages to node %d: %.2f s",
	       nmine + ntheirs, node, ksm_now() - t);
	EXPECT_EQ(0UL, bad) TH_LOG("move_pages status not %d", node);
	expect_on_node(_metadata, child, p, pages, node);

	/* now[idx]: the frame page idx (ours, then the child's) maps now. */
	get_frames(_metadata, 0, p, pages, now);
	get_frames(_metadata, child, p, pages, now + pages);
	for (i = 0, bad = 0; i < 2 * pages; i++) {
		uint64_t to = now[ref[i].idx];

		if (i && ref[i].pfn == ref[i - 1].pfn) {
			bad += to != moved_to[groups - 1];
			continue;
		}
		moved += to != ref[i].pfn;
		moved_to[groups++] = to;
	}
	EXPECT_EQ(0UL, bad)
		TH_LOG("mappers of one KSM page now map different frames");
	qsort(moved_to, groups, sizeof(*moved_to), cmp_u64);
	for (i = 1, bad = 0; i < groups; i++)
		bad += moved_to[i] == moved_to[i - 1];
	EXPECT_EQ(0UL, bad) TH_LOG("KSM pages share a frame after migration");
	TH_LOG("%lu of %zu KSM pages changed frame", moved, groups);
	free(ref);
	free(now);
	free(moved_to);
	free(mine);
	free(status);
}

/*
 * Thousands of single-page VMAs under one anon_vma, in two processes:
 * the mappers of a KSM page sit in thousands of VMAs of that anon_vma,
 * and every rmap walk (migration here) must find all of its mappings and
 * only them.
 */
TEST_F_TIMEOUT(ksm_scale, many_vmas, SCALE_TEST_TIMEOUT)
{
	size_t pages = self->big ? 20000 : 2000, nvmas = 0, i;
	uint64_t tag = ksm_unique_seed(), *pfn;
	struct ksm_want want = { 0 }, fw = { 0 };
	unsigned long max, kb = 0, most;
	struct tagged arg;
	struct worker w;
	int err, node;
	double t;
	char *p;

	max = set_max_sharing(_metadata, variant, 2 * pages);
	/* Every KSM page in a frame of its own (our default; see below). */
	if (self->ours)
		ASSERT_EQ(0, ksm_write("merge_fresh_frames", "1"));
	p = map_region(_metadata, self, pages, MAP_PRIVATE);
	for (i = 0; i < pages; i++)
		fill_tag(p + i * self->ps, tag);
	ASSERT_EQ(0, madvise(p, pages * self->ps, MADV_MERGEABLE));
	t = ksm_now();
	for (i = 1; i < pages; i += 2)
		ASSERT_EQ(0, mprotect(p + i * self->ps, self->ps, PROT_READ))
			TH_LOG("mprotect of page %zu: %s", i, strerror(errno));
	log_time(_metadata, "split into one VMA per page", t);
	ASSERT_EQ(0, vmas_in(0, p, pages * self->ps, NULL, &nvmas));
	ASSERT_EQ(pages, nvmas);

	/* The child shares every page (and the anon_vma) until merged. */
	arg = (struct tagged){ .p = p, .pages = pages, .tag = tag };
	spawn(_metadata, self, &w, tagged_body, &arg, false);

	ksmd_passes(_metadata, self, 2, "merge");
	want_content(&want, 2 * pages, max);
	pfn = malloc(2 * pages * sizeof(*pfn));
	ASSERT_NE(NULL, pfn);
	get_frames(_metadata, 0, p, pages, pfn);
	get_frames(_metadata, w.pid, p, pages, pfn + pages);
	most = want_frames(&fw, pfn, 2 * pages);
	/*
	 * Where a KSM page is made in place (stock), the page the child
	 * still shared becomes it and the child's mapping comes on top:
	 * one KSM page fewer than counted here.  Then only the frames say
	 * what the counters must be.
	 */
	if (self->ours) {
		EXPECT_GE(max, most) TH_LOG("a KSM page has more than %lu mappers", max);
		expect_same(_metadata, &fw, &want, "merged");
	}
	want = fw;
	expect_counts(_metadata, self, &want, "merged");
	expect_proc(_metadata, 0, pages, pages);
	expect_proc(_metadata, w.pid, pages, pages);
	t = ksm_now();
	ASSERT_EQ(0, vmas_in(0, p, pages * self->ps, &kb, &nvmas));
	EXPECT_EQ(pages, nvmas);
	EXPECT_EQ(pages * self->ps / 1024, kb) TH_LOG("smaps KSM: of our VMAs");
	ASSERT_EQ(0, vmas_in(w.pid, p, pages * self->ps, &kb, &nvmas));
	EXPECT_EQ(pages, nvmas);
	EXPECT_EQ(pages * self->ps / 1024, kb) TH_LOG("smaps KSM: of the child");
	log_time(_metadata, "smaps of both processes", t);

	/* Over to node 1 and back to 0, or just to 0 on a single node. */
	node = node_online(1) ? 1 : 0;
	if (!node)
		TH_LOG("one NUMA node: move_pages() finds every page in place");
	migrate_ksm_pages(_metadata, self, w.pid, p, pages, node);
	expect_counts(_metadata, self, &want, "migrated");
	migrate_ksm_pages(_metadata, self, w.pid, p, pages, 0);
	expect_counts(_metadata, self, &want, "migrated back");
	EXPECT_EQ(0UL, count_bad_tags(p, pages, tag));
	EXPECT_EQ('0', ask(_metadata, self, &w, 'v')) TH_LOG("the child's data");
	/* The KSM pages stay KSM pages, their mappers tracked. */
	ksmd_passes(_metadata, self, 2, "scan the migrated KSM pages");
	expect_counts(_metadata, self, &want, "scanned after migration");
	expect_proc(_metadata, 0, pages, pages);
	expect_proc(_metadata, w.pid, pages, pages);

	/* The child's mappers go with it. */
	t = ksm_now();
	finish(_metadata, self, &w);
	log_time(_metadata, "exit of the child", t);
	ksmd_passes(_metadata, self, 2, "drop the child's mappers");
	get_frames(_metadata, 0, p, pages, pfn);
	memset(&fw, 0, sizeof(fw));
	want_frames(&fw, pfn, pages);
	free(pfn);
	expect_counts(_metadata, self, &fw, "after the exit");
	EXPECT_EQ(pages, fw.shared + fw.sharing);
	expect_proc(_metadata, 0, pages, pages);

	unmerge_all(_metadata, "run=2");
	memset(&want, 0, sizeof(want));
	expect_counts(_metadata, self, &want, "after run=2");
	expect_proc(_metadata, 0, 0, 0);
	EXPECT_EQ(0UL, count_not_exclusive(_metadata, 0, p, pages));
	EXPECT_EQ(0UL, count_bad_tags(p, pages, tag));
	err = vmas_in(0, p, pages * self->ps, NULL, &nvmas);
	EXPECT_EQ(0, err);
	EXPECT_EQ(pages, nvmas);
}

/* ------------------------------------------------------------------ */
/* many_procs                                                         */
/* ------------------------------------------------------------------ */

/* Pages per process: 2 every process has (tags base, base+1), 2 unique. */
#define PROC_PAGES	4
#define PROC_SHARED	2

static uint64_t proc_tag(uint64_t base, size_t proc, size_t i)
{
	return i < PROC_SHARED ? base + i : base + 16 + proc * PROC_PAGES + i;
}

/* Fill, register, say 'r'; on a byte from @go check, answer and exit. */
static void proc_body(int go, int back, uint64_t base, size_t proc)
{
	size_t i, ps = ksm_page_size();
	char *p = ksm_map(PROC_PAGES), c, r = '0';

	if (p == MAP_FAILED)
		_exit(10);
	for (i = 0; i < PROC_PAGES; i++)
		fill_tag(p + i * ps, proc_tag(base, proc, i));
	if (madvise(p, PROC_PAGES * ps, MADV_MERGEABLE))
		_exit(11);
	if (write(back, "r", 1) != 1)
		_exit(12);
	if (read(go, &c, 1) != 1)
		_exit(0);
	for (i = 0; i < PROC_PAGES; i++)
		if (!tag_ok(p + i * ps, proc_tag(base, proc, i)))
			r = '1';
	_exit(write(back, &r, 1) == 1 ? 0 : 13);
}

/* ksm_merging of the root cgroup's memory.stat; -1 without it. */
static long root_ksm_merging(void)
{
	char key[64];
	long v, found = -1;
	FILE *f;

	f = fopen("/sys/fs/cgroup/memory.stat", "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &v) == 2)
		if (!strcmp(key, "ksm_merging"))
			found = v;
	fclose(f);
	return found;
}

/* Milliseconds per read of the root memory.stat; its ksm_merging too. */
static double root_stat_ms(long *merging)
{
	const int reads = 100;
	double t = ksm_now();
	int i;

	for (i = 0; i < reads; i++)
		*merging = root_ksm_merging();
	return (ksm_now() - t) * 1000 / reads;
}

/*
 * The root cgroup's memory.stat adds up every registered process (one
 * pass over them per read): exact, and what a read costs at this scale
 * against @idle_ms, a read with none of them registered.
 */
static void expect_root_memcg(struct __test_metadata *_metadata, size_t nproc,
			      double idle_ms)
{
	long merging = 0;
	double ms;

	if (root_ksm_merging() < 0) {
		TH_LOG("no ksm_merging in /sys/fs/cgroup/memory.stat: not checked");
		return;
	}
	ms = root_stat_ms(&merging);
	TH_LOG("time: memory.stat of the root cgroup: %.3f ms per read with %zu processes registered, %.3f ms before",
	       ms, nproc, idle_ms);
	EXPECT_EQ((long)(nproc * PROC_SHARED * ksm_page_size()), merging);
}

/*
 * Hundreds of registered processes share two contents: each KSM page has
 * one mapper per process.  When they all exit, everything goes.
 */
TEST_F_TIMEOUT(ksm_scale, many_procs, SCALE_TEST_TIMEOUT)
{
	size_t nproc = self->big ? 1000 : 100, i, first;
	long idle_merging;
	double idle_ms;
	unsigned long bad = 0;
	uint64_t base = ksm_unique_seed() << 8;
	struct ksm_want want = { 0 };
	int go[2], back[2], err;
	unsigned long max;
	char *buf;
	double t;

	max = set_max_sharing(_metadata, variant, nproc * PROC_PAGES);
	idle_ms = root_stat_ms(&idle_merging);
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(back));
	self->fds[self->nfds++] = go[1];
	self->fds[self->nfds++] = back[0];
	first = self->npids;
	t = ksm_now();
	for (i = 0; i < nproc; i++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid) TH_LOG("fork %zu: %s", i, strerror(errno));
		if (!pid) {
			close(go[1]);
			close(back[0]);
			proc_body(go[0], back[1], base, i);
		}
		track_pid(_metadata, self, pid);
	}
	close(go[0]);
	close(back[1]);
	buf = malloc(nproc);
	ASSERT_NE(NULL, buf);
	err = recv_exact(back[0], buf, nproc, self->bound);
	ASSERT_EQ(0, err) TH_LOG("children not ready: %s", strerror(-err));
	TH_LOG("time: fork %zu processes that register with KSM: %.2f s",
	       nproc, ksm_now() - t);

	ksmd_passes(_metadata, self, 2, "merge");
	for (i = 0; i < PROC_SHARED; i++)
		want_content(&want, nproc, max);
	want.unshared = nproc * (PROC_PAGES - PROC_SHARED);
	expect_counts(_metadata, self, &want, "merged");
	t = ksm_now();
	for (i = 0; i < nproc; i++)
		expect_proc(_metadata, self->pids[first + i], PROC_PAGES,
			    PROC_SHARED);
	log_time(_metadata, "ksm_stat of every process", t);
	expect_root_memcg(_metadata, nproc, idle_ms);

	t = ksm_now();
	memset(buf, 'v', nproc);
	ASSERT_EQ((ssize_t)nproc, write(go[1], buf, nproc));
	err = recv_exact(back[0], buf, nproc, self->bound);
	ASSERT_EQ(0, err) TH_LOG("children did not answer: %s", strerror(-err));
	for (i = 0; i < nproc; i++)
		bad += buf[i] != '0';
	free(buf);
	EXPECT_EQ(0UL, bad) TH_LOG("processes with changed pages");
	for (i = 0; i < nproc; i++)
		reap(_metadata, self, self->pids[first + i]);
	TH_LOG("time: %zu processes check their pages and exit: %.2f s",
	       nproc, ksm_now() - t);

	/*
	 * An exiting mm is queued just after the scan cursor, so the pass in
	 * progress (or the next) reaps them all; with no mm left, ksmd does
	 * no further full scan.
	 */
	ksmd_passes(_metadata, self, 1, "drop the exited processes");
	memset(&want, 0, sizeof(want));
	expect_counts(_metadata, self, &want, "all exited");
}

/* ------------------------------------------------------------------ */
/* sparse_64g                                                         */
/* ------------------------------------------------------------------ */

#define SPARSE_BYTES	(64UL << 30)
#define SPARSE_PRESENT	1000

/*
 * A 64 GiB mergeable mapping with 1000 pages present, spread evenly: a
 * full scan costs what is present, not what is mapped.
 */
TEST_F_TIMEOUT(ksm_scale, sparse_64g, SCALE_TEST_TIMEOUT)
{
	size_t span = SPARSE_BYTES / self->ps, stride = span / SPARSE_PRESENT;
	uint64_t base = ksm_unique_seed() << 12;
	struct ksm_want want = { 0 };
	unsigned long max, bad = 0;
	size_t i;
	double t;
	char *p;

	max = set_max_sharing(_metadata, variant, SPARSE_PRESENT);
	p = ksm_map_flags(span, MAP_PRIVATE | MAP_NORESERVE);
	if (p == MAP_FAILED)
		SKIP(return, "cannot map 64 GiB with MAP_NORESERVE: %s",
		     strerror(errno));
	self->region = p;
	self->region_pages = span;
	t = ksm_now();
	ASSERT_EQ(0, madvise(p, span * self->ps, MADV_MERGEABLE));
	log_time(_metadata, "MADV_MERGEABLE of 64 GiB", t);
	/* Pages 2k and 2k+1 hold the same content. */
	for (i = 0; i < SPARSE_PRESENT; i++)
		fill_tag(p + i * stride * self->ps, base + i / 2);

	ksmd_passes(_metadata, self, 2, "merge 1000 pages spread over 64 GiB");
	for (i = 0; i < SPARSE_PRESENT / 2; i++)
		want_content(&want, 2, max);
	expect_counts(_metadata, self, &want, "merged");
	expect_proc(_metadata, 0, SPARSE_PRESENT, SPARSE_PRESENT);

	ksmd_passes(_metadata, self, 2, "full scans of the merged 64 GiB mapping");
	expect_counts(_metadata, self, &want, "scanned again");
	for (i = 0; i < SPARSE_PRESENT; i++)
		bad += !tag_ok(p + i * stride * self->ps, base + i / 2);
	EXPECT_EQ(0UL, bad) TH_LOG("pages with changed content");
}

/* ------------------------------------------------------------------ */
/* many_keys                                                          */
/* ------------------------------------------------------------------ */

/*
 * Content of page @i of @pages: pages k and pages/2 + k share content k
 * for k < @keys (the twin comes half the region later, so the unstable
 * tree holds many pages before any merges); the rest are unique.
 */
static uint64_t key_tag(uint64_t base, size_t pages, size_t keys, size_t i)
{
	size_t k = i < pages / 2 ? i : i - pages / 2;

	return k < keys ? base + k : base + keys + i;
}

/*
 * Tens of thousands of tracked pages and a stable tree with a key per
 * twin pair: exact counts, then everything unmerged and forgotten.
 */
TEST_F_TIMEOUT(ksm_scale, many_keys, SCALE_TEST_TIMEOUT)
{
	size_t pages = self->big ? 512 * 1024 : 32 * 1024;
	size_t keys = self->big ? 100000 : 5000, i;
	uint64_t base = ksm_unique_seed() << 24;
	struct ksm_want want = { 0 };
	unsigned long max, bad;
	double t;
	char *p;

	max = set_max_sharing(_metadata, variant, pages);
	p = map_region(_metadata, self, pages, MAP_PRIVATE);
	t = ksm_now();
	for (i = 0; i < pages; i++)
		fill_tag(p + i * self->ps, key_tag(base, pages, keys, i));
	log_time(_metadata, "fill", t);
	ASSERT_EQ(0, madvise(p, pages * self->ps, MADV_MERGEABLE));

	ksmd_passes(_metadata, self, 2, "merge");
	for (i = 0; i < keys; i++)
		want_content(&want, 2, max);
	want.unshared = pages - 2 * keys;
	expect_counts(_metadata, self, &want, "merged");
	expect_proc(_metadata, 0, pages, 2 * keys);

	ksmd_passes(_metadata, self, 2, "full scans with every key in the tree");
	expect_counts(_metadata, self, &want, "scanned again");

	t = ksm_now();
	ASSERT_EQ(0, madvise(p, pages * self->ps, MADV_UNMERGEABLE));
	log_time(_metadata, "MADV_UNMERGEABLE of all of it", t);
	EXPECT_EQ(0UL, count_not_exclusive(_metadata, 0, p, pages));
	t = ksm_now();
	for (i = 0, bad = 0; i < pages; i++)
		bad += !tag_ok(p + i * self->ps, key_tag(base, pages, keys, i));
	log_time(_metadata, "check every byte", t);
	EXPECT_EQ(0UL, bad) TH_LOG("pages with changed content");
	ksmd_passes(_metadata, self, 2, "forget the unmerged pages");
	memset(&want, 0, sizeof(want));
	expect_counts(_metadata, self, &want, "unmerged");
	expect_proc(_metadata, 0, 0, 0);
}

TEST_HARNESS_MAIN
