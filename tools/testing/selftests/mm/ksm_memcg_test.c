// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
/*
 * Per-cgroup KSM figures: memory.stat of a cgroup v2 ends with ksm_merging,
 * ksm_zero, ksm_tracked and ksm_profit (bytes), the sums of what
 * /proc/PID/ksm_stat shows for the processes in the cgroup and below it.
 * Checked exactly against ksm_stat, across fork, exit, a move to another
 * cgroup and run=2, for a parent cgroup (hierarchy) and in the debugfs
 * table /sys/kernel/debug/ksm/cgroups.
 *
 * Every process whose figures are checked is a worker of this test, in a
 * cgroup of its own making (TOP/a, TOP/b), with only its madvised region
 * mergeable, so the expected values are exact.
 */
/* The 6.12 harness header itself trips these two. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"

#include "ksm_test_util.h"
#include "../kselftest_harness.h"
#include "ksm_test_harness.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define CG_ROOT		"/sys/fs/cgroup"
#define CG_TOP		CG_ROOT "/ksm_memcg_test"
#define CG_A		CG_TOP "/a"
#define CG_B		CG_TOP "/b"
#define DEBUGFS		"/sys/kernel/debug"
#define CGROUPS_TABLE	DEBUGFS "/ksm/cgroups"
#define DOMAINS_TABLE	DEBUGFS "/ksm/domains"
#define KSM_STAT_TOOL	"/tools/ksm_stat"	/* tools/mm/ksm_stat in the guest */
#define MAX_WORKERS	4

/* The KSM figures of one cgroup, in bytes. */
struct figures {
	long merging;
	long zero;
	long tracked;
	long profit;
};

/*
 * A worker: a child process in a cgroup, holding @n mergeable pages of one
 * content (or zero-filled), serving commands on a pipe until told to quit.
 */
struct worker {
	pid_t pid;
	int cmd;	/* write end: commands */
	int reply;	/* read end: replies */
};

FIXTURE(ksm_memcg) {
	struct ksm_saved_knobs saved;
	struct worker workers[MAX_WORKERS];
	int nworkers;
	bool made;
	size_t ps;
};

static int write_str(const char *path, const char *s)
{
	return ksm_write_str(path, s);
}

/* "+memory" in @dir's cgroup.subtree_control. */
static int enable_memory(const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	return write_str(path, "+memory");
}

static bool memory_controller_available(void)
{
	char buf[512];

	if (ksm_read_file(CG_ROOT "/cgroup.controllers", buf, sizeof(buf)) <= 0)
		return false;
	return strstr(buf, "memory") != NULL;
}

FIXTURE_SETUP(ksm_memcg)
{
	const char *why = ksm_skip_reason();

	self->nworkers = 0;
	self->made = false;
	if (why)
		SKIP(return, "%s", why);
	if (!memory_controller_available())
		SKIP(return, "no cgroup v2 memory controller at " CG_ROOT);
	self->ps = ksm_page_size();
	ksm_save_knobs(&self->saved);
	ASSERT_EQ(0, ksm_counting_setup(true));
	ASSERT_EQ(0, enable_memory(CG_ROOT));
	ASSERT_TRUE(!mkdir(CG_TOP, 0755) || errno == EEXIST);
	self->made = true;
	ASSERT_EQ(0, enable_memory(CG_TOP));
	ASSERT_TRUE(!mkdir(CG_A, 0755) || errno == EEXIST);
	ASSERT_TRUE(!mkdir(CG_B, 0755) || errno == EEXIST);
}

FIXTURE_TEARDOWN(ksm_memcg)
{
	int i;

	for (i = 0; i < self->nworkers; i++) {
		if (self->workers[i].pid > 0) {
			kill(self->workers[i].pid, SIGKILL);
			waitpid(self->workers[i].pid, NULL, 0);
		}
		close(self->workers[i].cmd);
		close(self->workers[i].reply);
	}
	if (self->made) {
		/* A worker's child dies of PDEATHSIG, maybe not yet: retry. */
		for (i = 0; i < 100 && rmdir(CG_A) && errno == EBUSY; i++)
			usleep(100 * 1000);
		rmdir(CG_B);
		if (rmdir(CG_TOP))
			TH_LOG("rmdir %s: %s", CG_TOP, strerror(errno));
	}
	if (self->ps) {
		EXPECT_EQ(0, ksm_reset());
		EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
	}
}

