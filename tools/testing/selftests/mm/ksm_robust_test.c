// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
/*
 * Bad input and hostile timing that KSM must survive cleanly:
 *
 *  - madvise(MADV_(UN)MERGEABLE) on ranges that overflow, wrap around the
 *    address space or are not mapped at all: the errno 6.12 gives, and no
 *    VMA changes;
 *  - run=2 written while the processes whose pages it unmerges are
 *    exiting: the write succeeds and nothing stays merged;
 *  - a process writing to pages while they are being merged: no store is
 *    lost and no other process's page changes (this is what the compare
 *    after write-protection is for);
 *  - O_DIRECT reads into pages while they are being merged: the data
 *    lands in the reader's page and in no KSM page (this is what the
 *    refcount check after clearing the PTE is for);
 *  - both races again with every page of one content, so that many pages
 *    of one page table join one KSM page with a single TLB flush;
 *  - unmerging more than a memory cgroup allows, by the process itself
 *    (MADV_UNMERGEABLE) and by an administrator (run=2): the cgroup's task
 *    gets -ENOMEM or is OOM-killed, the writer and the kernel carry on,
 *    and once the task is gone run=2 leaves nothing merged;
 *  - mremap() of merged pages while another thread migrates their KSM
 *    page to the other NUMA node and back: every moved page reads back
 *    its data (a KSM page caught mid-migration must be unmerged too, or
 *    its migration entry moves where the migration never restores it).
 *
 * Kernel warnings, lockdep and KASAN reports are caught by the harness
 * from the kernel log.
 */
/*
 * The 6.12 kselftest harness itself trips these with -Wextra (unused
 * "variant"/"ucontext" parameters, setjmp around fork() in TEST_F).
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"

#include "ksm_test_util.h"
#include "../kselftest_harness.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#ifndef MPOL_MF_MOVE_ALL
#define MPOL_MF_MOVE_ALL	(1 << 2)
#endif

#define CG_ROOT		"/sys/fs/cgroup"
#define MAX_CHILDREN	8

/* Two complete ksmd passes from a reset state merge what is identical. */
#define RUN_PASSES_OR_FAIL() do {					\
	unsigned long __seen = 0;					\
	int __e = ksm_run_passes(2, NULL, &__seen);			\
	ASSERT_EQ(0, __e)						\
		TH_LOG("ksmd: full_scans at %lu, wanted +2, none for %ds: %s", \
		       __seen, KSM_SCAN_TIMEOUT_SEC, strerror(-__e));	\
} while (0)

FIXTURE(ksm_robust) {
	struct ksm_saved_knobs saved;
	pid_t children[MAX_CHILDREN];
	int nchildren;
	char cgroup[128];	/* "" unless this test made one */
	bool enabled_memory;	/* we turned on +memory at the root */
	int zram;		/* -1 unless this test made one */
	bool zram_hot;
};

FIXTURE_SETUP(ksm_robust)
{
	const char *why = ksm_skip_reason();

	if (why)
		SKIP(return, "%s", why);
	self->nchildren = 0;
	self->cgroup[0] = '\0';
	self->enabled_memory = false;
	self->zram = -1;
	ksm_save_knobs(&self->saved);
	ASSERT_EQ(0, ksm_reset());
	ASSERT_EQ(0, ksm_fast_scanning());
	ASSERT_EQ(0, ksm_write("max_page_sharing", "256"));
	ASSERT_EQ(0, ksm_write("use_zero_pages", "0"));
}

static void reap_children(FIXTURE_DATA(ksm_robust) *self)
{
	int i;

	for (i = 0; i < self->nchildren; i++) {
		if (self->children[i] <= 0)
			continue;
		kill(self->children[i], SIGKILL);
		waitpid(self->children[i], NULL, 0);
		self->children[i] = 0;
	}
	self->nchildren = 0;
}