/* The worker's side. Exit codes 1-9: setup failed; 10+: a command failed. */
static void worker_main(const char *cgroup, size_t n, uint64_t seed,
			bool zero, int cmd, int reply)
{
	size_t ps = ksm_page_size(), i;
	pid_t child = 0;
	char c, *p;

	if (ksm_join_cgroup(cgroup))
		_exit(1);
	p = ksm_map(n);
	if (p == MAP_FAILED)
		_exit(2);
	for (i = 0; i < n; i++) {
		if (zero)
			memset(p + i * ps, 0, ps);
		else
			ksm_fill_page(p + i * ps, seed);
	}
	if (madvise(p, n * ps, MADV_MERGEABLE))
		_exit(3);
	if (write(reply, "r", 1) != 1)
		_exit(4);
	while (read(cmd, &c, 1) == 1) {
		switch (c) {
		case 'f':	/* fork a child that just waits to be killed */
			child = fork();
			if (child < 0)
				_exit(10);
			if (!child) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				for (;;)
					pause();
			}
			break;
		case 'k':	/* kill and reap that child */
			if (child <= 0 || kill(child, SIGKILL) ||
			    waitpid(child, NULL, 0) != child)
				_exit(11);
			child = 0;
			break;
		case 'q':	/* check every byte and leave */
			for (i = 0; i < n; i++)
				if (zero ? !ksm_page_is_zero(p + i * ps) :
				    !ksm_page_matches(p + i * ps, seed))
					_exit(12);
			_exit(0);
		default:
			_exit(13);
		}
		if (write(reply, &c, 1) != 1)
			_exit(14);
	}
	_exit(15);
}

static struct worker *start_worker(struct __test_metadata *_metadata,
				   FIXTURE_DATA(ksm_memcg) *self,
				   const char *cgroup, size_t n, uint64_t seed,
				   bool zero)
{
	struct worker *w;
	int cmd[2], reply[2];
	char c;

	ASSERT_GT(MAX_WORKERS, self->nworkers);
	ASSERT_EQ(0, pipe(cmd));
	ASSERT_EQ(0, pipe(reply));
	w = &self->workers[self->nworkers];
	w->pid = fork();
	ASSERT_LE(0, w->pid);
	if (!w->pid) {
		close(cmd[1]);
		close(reply[0]);
		worker_main(cgroup, n, seed, zero, cmd[0], reply[1]);
	}
	close(cmd[0]);
	close(reply[1]);
	w->cmd = cmd[1];
	w->reply = reply[0];
	self->nworkers++;
	ASSERT_EQ(1, read(w->reply, &c, 1)) TH_LOG("worker did not start");
	return w;
}

/* Send @c and wait for the worker to acknowledge it. */
static void worker_do(struct __test_metadata *_metadata, struct worker *w,
		      char c)
{
	char ack = 0;

	ASSERT_EQ(1, write(w->cmd, &c, 1));
	ASSERT_EQ(1, read(w->reply, &ack, 1)) TH_LOG("worker failed '%c'", c);
	ASSERT_EQ(c, ack);
}