FIXTURE_TEARDOWN(ksm_robust)
{
	reap_children(self);
	if (self->cgroup[0] && rmdir(self->cgroup))
		TH_LOG("rmdir %s: %s", self->cgroup, strerror(errno));
	if (self->enabled_memory)
		ksm_write_str(CG_ROOT "/cgroup.subtree_control", "-memory");
	if (self->zram >= 0)
		ksm_zram_remove(self->zram, self->zram_hot);
	EXPECT_EQ(0, ksm_reset());
	EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
}

/* ------------------------------------------------------------------ */
/* madvise ranges                                                     */
/* ------------------------------------------------------------------ */

static void expect_madvise_err(struct __test_metadata *_metadata, void *p,
			       size_t len, int err, const char *what)
{
	static const int advice[] = { MADV_MERGEABLE, MADV_UNMERGEABLE };
	size_t i;

	for (i = 0; i < 2; i++) {
		errno = 0;
		EXPECT_EQ(-1, madvise(p, len, advice[i]))
			TH_LOG("%s: advice %d accepted", what, advice[i]);
		EXPECT_EQ(err, errno)
			TH_LOG("%s: advice %d: %s", what, advice[i], strerror(errno));
	}
}

TEST_F(ksm_robust, madvise_bad_ranges)
{
	size_t ps = ksm_page_size();
	char *area, *hole, *part;

	area = ksm_map(4);
	ASSERT_NE(MAP_FAILED, area);

	/* The length rounds up past the top of the address space. */
	expect_madvise_err(_metadata, area, SIZE_MAX, EINVAL, "SIZE_MAX");
	expect_madvise_err(_metadata, area, SIZE_MAX - ps + 2, EINVAL,
			   "length rounding to 0");
	/* start + length wraps around to a low address. */
	expect_madvise_err(_metadata, area, (size_t)0 - (uintptr_t)area + ps,
			   EINVAL, "wrapping range");
	/* Nothing changed on the way. */
	EXPECT_EQ(0, ksm_vma_mergeable(0, area));

	/* Not mapped at all. */
	hole = ksm_map(4);
	ASSERT_NE(MAP_FAILED, hole);
	ksm_unmap(hole, 4);
	expect_madvise_err(_metadata, hole, 4 * ps, ENOMEM, "unmapped range");
	/*
	 * Mapped at the start only: ENOMEM, but the mapped part is advised
	 * anyway (the VMA is split there), as 6.12 does.
	 */
	part = mmap(NULL, 8 * ps, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, part);
	ASSERT_EQ(0, munmap(part + 4 * ps, 4 * ps));
	errno = 0;
	EXPECT_EQ(-1, madvise(part + 2 * ps, 6 * ps, MADV_MERGEABLE));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(0, ksm_vma_mergeable(0, part));
	EXPECT_EQ(1, ksm_vma_mergeable(0, part + 2 * ps));
	errno = 0;
	EXPECT_EQ(-1, madvise(part + 2 * ps, 6 * ps, MADV_UNMERGEABLE));
	EXPECT_EQ(ENOMEM, errno);
	/* Un-advised, the two halves are one VMA again. */
	EXPECT_EQ(0, ksm_vma_mergeable(0, part));
	munmap(part, 4 * ps);

	ksm_unmap(area, 4);
}

/* ------------------------------------------------------------------ */
/* Children holding merged pages                                      */
/* ------------------------------------------------------------------ */

/*
 * A child that maps @npages pages of @seed (0: zero-filled), makes them
 * mergeable, writes one byte to @ready[1] and waits for the write end of
 * @go to close; then it sleeps @delay_us and exits.  If @cgroup is set,
 * it joins it first.
 */