/* Tell the worker to check its pages and exit; expect success. */
static void worker_quit(struct __test_metadata *_metadata,
			FIXTURE_DATA(ksm_memcg) *self, struct worker *w)
{
	int status;

	ASSERT_EQ(1, write(w->cmd, "q", 1));
	ASSERT_EQ(w->pid, waitpid(w->pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("worker exit %d",
						  WEXITSTATUS(status));
	w->pid = -1;
}

static void move_to(struct __test_metadata *_metadata, struct worker *w,
		    const char *cgroup)
{
	char path[256], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	snprintf(pid, sizeof(pid), "%d", (int)w->pid);
	ASSERT_EQ(0, write_str(path, pid)) TH_LOG("move %s to %s", pid, cgroup);
}

/*
 * The KSM lines of @cgroup's memory.stat. Also checks their form: the
 * four lines, each once, in this order, at the end of the file.
 */
static struct figures memory_stat(struct __test_metadata *_metadata,
				  const char *cgroup)
{
	static const char *const keys[] = {
		"ksm_merging", "ksm_zero", "ksm_tracked", "ksm_profit",
	};
	struct figures f = { -1, -1, -1, -1 };
	long *vals[] = { &f.merging, &f.zero, &f.tracked, &f.profit };
	char path[256], line[256], key[64];
	int lineno = 0, first = -1, i;
	long v;
	FILE *file;

	snprintf(path, sizeof(path), "%s/memory.stat", cgroup);
	file = fopen(path, "r");
	ASSERT_NE(NULL, file) TH_LOG("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), file)) {
		lineno++;
		if (sscanf(line, "%63s %ld", key, &v) != 2)
			continue;
		for (i = 0; i < 4; i++) {
			if (strcmp(key, keys[i]))
				continue;
			EXPECT_EQ(-1, *vals[i]) TH_LOG("%s twice", key);
			if (first < 0)
				first = lineno;
			EXPECT_EQ(first + i, lineno) TH_LOG("%s out of order", key);
			*vals[i] = v;
		}
	}
	fclose(file);
	EXPECT_EQ(first + 3, lineno) TH_LOG("KSM lines not last in %s", path);
	EXPECT_NE(-1, f.merging) TH_LOG("ksm_merging missing from %s", path);
	EXPECT_NE(-1, f.zero) TH_LOG("ksm_zero missing from %s", path);
	EXPECT_NE(-1, f.tracked) TH_LOG("ksm_tracked missing from %s", path);
	EXPECT_NE(-1, f.profit) TH_LOG("ksm_profit missing from %s", path);
	return f;
}

/* Figures of @npages merging, @nzero zero and @ntracked tracked pages. */
static struct figures pages(size_t merging, size_t zero, size_t tracked,
			    long profit)
{
	long ps = (long)ksm_page_size();

	return (struct figures){ merging * ps, zero * ps, tracked * ps, profit };
}

#define EXPECT_FIGURES(cgroup, want) do {				\
	struct figures __got = memory_stat(_metadata, (cgroup));	\
	struct figures __want = (want);					\
	EXPECT_EQ(__want.merging, __got.merging) TH_LOG("%s ksm_merging", cgroup); \
	EXPECT_EQ(__want.zero, __got.zero) TH_LOG("%s ksm_zero", cgroup); \
	EXPECT_EQ(__want.tracked, __got.tracked) TH_LOG("%s ksm_tracked", cgroup); \
	EXPECT_EQ(__want.profit, __got.profit) TH_LOG("%s ksm_profit", cgroup); \
} while (0)

static const struct figures nothing = { 0, 0, 0, 0 };

/* The profit /proc/PID/ksm_stat shows for @w, checked against its counts. */
static long profit_of(struct __test_metadata *_metadata, struct worker *w,
		      long merging, long zero, long tracked)
{
	struct ksm_proc_stat st = ksm_expect_proc_stat(_metadata, w->pid);

	EXPECT_EQ(merging, st.merging_pages);
	EXPECT_EQ(zero, st.zero_pages);
	EXPECT_EQ(tracked, st.rmap_items);
	return st.process_profit;
}

/* The row of @path in the debugfs table; -ENOENT if none. */
static int table_row(const char *path, struct figures *f)
{
	char line[512], name[256];
	int ret = -ENOENT;
	FILE *file;

	file = fopen(CGROUPS_TABLE, "r");
	if (!file)
		return -errno;
	while (fgets(line, sizeof(line), file)) {
		if (sscanf(line, "%255s %ld %ld %ld %ld", name, &f->merging,
			   &f->zero, &f->tracked, &f->profit) == 5 &&
		    !strcmp(name, path)) {
			ret = 0;
			break;
		}
	}
	fclose(file);
	return ret;
}

/* The row of @path in "ksm_stat --cgroups" (pages); -ENOENT if none. */
static int tool_row(const char *path, long *merging, long *zero,
		    long *tracked)
{
	char line[512], name[256];
	int ret = -ENOENT;
	FILE *out;

	out = popen(KSM_STAT_TOOL " --cgroups", "r");
	if (!out)
		return -errno;
	while (fgets(line, sizeof(line), out)) {
		if (sscanf(line, "%255s %ld %ld %ld", name, merging, zero,
			   tracked) == 4 && !strcmp(name, path))
			ret = 0;
	}
	pclose(out);
	return ret;
}

/*
 * The figures of the domain row whose cgroup column is @path in the
 * debugfs domains table, and its member count; -ENOENT if none.
 */
static int domain_row(const char *path, struct figures *f,
		      unsigned long *members)
{
	unsigned long shared, sharing;
	char line[512], name[64], cg[256];
	int ret = -ENOENT;
	FILE *file;

	file = fopen(DOMAINS_TABLE, "r");
	if (!file)
		return -errno;
	while (fgets(line, sizeof(line), file)) {
		if (sscanf(line, "%63s %lu %lu %lu %ld %ld %ld %ld %255s", name,
			   members, &shared, &sharing, &f->merging, &f->zero,
			   &f->tracked, &f->profit, cg) == 9 &&
		    !strcmp(cg, path)) {
			ret = 0;
			break;
		}
	}
	fclose(file);
	return ret;
}

static bool debugfs_ready(void)
{
	if (!access(CGROUPS_TABLE, R_OK))
		return true;
	mount("debugfs", DEBUGFS, "debugfs", 0, NULL);
	return !access(CGROUPS_TABLE, R_OK);
}

/*
 * A worker in a with @n identical pages, merged: its ksm_stat and a's
 * figures agree. Its profit goes to @profit.
 */
static struct worker *merged_worker(struct __test_metadata *_metadata,
				    FIXTURE_DATA(ksm_memcg) *self, size_t n,
				    long *profit)
{
	struct worker *w;

	w = start_worker(_metadata, self, CG_A, n, ksm_unique_seed(), false);
	KSM_RUN_PASSES(2);
	*profit = profit_of(_metadata, w, n, 0, n);
	EXPECT_FIGURES(CG_A, pages(n, 0, n, *profit));
	return w;
}

/*
 * One worker of n identical pages in a: a shows what its ksm_stat shows,
 * the parent the same, b nothing; the debugfs table agrees.
 */
TEST_F_TIMEOUT(ksm_memcg, figures_match_ksm_stat, 600)
{
	const size_t n = 16;
	struct figures row;
	struct worker *w;
	long profit;

	EXPECT_FIGURES(CG_A, nothing);
	w = start_worker(_metadata, self, CG_A, n, ksm_unique_seed(), false);
	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", n - 1);
	profit = profit_of(_metadata, w, n, 0, n);
	EXPECT_LT(0, profit);
	EXPECT_FIGURES(CG_A, pages(n, 0, n, profit));
	EXPECT_FIGURES(CG_TOP, pages(n, 0, n, profit));
	EXPECT_FIGURES(CG_B, nothing);

	if (debugfs_ready()) {
		ASSERT_EQ(0, table_row("/ksm_memcg_test/a", &row));
		EXPECT_EQ((long)(n * self->ps), row.merging);
		EXPECT_EQ(0, row.zero);
		EXPECT_EQ((long)(n * self->ps), row.tracked);
		EXPECT_EQ(profit, row.profit);
		EXPECT_EQ(-ENOENT, table_row("/ksm_memcg_test/b", &row));
	} else {
		TH_LOG("no debugfs: " CGROUPS_TABLE " not checked");
	}
	if (!access(KSM_STAT_TOOL, X_OK)) {
		long merging = -1, zero = -1, tracked = -1;

		ASSERT_EQ(0, tool_row("/ksm_memcg_test/a", &merging, &zero,
				      &tracked));
		EXPECT_EQ((long)n, merging);
		EXPECT_EQ(0, zero);
		EXPECT_EQ((long)n, tracked);
		ASSERT_EQ(0, tool_row("/ksm_memcg_test", &merging, &zero,
				      &tracked));
		EXPECT_EQ((long)n, merging);
	} else {
		TH_LOG(KSM_STAT_TOOL " not installed: not checked");
	}
	worker_quit(_metadata, self, w);
	EXPECT_FIGURES(CG_A, nothing);
	EXPECT_FIGURES(CG_TOP, nothing);
}

/*
 * KSM zero pages (use_zero_pages=1) count as ksm_zero, not ksm_merging;
 * ksm_tracked is whatever records the process still has for them.
 */
TEST_F_TIMEOUT(ksm_memcg, zero_pages, 600)
{
	const size_t n = 8;
	struct ksm_proc_stat st;
	struct worker *w;

	ASSERT_EQ(0, ksm_write("use_zero_pages", "1"));
	w = start_worker(_metadata, self, CG_A, n, 0, true);
	KSM_RUN_PASSES(2);
	KSM_EXPECT("ksm_zero_pages", n);
	st = ksm_expect_proc_stat(_metadata, w->pid);
	EXPECT_EQ((long)n, st.zero_pages);
	EXPECT_EQ(0, st.merging_pages);
	EXPECT_FIGURES(CG_A, pages(0, n, st.rmap_items, st.process_profit));
	EXPECT_FIGURES(CG_TOP, pages(0, n, st.rmap_items, st.process_profit));
	worker_quit(_metadata, self, w);
	EXPECT_FIGURES(CG_TOP, nothing);
}

/*
 * Fork: the child adds nothing until ksmd has visited it, then its own
 * mappings; its exit takes them away again at once.
 */
TEST_F_TIMEOUT(ksm_memcg, fork_and_exit, 600)
{
	const size_t n = 8;
	struct worker *w;
	long profit;

	w = merged_worker(_metadata, self, n, &profit);

	worker_do(_metadata, w, 'f');
	EXPECT_FIGURES(CG_A, pages(n, 0, n, profit));
	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_sharing", 2 * n - 1);
	EXPECT_FIGURES(CG_A, pages(2 * n, 0, 2 * n, 2 * profit));
	EXPECT_FIGURES(CG_TOP, pages(2 * n, 0, 2 * n, 2 * profit));

	worker_do(_metadata, w, 'k');
	EXPECT_FIGURES(CG_A, pages(n, 0, n, profit));
	worker_quit(_metadata, self, w);
}

/*
 * A process moved to another cgroup takes its figures along at once;
 * the parent's stay the sum.
 */
TEST_F_TIMEOUT(ksm_memcg, move_between_cgroups, 600)
{
	const size_t n = 8;
	uint64_t seed = ksm_unique_seed();
	struct worker *w1, *w2;
	long p1, p2;

	w1 = start_worker(_metadata, self, CG_A, n, seed, false);
	w2 = start_worker(_metadata, self, CG_B, n, seed, false);
	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_shared", 1);
	KSM_EXPECT("pages_sharing", 2 * n - 1);
	p1 = profit_of(_metadata, w1, n, 0, n);
	p2 = profit_of(_metadata, w2, n, 0, n);
	EXPECT_FIGURES(CG_A, pages(n, 0, n, p1));
	EXPECT_FIGURES(CG_B, pages(n, 0, n, p2));
	EXPECT_FIGURES(CG_TOP, pages(2 * n, 0, 2 * n, p1 + p2));

	move_to(_metadata, w1, CG_B);
	EXPECT_FIGURES(CG_A, nothing);
	EXPECT_FIGURES(CG_B, pages(2 * n, 0, 2 * n, p1 + p2));
	EXPECT_FIGURES(CG_TOP, pages(2 * n, 0, 2 * n, p1 + p2));

	move_to(_metadata, w2, CG_A);
	EXPECT_FIGURES(CG_A, pages(n, 0, n, p2));
	EXPECT_FIGURES(CG_B, pages(n, 0, n, p1));
	worker_quit(_metadata, self, w1);
	worker_quit(_metadata, self, w2);
}

/*
 * With merge_domain=cgroup, the debugfs domains table shows each cgroup
 * domain's path and the same figures as the cgroup's memory.stat.
 */
TEST_F_TIMEOUT(ksm_memcg, domains_table, 600)
{
	const size_t n = 8;
	unsigned long members = 0;
	struct figures row, stat;
	struct worker *w;

	if (!debugfs_ready() || access(DOMAINS_TABLE, R_OK))
		SKIP(return, "no " DOMAINS_TABLE);
	ASSERT_EQ(0, ksm_write("merge_domain", "cgroup"));
	w = start_worker(_metadata, self, CG_A, n, ksm_unique_seed(), false);
	KSM_RUN_PASSES(2);
	KSM_EXPECT("pages_sharing", n - 1);
	stat = memory_stat(_metadata, CG_A);
	EXPECT_EQ((long)(n * self->ps), stat.merging);
	ASSERT_EQ(0, domain_row("/ksm_memcg_test/a", &row, &members));
	EXPECT_EQ(1UL, members);
	EXPECT_EQ(stat.merging, row.merging);
	EXPECT_EQ(stat.zero, row.zero);
	EXPECT_EQ(stat.tracked, row.tracked);
	EXPECT_EQ(stat.profit, row.profit);
	worker_quit(_metadata, self, w);
}

/* run=2 unmerges everything and drops every record: all figures 0. */
TEST_F_TIMEOUT(ksm_memcg, run2_clears, 600)
{
	const size_t n = 8;
	struct worker *w;
	long profit;

	w = merged_worker(_metadata, self, n, &profit);
	ASSERT_EQ(0, ksm_write("run", "2"));
	EXPECT_EQ(0, profit_of(_metadata, w, 0, 0, 0));
	EXPECT_FIGURES(CG_A, nothing);
	EXPECT_FIGURES(CG_TOP, nothing);
	worker_quit(_metadata, self, w);
}

TEST_HARNESS_MAIN