static pid_t spawn_holder(size_t npages, uint64_t seed, const int ready[2],
			  const int go[2], unsigned int delay_us,
			  const char *cgroup)
{
	pid_t pid = fork();
	size_t i;
	char *p, c = 1;

	if (pid)
		return pid;
	/* Only the parent may hold these, or "go" never reaches EOF. */
	close(ready[0]);
	close(go[1]);
	if (cgroup && ksm_join_cgroup(cgroup))
		_exit(90);
	p = ksm_map(npages);
	if (p == MAP_FAILED)
		_exit(91);
	for (i = 0; i < npages; i++) {
		if (seed)
			ksm_fill_page(ksm_page_at(p, i), seed);
		else
			memset(ksm_page_at(p, i), 0, ksm_page_size());
	}
	if (madvise(p, npages * ksm_page_size(), MADV_MERGEABLE))
		_exit(92);
	if (write(ready[1], &c, 1) != 1)
		_exit(93);
	while (read(go[0], &c, 1) > 0)
		;
	if (delay_us)
		usleep(delay_us);
	_exit(0);
}

/* Wait for @n one-byte "ready" notes on @fd. */
static int wait_ready(int fd, int n)
{
	char c;

	while (n > 0) {
		if (read(fd, &c, 1) != 1)
			return -1;
		n--;
	}
	return 0;
}

/*
 * run=2 while the processes that hold the merged pages exit: sometimes
 * before run=2 reaches them, sometimes while it walks their page tables,
 * sometimes after.  The write must succeed and leave nothing merged.
 */
TEST_F_TIMEOUT(ksm_robust, run2_while_exiting, 600)
{
	const size_t npages = 512;
	int round, i;

	for (round = 0; round < 6; round++) {
		uint64_t seed = round & 1 ? 0 : ksm_unique_seed();
		int ready[2], go[2], status, err;

		ASSERT_EQ(0, ksm_reset());
		ASSERT_EQ(0, ksm_write("use_zero_pages", round & 1 ? "1" : "0"));
		ASSERT_EQ(0, pipe(ready));
		ASSERT_EQ(0, pipe(go));
		for (i = 0; i < MAX_CHILDREN; i++) {
			/* Spread the exits over the run=2 walk. */
			pid_t pid = spawn_holder(npages, seed, ready, go,
						 (unsigned int)(i * round * 500),
						 NULL);

			ASSERT_LE(0, pid);
			self->children[self->nchildren++] = pid;
		}
		close(ready[1]);
		close(go[0]);
		ASSERT_EQ(0, wait_ready(ready[0], MAX_CHILDREN));
		close(ready[0]);
		RUN_PASSES_OR_FAIL();
		/* Everything merged: into one KSM page, or the zero page. */
		EXPECT_EQ(MAX_CHILDREN * npages,
			  seed ? ksm_get("pages_shared") + ksm_get("pages_sharing") :
				 ksm_get("ksm_zero_pages"));

		close(go[1]);	/* children start exiting */
		err = ksm_write("run", "2");
		EXPECT_EQ(0, err) TH_LOG("round %d: run=2: %s", round,
					 strerror(-err));
		for (i = 0; i < self->nchildren; i++) {
			ASSERT_EQ(self->children[i],
				  waitpid(self->children[i], &status, 0));
			EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
				TH_LOG("child %d: status %#x", i, status);
			self->children[i] = 0;
		}
		self->nchildren = 0;
		EXPECT_EQ(2UL, ksm_get("run"));
		EXPECT_EQ(0UL, ksm_get("pages_shared")) TH_LOG("round %d", round);
		EXPECT_EQ(0UL, ksm_get("pages_sharing")) TH_LOG("round %d", round);
		EXPECT_EQ(0UL, ksm_get("ksm_zero_pages")) TH_LOG("round %d", round);
	}
}

/* ------------------------------------------------------------------ */
/* Unmerging beyond a memory cgroup's limit                           */
/* ------------------------------------------------------------------ */

/* Make a memory cgroup with no swap; "" and a skip reason if impossible. */
static const char *make_memcg(FIXTURE_DATA(ksm_robust) *self)
{
	char buf[256], path[192];
	int err;

	if (ksm_read_file(CG_ROOT "/cgroup.controllers", buf, sizeof(buf)) < 0)
		return "no cgroup v2 at " CG_ROOT;
	if (!strstr(buf, "memory"))
		return "no memory controller in cgroup v2";
	if (ksm_read_file(CG_ROOT "/cgroup.subtree_control", buf, sizeof(buf)) < 0)
		return "cannot read cgroup.subtree_control";
	if (!strstr(buf, "memory")) {
		if (ksm_write_str(CG_ROOT "/cgroup.subtree_control", "+memory"))
			return "cannot enable the memory controller";
		self->enabled_memory = true;
	}
	snprintf(self->cgroup, sizeof(self->cgroup), CG_ROOT "/ksm_robust.%d",
		 (int)getpid());
	if (mkdir(self->cgroup, 0755)) {
		self->cgroup[0] = '\0';
		return "cannot create a cgroup";
	}
	snprintf(path, sizeof(path), "%s/memory.swap.max", self->cgroup);
	err = ksm_write_str(path, "0");
	if (err && err != -ENOENT)
		return "cannot disable swap in the cgroup";
	return NULL;
}

static int memcg_set(FIXTURE_DATA(ksm_robust) *self, const char *file,
		     const char *val)
{
	char path[192];

	snprintf(path, sizeof(path), "%s/%s", self->cgroup, file);
	return ksm_write_str(path, val);
}

static long memcg_event(FIXTURE_DATA(ksm_robust) *self, const char *event)
{
	char path[192], buf[512], *s;
	size_t len = strlen(event);

	snprintf(path, sizeof(path), "%s/memory.events", self->cgroup);
	if (ksm_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	for (s = buf; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
		if (!strncmp(s, event, len) && s[len] == ' ')
			return atol(s + len + 1);
	return -1;
}

/*
 * 16 MiB of identical pages in a cgroup, merged down to one page; then
 * the limit drops to 4 MiB and the pages are unmerged: by the process
 * itself (@by_admin false: MADV_UNMERGEABLE, reported through its exit
 * status) or by run=2 from outside the cgroup.
 */
static void unmerge_over_limit(struct __test_metadata *_metadata,
			       FIXTURE_DATA(ksm_robust) *self, bool by_admin)
{
	const size_t npages = (16UL << 20) / ksm_page_size();
	int ready[2], go[2], status, err;
	const char *why;
	pid_t pid;

	why = make_memcg(self);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		size_t i, len = npages * ksm_page_size();
		uint64_t seed = 0x5eed;
		char *p, c = 1;

		close(ready[0]);
		close(go[1]);
		if (ksm_join_cgroup(self->cgroup))
			_exit(90);
		p = ksm_map(npages);
		if (p == MAP_FAILED)
			_exit(91);
		for (i = 0; i < npages; i++)
			ksm_fill_page(ksm_page_at(p, i), seed);
		if (madvise(p, len, MADV_MERGEABLE) || write(ready[1], &c, 1) != 1)
			_exit(92);
		while (read(go[0], &c, 1) > 0)
			;
		if (!by_admin && madvise(p, len, MADV_UNMERGEABLE))
			_exit(errno == ENOMEM ? 10 : 93);
		/* Whatever is still mapped must be intact. */
		for (i = 0; i < npages; i++)
			if (!ksm_page_matches(ksm_page_at(p, i), seed))
				_exit(94);
		_exit(0);
	}
	self->children[self->nchildren++] = pid;
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ(0, wait_ready(ready[0], 1));
	RUN_PASSES_OR_FAIL();
	ASSERT_EQ(npages, ksm_get("pages_shared") + ksm_get("pages_sharing"));
	err = memcg_set(self, "memory.max", "4M");
	ASSERT_EQ(0, err) TH_LOG("memory.max: %s", strerror(-err));

	if (by_admin) {
		err = ksm_write("run", "2");
		/* Either done (the task died, freeing its pages) or ENOMEM. */
		EXPECT_TRUE(!err || err == -ENOMEM)
			TH_LOG("run=2 over the limit: %s", strerror(-err));
		if (err)
			EXPECT_EQ(0UL, ksm_get("run"));
	}
	close(go[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	self->children[0] = 0;
	self->nchildren = 0;
	if (WIFSIGNALED(status)) {
		EXPECT_EQ(SIGKILL, WTERMSIG(status));
		EXPECT_LE(1, memcg_event(self, "oom_kill"))
			TH_LOG("killed, but not by the memcg OOM killer");
	} else {
		ASSERT_TRUE(WIFEXITED(status));
		/* Unmerging 16 MiB within 4 MiB cannot have succeeded. */
		EXPECT_EQ(by_admin ? 0 : 10, WEXITSTATUS(status))
			TH_LOG("child exit status %d", WEXITSTATUS(status));
	}
	EXPECT_LE(1, memcg_event(self, "max"));

	/* With the task gone, unmerging everything works and is complete. */
	ASSERT_EQ(0, ksm_reset());
	EXPECT_EQ(0UL, ksm_get("pages_shared"));
	EXPECT_EQ(0UL, ksm_get("pages_sharing"));
}

TEST_F_TIMEOUT(ksm_robust, madv_unmergeable_over_memcg_limit, 600)
{
	unmerge_over_limit(_metadata, self, false);
}

TEST_F_TIMEOUT(ksm_robust, run2_over_memcg_limit, 600)
{
	unmerge_over_limit(_metadata, self, true);
}

/* ------------------------------------------------------------------ */
/* Writes racing with merges                                          */
/* ------------------------------------------------------------------ */

#define RACE_PAGES	512
/*
 * ksmd races the writers for RACE_MAX_PASSES passes or RACE_SECS seconds,
 * whichever ends first, and at least RACE_MIN_PASSES passes: a quiet host
 * makes the 300 passes in about a minute, a loaded one fewer in the time.
 */
#define RACE_MIN_PASSES	20
#define RACE_MAX_PASSES	300
#define RACE_SECS	90

/* Shared between the parent and the two racers. */
struct race_state {
	volatile int stop;
	volatile int ready;
	volatile long corrupt[2];	/* holder, writer (or reader) */
	volatile long rounds[2];
	volatile long merged_reads;	/* reader: reads into a KSM page */
};

/* A racer's own mergeable copy of @ref's RACE_PAGES pages; then ready. */
static char *racer_join(struct race_state *st, const char *ref)
{
	char *p = ksm_map(RACE_PAGES);

	if (p == MAP_FAILED)
		_exit(90);
	memcpy(p, ref, RACE_PAGES * ksm_page_size());
	if (madvise(p, RACE_PAGES * ksm_page_size(), MADV_MERGEABLE))
		_exit(91);
	__atomic_add_fetch(&st->ready, 1, __ATOMIC_SEQ_CST);
	return p;
}

/*
 * Holder: RACE_PAGES pages of content A(i), checked whole, over and over.
 * Writer: the same pages, whose first word it keeps flipping between
 * A(i) and B(i) = A(i) with one bit changed, reading each store back.
 *
 * A merge decided on content A must not go through when the page turned
 * into B before it was write-protected: the writer's store would be lost
 * (its read-back sees A again), or the holder's page would be replaced by
 * a B page.  Only the compare made after write-protecting catches this.
 */
static void racer(struct race_state *st, int who, char *ref)
{
	size_t ps = ksm_page_size(), i;
	long corrupt = 0, round = 0;
	uint64_t *expect = malloc(RACE_PAGES * sizeof(*expect));
	char *p;

	if (!expect)
		_exit(90);
	for (i = 0; i < RACE_PAGES; i++)
		expect[i] = *(uint64_t *)(ref + i * ps);
	p = racer_join(st, ref);
	while (!st->stop) {
		for (i = 0; i < RACE_PAGES; i++) {
			volatile uint64_t *word = (uint64_t *)(p + i * ps);

			if (who) {
				/* What this process stored last must be there. */
				if (*word != expect[i] ||
				    memcmp(p + i * ps + 8, ref + i * ps + 8, ps - 8))
					corrupt++;
				expect[i] ^= 1;
				*word = expect[i];
			} else if (memcmp(p + i * ps, ref + i * ps, ps)) {
				corrupt++;
			}
		}
		st->corrupt[who] = corrupt;
		st->rounds[who] = ++round;
	}
	_exit(0);
}

/*
 * Once the holder and the second racer are ready, let ksmd race them for
 * RACE_MIN_PASSES..RACE_MAX_PASSES passes, then stop and reap both; each
 * must exit cleanly.
 */
static void race_ksmd(struct __test_metadata *_metadata,
		      FIXTURE_DATA(ksm_robust) *self, struct race_state *st,
		      const char *second)
{
	struct ksm_scan_run run = {
		.min_passes = RACE_MIN_PASSES, .max_passes = RACE_MAX_PASSES,
		.secs = RACE_SECS, .bound = KSM_SCAN_TIMEOUT_SEC,
	};
	int who, status, err;

	while (__atomic_load_n(&st->ready, __ATOMIC_SEQ_CST) < 2)
		usleep(1000);
	err = ksm_run_scans(&run);
	EXPECT_EQ(0, err) TH_LOG("ksmd: %lu passes, then none for %ds: %s",
				 run.passes, KSM_SCAN_TIMEOUT_SEC, strerror(-err));
	TH_LOG("%lu passes of ksmd in %.1f s", run.passes, run.elapsed);
	EXPECT_LE(RACE_MIN_PASSES, run.passes);
	st->stop = 1;
	for (who = 0; who < 2; who++) {
		ASSERT_EQ(self->children[who],
			  waitpid(self->children[who], &status, 0));
		self->children[who] = 0;
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("%s ended with status %#x",
			       who ? second : "holder", status);
	}
	self->nchildren = 0;
}

/*
 * @ref's RACE_PAGES pages: each its own content, or (@one_content) all
 * the same, so that ksmd merges many pages of one page table into one KSM
 * page at once, with one TLB flush (ksm_join_pages()).
 */
static void race_fill(char *ref, bool one_content)
{
	uint64_t seed = ksm_unique_seed();
	size_t ps = ksm_page_size(), i;

	for (i = 0; i < RACE_PAGES; i++)
		ksm_fill_page(ref + i * ps,
			      one_content ? seed : ksm_unique_seed());
}

static void writes_race(struct __test_metadata *_metadata,
			FIXTURE_DATA(ksm_robust) *self, bool one_content)
{
	size_t ps = ksm_page_size();
	unsigned long cow0 = 0, cow1 = 0;
	struct race_state *st;
	int who;
	char *ref;

	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, st);
	ref = malloc(RACE_PAGES * ps);
	ASSERT_NE(NULL, ref);
	race_fill(ref, one_content);
	for (who = 0; who < 2; who++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid)
			racer(st, who, ref);
		self->children[self->nchildren++] = pid;
	}
	ASSERT_EQ(0, ksm_vmstat("cow_ksm", &cow0));
	race_ksmd(_metadata, self, st, "writer");
	ASSERT_EQ(0, ksm_vmstat("cow_ksm", &cow1));
	TH_LOG("%ld holder and %ld writer rounds, %lu copy-on-write faults on KSM pages",
	       st->rounds[0], st->rounds[1], cow1 - cow0);
	EXPECT_EQ(0L, st->corrupt[0]) TH_LOG("holder saw its pages change");
	EXPECT_EQ(0L, st->corrupt[1]) TH_LOG("writer lost stores");
	/* Not vacuous: the writer's pages did get merged under it. */
	EXPECT_LT(0UL, cow1 - cow0);
	munmap(st, sizeof(*st));
	free(ref);
}

TEST_F_TIMEOUT(ksm_robust, writes_racing_merges, 600)
{
	writes_race(_metadata, self, false);
}

/* The same, all pages one content: merges of many pages, one flush. */
TEST_F_TIMEOUT(ksm_robust, writes_racing_group_merges, 600)
{
	writes_race(_metadata, self, true);
}

/* ------------------------------------------------------------------ */
/* O_DIRECT reads racing with merges                                  */
/* ------------------------------------------------------------------ */

/*
 * Reader: the holder's RACE_PAGES pages of A(i), each of which it keeps
 * refilling with A(i), so that ksmd merges it again, and then overwrites
 * with an O_DIRECT read of B(i) from @fd. The read's pin either comes
 * first, and the merge must see it and back off, or comes after the
 * merge, and GUP must give the reader its own copy. Either way B(i) ends
 * up in the reader's page and nowhere else: the holder's pages, merged
 * with the reader's, stay A(i).
 */
static void odirect_reader(struct race_state *st, const char *ref,
			   const char *dev_data, int fd)
{
	size_t ps = ksm_page_size(), i;
	long corrupt = 0, round = 0, merged = 0;
	char *p = racer_join(st, ref);

	while (!st->stop) {
		for (i = 0; i < RACE_PAGES; i++) {
			char *page = p + i * ps;

			/* Private memory mapped twice is a KSM page. */
			merged += ksm_page_exclusive(page) == 0;
			if (pread(fd, page, ps, (off_t)(i * ps)) != (ssize_t)ps)
				_exit(92);
			if (memcmp(page, dev_data + i * ps, ps))
				corrupt++;
			memcpy(page, ref + i * ps, ps);
		}
		st->corrupt[1] = corrupt;
		st->merged_reads = merged;
		st->rounds[1] = ++round;
	}
	_exit(0);
}

static void odirect_race(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ksm_robust) *self, bool one_content)
{
	size_t ps = ksm_page_size(), i, len = RACE_PAGES * ps;
	char dev[64], why[160], *ref, *dev_data;
	struct race_state *st;
	int who, fd;

	self->zram = ksm_zram_add(len, &self->zram_hot, dev, sizeof(dev),
				  why, sizeof(why));
	if (self->zram < 0)
		SKIP(return, "%s", why);
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0)
		SKIP(return, "open %s with O_DIRECT: %s", dev, strerror(errno));
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, st);
	ref = ksm_map(RACE_PAGES);
	dev_data = ksm_map(RACE_PAGES);
	ASSERT_NE(MAP_FAILED, ref);
	ASSERT_NE(MAP_FAILED, dev_data);
	race_fill(ref, one_content);
	for (i = 0; i < RACE_PAGES; i++)
		ksm_fill_page(dev_data + i * ps, ksm_unique_seed());
	ASSERT_EQ((ssize_t)len, pwrite(fd, dev_data, len, 0))
		TH_LOG("O_DIRECT write to %s: %s", dev, strerror(errno));

	for (who = 0; who < 2; who++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid && !who)
			racer(st, 0, ref);
		if (!pid)
			odirect_reader(st, ref, dev_data, fd);
		self->children[self->nchildren++] = pid;
	}
	race_ksmd(_metadata, self, st, "reader");
	TH_LOG("%ld holder and %ld reader rounds, %ld reads into KSM pages",
	       st->rounds[0], st->rounds[1], st->merged_reads);
	EXPECT_EQ(0L, st->corrupt[0]) TH_LOG("the holder saw O_DIRECT data");
	EXPECT_EQ(0L, st->corrupt[1]) TH_LOG("O_DIRECT data missing in the reader's page");
	/* Not vacuous: reads did go into pages ksmd had merged. */
	EXPECT_LT(0L, st->merged_reads);
	close(fd);
	munmap(st, sizeof(*st));
	ksm_unmap(ref, RACE_PAGES);
	ksm_unmap(dev_data, RACE_PAGES);
}

TEST_F_TIMEOUT(ksm_robust, odirect_reads_racing_merges, 600)
{
	odirect_race(_metadata, self, false);
}

/* The same, all pages one content: merges of many pages, one flush. */
TEST_F_TIMEOUT(ksm_robust, odirect_reads_racing_group_merges, 600)
{
	odirect_race(_metadata, self, true);
}

/* ------------------------------------------------------------------ */
/* mremap racing migration                                            */
/* ------------------------------------------------------------------ */

#define MIG_PAGES	32
#define MIG_ROUNDS	100
#define MIG_SECS	60

struct migrator {
	void *pages[MIG_PAGES];
	volatile int stop;
	long moves, failed;
};

/* Move the pages to node 1, back to node 0, and so on until told to stop. */
static void *migrate_loop(void *arg)
{
	struct migrator *m = arg;
	int nodes[MIG_PAGES], status[MIG_PAGES], node = 1, i;

	while (!m->stop) {
		for (i = 0; i < MIG_PAGES; i++)
			nodes[i] = node;
		if (syscall(SYS_move_pages, 0, (unsigned long)MIG_PAGES,
			    m->pages, nodes, status, MPOL_MF_MOVE_ALL))
			m->failed++;
		m->moves++;
		node = !node;
	}
	return NULL;
}

static bool numa_two_nodes(void)
{
	return !access("/sys/devices/system/node/node0", F_OK) &&
	       !access("/sys/devices/system/node/node1", F_OK);
}

/*
 * Each round merges MIG_PAGES pages of one content into one KSM page,
 * then mremap()s them one by one to another area while a thread keeps
 * migrating them between the nodes; every moved page must read back its
 * content at once (a lost migration entry would leave the fault waiting
 * for a migration that already ended: the harness's timeout turns that
 * hang red).
 */
TEST_F_TIMEOUT(ksm_robust, mremap_racing_migration, 600)
{
	size_t ps = ksm_page_size(), i;
	unsigned long merged = 0, rounds = 0, moves = 0;
	double t0 = ksm_now();
	struct migrator m;
	pthread_t thread;
	char *ref;

	if (!numa_two_nodes())
		SKIP(return, "needs NUMA nodes 0 and 1");
	ref = malloc(ps);
	ASSERT_NE(NULL, ref);
	ksm_fill_page(ref, ksm_unique_seed());
	while (rounds < MIG_ROUNDS && ksm_now() - t0 < MIG_SECS) {
		char *src = ksm_map(MIG_PAGES), *dst = ksm_map(MIG_PAGES);

		ASSERT_NE(MAP_FAILED, src);
		ASSERT_NE(MAP_FAILED, dst);
		memset(&m, 0, sizeof(m));
		for (i = 0; i < MIG_PAGES; i++) {
			memcpy(src + i * ps, ref, ps);
			m.pages[i] = src + i * ps;
		}
		ASSERT_EQ(0, madvise(src, MIG_PAGES * ps, MADV_MERGEABLE));
		RUN_PASSES_OR_FAIL();
		merged += ksm_get("pages_sharing");

		ASSERT_EQ(0, pthread_create(&thread, NULL, migrate_loop, &m));
		for (i = 0; i < MIG_PAGES; i++) {
			char *to = mremap(src + i * ps, ps, ps,
					  MREMAP_MAYMOVE | MREMAP_FIXED,
					  dst + i * ps);

			ASSERT_EQ(dst + i * ps, to);
			ASSERT_EQ(0, memcmp(to, ref, ps))
				TH_LOG("round %lu: page %zu moved by mremap() lost its data",
				       rounds, i);
		}
		m.stop = 1;
		ASSERT_EQ(0, pthread_join(thread, NULL));
		moves += m.moves;
		for (i = 0; i < MIG_PAGES; i++)
			ASSERT_EQ(0, memcmp(dst + i * ps, ref, ps));
		ksm_unmap(dst, MIG_PAGES);
		ksm_unmap(src, MIG_PAGES);
		ASSERT_EQ(0, ksm_reset());
		rounds++;
	}
	TH_LOG("%lu rounds in %.1f s, %lu page merges, %lu move_pages() calls",
	       rounds, ksm_now() - t0, merged, moves);
	/* Not vacuous: pages were merged and migrated while being moved. */
	EXPECT_LT(0UL, merged);
	EXPECT_LT(0UL, moves);
	free(ref);
}

TEST_HARNESS_MAIN
