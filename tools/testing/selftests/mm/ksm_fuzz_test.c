// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_fuzz_test: KSM against random, seeded sequences of memory operations,
 * with every byte checked.
 *
 * A session runs PROCS worker processes. Each draws operations from its own
 * generator: mmap, munmap, mremap (grow, shrink, move), mprotect, fork (the
 * child runs the same loop), exit, exec of this binary, madvise
 * (MERGEABLE, UNMERGEABLE, DONTNEED, FREE, COLD, PAGEOUT, WIPEONFORK,
 * DONTFORK, HUGEPAGE, NOHUGEPAGE, COLLAPSE), prctl(PR_SET_MEMORY_MERGE) and
 * PR_KSM_DOMAIN, writes of a few contents (so that merges happen all the
 * time), O_DIRECT reads into mergeable memory, userfaultfd write-protect
 * and move_pages() between NUMA nodes. Swap is a zram device and the
 * workers share a memory cgroup whose memory.high the controller moves,
 * so pages go out and come back.
 *
 * The controller flips KSM's knobs meanwhile (run 0/1/2, pages_to_scan,
 * sleep_millisecs, ksmd_threads, merge_domain, use_zero_pages,
 * max_page_sharing, merge_across_nodes, huge_split_min_subpages,
 * smart_scan, advisor_mode, THP enabled and defrag) and, every few
 * seconds, freezes the workers' cgroup and stops ksmd to check the
 * counters for impossible values: negative ones, pages_sharing without
 * pages_shared, the per-process KSM zero pages not adding up to the global
 * figure, per-process merging pages beyond what the global counters hold.
 * The kernel log is watched for any report.
 *
 * Every worker knows what each of its pages must hold and checks it after
 * each operation that could have changed it, and all of them before it
 * exits or execs. A failure prints the seed and the last operations of
 * every worker; running again with the same seed replays the same
 * sequences (the interleaving is up to the scheduler).
 *
 *   ksm_fuzz_test              bounded profile: a fixed seed, then a random
 *                              one (printed), 60 s each, 3 workers
 *   ksm_fuzz_test -d SECONDS [-s SEED] [-p PROCS] [-v]
 *                              one session (make fuzz)
 *
 * TAP: one test per session. Exit 4 (skip) without KSM or root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
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
#include <sys/wait.h>
#include <dirent.h>
#include <limits.h>
#include <linux/userfaultfd.h>

#include "ksm_test_util.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_SLOTS	16	/* workers alive at once, forks included */
#define MAX_REGIONS	10	/* per worker */
#define MAX_PAGES	512	/* per region */
#define NR_CONTENTS	6	/* contents besides zero */
#define LOG_OPS		12	/* operations remembered per worker */
#define CG_PATH		"/sys/fs/cgroup/ksm_fuzz"
#define CHECK_EVERY	5.0	/* seconds between counter checks */
#define EXIT_GRACE	120	/* seconds for workers to finish after stop */

/* What a page must hold: a content id, or one of two ids when unsure. */
#define ZERO		0	/* all zero; 1..NR_CONTENTS: that content */
#define MAYBE_ZERO	0x80	/* MADV_FREE: the content below, or zero */

/* The last operations of one worker slot, for failure reports. */
struct op_log {
	int pid;
	unsigned int next;
	char op[LOG_OPS][96];
};

/* Shared by the controller and every worker, across fork and exec. */
struct fuzz_shared {
	uint64_t seed;
	int stop;		/* set by the controller: finish up */
	int failed;		/* a worker saw a corrupt page or a bad call */
	char why[256];
	long ops;
	long forks, execs, odirect, uffd_wp, moves;
	long dropped_mid_check;	/* MADV_FREE pages dropped while checked */
	unsigned int slot_used[MAX_SLOTS];
	struct op_log log[MAX_SLOTS];
	char odirect_dev[64];	/* zram device holding every content */
};

/* One mapping of a worker and what each page of it holds. */
struct region {
	char *addr;
	size_t npages;
	bool dontfork;
	bool wipeonfork;
	unsigned char want[MAX_PAGES];
};

static struct fuzz_shared *sh;
static const char *shared_path;
static size_t ps;
static unsigned char *contents;	/* page i: content i (0: zero) */
static bool verbose;

/* ------------------------------------------------------------------ */
/* Generator: ksm_xorshift(), one per process                           */
/* ------------------------------------------------------------------ */

static uint64_t rng;

static uint64_t rnd(void)
{
	return ksm_xorshift(&rng);
}

static size_t below(size_t n)
{
	return n ? rnd() % n : 0;
}

static void seed_rng(uint64_t seed)
{
	rng = ksm_mix(seed) | 1;
}

static double now(void)
{
	return ksm_now();
}

/* ------------------------------------------------------------------ */
/* Worker state and its log                                           */
/* ------------------------------------------------------------------ */

static int slot = -1;
static bool forked_child;	/* a worker's child: may exit on its own */
static int depth;		/* forks from the original worker */
static struct region regions[MAX_REGIONS];
static int nregions;
static pid_t children[MAX_SLOTS];
static int nchildren;

static void logop(const char *fmt, ...)
{
	struct op_log *l = &sh->log[slot];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->op[l->next % LOG_OPS], sizeof(l->op[0]), fmt, ap);
	va_end(ap);
	l->next++;
	__atomic_add_fetch(&sh->ops, 1, __ATOMIC_RELAXED);
	if (verbose)
		printf("# [%d] %s\n", slot, l->op[(l->next - 1) % LOG_OPS]);
}

/* Record a failure for the controller and stop this process. */
static void die(const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!__atomic_exchange_n(&sh->failed, 1, __ATOMIC_SEQ_CST))
		snprintf(sh->why, sizeof(sh->why), "worker %d (pid %d): %s",
			 slot, getpid(), msg);
	printf("# FAIL worker %d (pid %d): %s\n", slot, getpid(), msg);
	fflush(stdout);
	_exit(1);
}

static int claim_slot(void)
{
	int i;

	for (i = 0; i < MAX_SLOTS; i++)
		if (!__atomic_exchange_n(&sh->slot_used[i], 1, __ATOMIC_SEQ_CST))
			return i;
	return -1;
}

static void take_slot(int s)
{
	slot = s;
	sh->log[s].pid = getpid();
	sh->log[s].next = 0;
}

/* ------------------------------------------------------------------ */
/* Contents                                                           */
/* ------------------------------------------------------------------ */

static const unsigned char *content(int id)
{
	return contents + (size_t)id * ps;
}

static void make_contents(void)
{
	int i;

	contents = calloc(NR_CONTENTS + 1, ps);
	if (!contents)
		exit(1);
	/* Fixed, so that every process of every session agrees on them. */
	for (i = 1; i <= NR_CONTENTS; i++)
		ksm_fill_page(contents + i * ps, 0x6b736d00 + i);
}

static bool page_ok(const char *page, unsigned char want)
{
	if (want & MAYBE_ZERO)
		return ksm_page_is_zero(page) ||
		       !memcmp(page, content(want & ~MAYBE_ZERO), ps);
	return !memcmp(page, content(want), ps);
}

/* The content id of @page, ZERO, or -1 if it holds none of them. */
static int content_of(const char *page)
{
	int id;

	if (ksm_page_is_zero(page))
		return ZERO;
	for (id = 1; id <= NR_CONTENTS; id++)
		if (!memcmp(page, content(id), ps))
			return id;
	return -1;
}

/*
 * Print what a wrong page holds: which 8-byte words are zero, which match
 * which content, its frame and flags; then again a moment later, since a
 * page that changes by itself is one the kernel gave to someone else.
 */
static void describe_page(const char *p, unsigned char want)
{
	size_t words = ps / 8, w, zero = 0, first_nonzero = words, same = 0;
	const uint64_t *v = (const uint64_t *)p;
	const uint64_t *c = (const uint64_t *)content(want & ~MAYBE_ZERO);
	uint64_t ent = 0;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		zero = same = 0;
		first_nonzero = words;
		for (w = 0; w < words; w++) {
			zero += !v[w];
			same += v[w] == c[w];
			if (v[w] && first_nonzero == words)
				first_nonzero = w;
		}
		ksm_pagemap_of(0, p, &ent);
		printf("# page %p%s: %zu of %zu words zero (first non-zero word %zu), %zu words as wanted, now content %d, pagemap %016llx\n",
		       p, pass ? " 100 ms later" : "", zero, words, first_nonzero,
		       same, content_of(p), (unsigned long long)ent);
		usleep(100 * 1000);
	}
}

static void check_pages(struct region *r, size_t first, size_t n,
			const char *after)
{
	size_t i;

	for (i = first; i < first + n && i < r->npages; i++) {
		const char *p = r->addr + i * ps;

		if (page_ok(p, r->want[i])) {
			/* Dropped by MADV_FREE: zero from now on. */
			if ((r->want[i] & MAYBE_ZERO) && ksm_page_is_zero(p))
				r->want[i] = ZERO;
			continue;
		}
		/*
		 * Reclaim may drop a MADV_FREE page while we read it: the
		 * reads before saw the content, those after see zeros (the
		 * zero page), and no read saw the page whole. Once dropped it
		 * stays zero until written, so a second look settles it.
		 */
		if ((r->want[i] & MAYBE_ZERO) && ksm_page_is_zero(p)) {
			r->want[i] = ZERO;
			__atomic_add_fetch(&sh->dropped_mid_check, 1,
					   __ATOMIC_RELAXED);
			continue;
		}
		describe_page(p, r->want[i]);
		die("after %s: page %zu of %p (%zu pages) wrong: want content %d%s, found content %d",
		    after, i, r->addr, r->npages, r->want[i] & ~MAYBE_ZERO,
		    r->want[i] & MAYBE_ZERO ? " or zero" : "", content_of(p));
	}
}

static void check_region(struct region *r, const char *after)
{
	check_pages(r, 0, r->npages, after);
}

static void check_all(const char *after)
{
	int i;

	for (i = 0; i < nregions; i++)
		check_region(&regions[i], after);
}

static void write_page(struct region *r, size_t i, int id)
{
	memcpy(r->addr + i * ps, content(id), ps);
	r->want[i] = id;
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */
/* ------------------------------------------------------------------ */

static struct region *pick_region(void)
{
	return nregions ? &regions[below(nregions)] : NULL;
}

/* A random range [*first, *first + *n) of @r, at most @max pages. */
static void pick_range(struct region *r, size_t max, size_t *first, size_t *n)
{
	*first = below(r->npages);
	*n = 1 + below(max);
	if (*first + *n > r->npages)
		*n = r->npages - *first;
}

static int random_content(void)
{
	/* A quarter zero, the rest one of a few: merges all the time. */
	return below(4) ? 1 + below(NR_CONTENTS) : ZERO;
}

static void op_write(void)
{
	struct region *r = pick_region();
	size_t first, n, i;

	if (!r)
		return;
	pick_range(r, 16, &first, &n);
	logop("write %p +%zu x%zu", r->addr, first, n);
	for (i = first; i < first + n; i++)
		write_page(r, i, random_content());
}

static void op_check(void)
{
	struct region *r = pick_region();

	if (!r)
		return;
	logop("check %p x%zu", r->addr, r->npages);
	check_region(r, "check");
}

static void op_mmap(void)
{
	struct region *r;
	size_t n, i;
	bool huge = !below(6), mergeable;
	char *p;

	if (nregions == MAX_REGIONS)
		return;
	n = huge ? MAX_PAGES : 1 + below(64);
	if (huge) {
		/* 2 MiB aligned, so that a THP can back it. */
		char *area = mmap(NULL, (n + MAX_PAGES) * ps,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (area == MAP_FAILED)
			return;
		p = (char *)(((uintptr_t)area + MAX_PAGES * ps - 1) &
			     ~(MAX_PAGES * ps - 1));
		if (p > area)
			munmap(area, p - area);
		munmap(p + n * ps, area + (n + MAX_PAGES) * ps - (p + n * ps));
		madvise(p, n * ps, MADV_HUGEPAGE);
	} else {
		p = mmap(NULL, n * ps, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return;
	}
	r = &regions[nregions++];
	memset(r, 0, sizeof(*r));
	r->addr = p;
	r->npages = n;
	mergeable = below(4);
	if (mergeable)
		madvise(p, n * ps, MADV_MERGEABLE);
	for (i = 0; i < n; i++)
		write_page(r, i, below(3) ? random_content() : ZERO);
	logop("mmap %p x%zu%s%s", p, n, huge ? " huge" : "",
	      mergeable ? " mergeable" : "");
}

static void drop_region(struct region *r)
{
	*r = regions[--nregions];
}

static void op_munmap(void)
{
	struct region *r = pick_region();

	if (!r)
		return;
	logop("munmap %p x%zu", r->addr, r->npages);
	check_region(r, "before munmap");
	if (munmap(r->addr, r->npages * ps))
		die("munmap %p: %s", r->addr, strerror(errno));
	drop_region(r);
}

static void op_shrink(void)
{
	struct region *r = pick_region();
	size_t keep;

	if (!r || r->npages < 2)
		return;
	keep = 1 + below(r->npages - 1);
	logop("munmap tail %p x%zu -> x%zu", r->addr, r->npages, keep);
	if (munmap(r->addr + keep * ps, (r->npages - keep) * ps))
		die("munmap tail: %s", strerror(errno));
	r->npages = keep;
	check_region(r, "munmap of the tail");
}

static void op_mremap_grow(void)
{
	struct region *r = pick_region();
	size_t n, i;
	char *p;

	if (!r || r->npages >= MAX_PAGES)
		return;
	n = r->npages + 1 + below(MAX_PAGES - r->npages);
	logop("mremap grow %p x%zu -> x%zu", r->addr, r->npages, n);
	p = mremap(r->addr, r->npages * ps, n * ps, MREMAP_MAYMOVE);
	if (p == MAP_FAILED)
		return;
	r->addr = p;
	for (i = r->npages; i < n; i++)
		r->want[i] = ZERO;
	r->npages = n;
	check_region(r, "mremap grow");
}

static void op_mremap_move(void)
{
	struct region *r = pick_region();
	size_t len;
	char *to, *p;

	if (!r)
		return;
	len = r->npages * ps;
	to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (to == MAP_FAILED)
		return;
	logop("mremap move %p -> %p x%zu", r->addr, to, r->npages);
	p = mremap(r->addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (p == MAP_FAILED) {
		munmap(to, len);
		return;
	}
	r->addr = p;
	check_region(r, "mremap move");
}

static void op_mprotect(void)
{
	struct region *r = pick_region();
	size_t first, n;

	if (!r)
		return;
	pick_range(r, 64, &first, &n);
	logop("mprotect ro %p +%zu x%zu", r->addr, first, n);
	if (mprotect(r->addr + first * ps, n * ps, PROT_READ))
		die("mprotect ro: %s", strerror(errno));
	check_pages(r, first, n, "mprotect read-only");
	if (mprotect(r->addr + first * ps, n * ps, PROT_READ | PROT_WRITE))
		die("mprotect rw: %s", strerror(errno));
}

static void worker_loop(void) __attribute__((noreturn));

static void op_fork(void)
{
	uint64_t child_seed = rnd();
	int s, i;
	pid_t pid;

	if (depth >= 3 || nchildren >= MAX_SLOTS)
		return;
	s = claim_slot();
	if (s < 0)
		return;
	logop("fork into slot %d", s);
	check_all("before fork");
	pid = fork();
	if (pid < 0) {
		__atomic_store_n(&sh->slot_used[s], 0, __ATOMIC_SEQ_CST);
		return;
	}
	if (pid) {
		children[nchildren++] = pid;
		__atomic_add_fetch(&sh->forks, 1, __ATOMIC_RELAXED);
		return;
	}
	/* The child: its own slot, seed and children; gone with its parent. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	take_slot(s);
	seed_rng(child_seed);
	forked_child = true;
	depth++;
	nchildren = 0;
	for (i = 0; i < nregions; i++) {
		struct region *r = &regions[i];

		if (r->dontfork) {
			drop_region(r);
			i--;
		} else if (r->wipeonfork) {
			memset(r->want, ZERO, r->npages);
		}
	}
	logop("forked from pid %d", getppid());
	check_all("fork (child)");
	worker_loop();
}

static void reap_children(void)
{
	int i, status;

	for (i = 0; i < nchildren; i++) {
		if (waitpid(children[i], &status, 0) != children[i])
			die("waitpid %d: %s", children[i], strerror(errno));
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			die("child %d ended with status %#x", children[i], status);
	}
	nchildren = 0;
}

/* Reap the children that already exited, keep the others. */
static void reap_exited_children(void)
{
	int i, status;

	for (i = 0; i < nchildren; i++) {
		pid_t pid = waitpid(children[i], &status, WNOHANG);

		if (pid != children[i])
			continue;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			die("child %d ended with status %#x", children[i], status);
		children[i--] = children[--nchildren];
	}
}

static void leave(void) __attribute__((noreturn));

static void leave(void)
{
	check_all("the end");
	reap_children();
	__atomic_store_n(&sh->slot_used[slot], 0, __ATOMIC_SEQ_CST);
	_exit(0);
}

static void op_exit(void)
{
	/* Children run until the end: waiting for them would stall us. */
	if (!forked_child || nchildren)
		return;
	logop("exit");
	leave();
}

static void op_exec(void)
{
	char slot_arg[16], seed_arg[32];
	char *argv[] = { "ksm_fuzz_test", "--worker", slot_arg, seed_arg,
			 (char *)shared_path, verbose ? "-v" : NULL, NULL };

	/* Drawn first, so that the sequence does not depend on the gate. */
	snprintf(seed_arg, sizeof(seed_arg), "%llu", (unsigned long long)rnd());
	/* Children would be orphaned from our bookkeeping: only without. */
	if (nchildren)
		return;
	snprintf(slot_arg, sizeof(slot_arg), "%d", slot);
	logop("exec");
	check_all("before exec");
	__atomic_add_fetch(&sh->execs, 1, __ATOMIC_RELAXED);
	fflush(stdout);
	execv("/proc/self/exe", argv);
	die("exec: %s", strerror(errno));
}

static void op_madvise(void)
{
	static const struct { int advice; const char *name; } advices[] = {
		{ MADV_MERGEABLE, "MERGEABLE" }, { MADV_UNMERGEABLE, "UNMERGEABLE" },
		{ MADV_DONTNEED, "DONTNEED" }, { MADV_FREE, "FREE" },
		{ MADV_COLD, "COLD" }, { MADV_PAGEOUT, "PAGEOUT" },
		{ MADV_WIPEONFORK, "WIPEONFORK" }, { MADV_KEEPONFORK, "KEEPONFORK" },
		{ MADV_DONTFORK, "DONTFORK" }, { MADV_DOFORK, "DOFORK" },
		{ MADV_HUGEPAGE, "HUGEPAGE" }, { MADV_NOHUGEPAGE, "NOHUGEPAGE" },
		{ MADV_COLLAPSE, "COLLAPSE" },
	};
	struct region *r = pick_region();
	size_t first = 0, n, i, k = below(ARRAY_SIZE(advices));
	int advice = advices[k].advice;
	bool whole;

	if (!r)
		return;
	/* Fork behaviour is tracked per region: apply those to all of it. */
	whole = advice == MADV_WIPEONFORK || advice == MADV_KEEPONFORK ||
		advice == MADV_DONTFORK || advice == MADV_DOFORK;
	if (whole)
		n = r->npages;
	else
		pick_range(r, 128, &first, &n);
	logop("madvise %s %p +%zu x%zu", advices[k].name, r->addr, first, n);
	if (madvise(r->addr + first * ps, n * ps, advice))
		return;		/* EINVAL, EAGAIN, ENOMEM: nothing happened */
	switch (advice) {
	case MADV_DONTNEED:
		for (i = first; i < first + n; i++)
			r->want[i] = ZERO;
		break;
	case MADV_FREE:
		for (i = first; i < first + n; i++)
			if (r->want[i] != ZERO)
				r->want[i] |= MAYBE_ZERO;
		break;
	case MADV_WIPEONFORK:
		r->wipeonfork = true;
		break;
	case MADV_KEEPONFORK:
		r->wipeonfork = false;
		break;
	case MADV_DONTFORK:
		r->dontfork = true;
		break;
	case MADV_DOFORK:
		r->dontfork = false;
		break;
	}
	check_pages(r, first, n, advices[k].name);
}

static void op_prctl(void)
{
	unsigned long on = below(2);

	if (!below(8)) {
		logop("prctl PR_KSM_DOMAIN_PRIVATE");
		prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 0, 0, 0);
	} else {
		logop("prctl PR_SET_MEMORY_MERGE %lu", on);
		prctl(PR_SET_MEMORY_MERGE, on, 0, 0, 0);
	}
	check_all("prctl");
}

static void op_odirect(void)
{
	struct region *r = pick_region();
	size_t first, n, i;
	int fd, id = 1 + below(NR_CONTENTS);

	if (!r || !sh->odirect_dev[0])
		return;
	pick_range(r, 4, &first, &n);
	fd = open(sh->odirect_dev, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return;
	logop("O_DIRECT read content %d into %p +%zu x%zu", id, r->addr, first, n);
	for (i = first; i < first + n; i++) {
		ssize_t got = pread(fd, r->addr + i * ps, ps, (off_t)id * ps);

		if (got != (ssize_t)ps)
			die("O_DIRECT pread: %zd (%s)", got, strerror(errno));
		r->want[i] = id;
	}
	close(fd);
	__atomic_add_fetch(&sh->odirect, 1, __ATOMIC_RELAXED);
	check_pages(r, first, n, "O_DIRECT read");
}

/* Write-protect a range with userfaultfd, read it, and lift it again. */
static void op_uffd_wp(void)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { 0 };
	struct region *r = pick_region();
	size_t first, n;
	int fd;

	if (!r)
		return;
	fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return;
	if (ioctl(fd, UFFDIO_API, &api))
		goto out;
	pick_range(r, 64, &first, &n);
	reg.range.start = (uintptr_t)(r->addr + first * ps);
	reg.range.len = n * ps;
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		goto out;
	logop("uffd-wp %p +%zu x%zu", r->addr, first, n);
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	if (!ioctl(fd, UFFDIO_WRITEPROTECT, &wp)) {
		check_pages(r, first, n, "uffd write-protect");
		wp.mode = 0;
		if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
			die("uffd un-write-protect: %s", strerror(errno));
		__atomic_add_fetch(&sh->uffd_wp, 1, __ATOMIC_RELAXED);
	}
	ioctl(fd, UFFDIO_UNREGISTER, &reg.range);
out:
	close(fd);
}

static void op_move_pages(void)
{
	struct region *r = pick_region();
	void *pages[16];
	int nodes[16], status[16];
	size_t first, n, i;
	int node = below(2);

	if (!r)
		return;
	pick_range(r, 16, &first, &n);
	for (i = 0; i < n; i++) {
		pages[i] = r->addr + (first + i) * ps;
		nodes[i] = node;
	}
	logop("move_pages %p +%zu x%zu to node %d", r->addr, first, n, node);
	if (!syscall(__NR_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE))
		__atomic_add_fetch(&sh->moves, 1, __ATOMIC_RELAXED);
	check_pages(r, first, n, "move_pages");
}

/* Operations and how often each is drawn. */
static const struct {
	void (*fn)(void);
	unsigned int weight;
} ops[] = {
	{ op_write, 30 }, { op_check, 8 }, { op_mmap, 6 }, { op_munmap, 3 },
	{ op_shrink, 3 }, { op_mremap_grow, 3 }, { op_mremap_move, 3 },
	{ op_mprotect, 3 }, { op_fork, 2 }, { op_exit, 2 }, { op_exec, 1 },
	{ op_madvise, 14 }, { op_prctl, 2 }, { op_odirect, 2 },
	{ op_uffd_wp, 2 }, { op_move_pages, 3 },
};

static void worker_loop(void)
{
	unsigned int total = 0, i, pick;

	for (i = 0; i < ARRAY_SIZE(ops); i++)
		total += ops[i].weight;
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
		pick = below(total);
		for (i = 0; pick >= ops[i].weight; i++)
			pick -= ops[i].weight;
		ops[i].fn();
		reap_exited_children();
		if (__atomic_load_n(&sh->failed, __ATOMIC_RELAXED))
			_exit(1);
	}
	leave();
}

static void map_shared(const char *path)
{
	int fd = open(path, O_RDWR);

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (sh == MAP_FAILED) {
		perror("mmap shared");
		exit(1);
	}
	shared_path = path;
}

/* Entry of an exec'd worker: "--worker SLOT SEED SHARED [-v]". */
static int worker_main(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	verbose = argc > 5 && !strcmp(argv[5], "-v");
	setvbuf(stdout, NULL, _IOLBF, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ps = ksm_page_size();
	map_shared(argv[4]);
	make_contents();
	/* The same slot: its log goes on across the exec. */
	slot = atoi(argv[2]);
	seed_rng(strtoull(argv[3], NULL, 10));
	logop("exec'd, merge-any %d", prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
	worker_loop();
}

/* ------------------------------------------------------------------ */
/* The controller                                                     */
/* ------------------------------------------------------------------ */

/* A knob and the values the controller picks from. */
static const struct {
	const char *path;	/* relative to /sys/kernel/mm/ksm, or absolute */
	const char *values[6];
} knobs[] = {
	{ "run", { "0", "1", "1", "1", "2" } },
	{ "pages_to_scan", { "10", "100", "1000", "5000" } },
	{ "sleep_millisecs", { "0", "0", "5", "20" } },
	{ "ksmd_threads", { "1", "2", "3", "4" } },
	{ "merge_domain", { "global", "user", "cgroup", "process" } },
	{ "use_zero_pages", { "0", "1" } },
	{ "max_page_sharing", { "2", "3", "256", "4096" } },
	{ "merge_across_nodes", { "0", "1" } },
	{ "huge_split_min_subpages", { "1", "64", "512" } },
	{ "smart_scan", { "0", "1" } },
	{ "advisor_mode", { "none", "scan-time" } },
	{ "/sys/kernel/mm/transparent_hugepage/enabled", { "always", "madvise", "never" } },
	{ "/sys/kernel/mm/transparent_hugepage/defrag", { "always", "defer", "madvise", "never" } },
};

/* Everything the session changed outside KSM's knobs, to undo. */
struct session_env {
	struct ksm_saved_knobs saved;
	char thp_enabled[32], thp_defrag[32];
	int swap_id, odirect_id;
	bool swap_hot, odirect_hot, swap_on, cgroup;
	char swap_dev[64];
	int kmsg;
};

/* Knob flips tried, and those that took effect. */
static long flips, flips_tried;

static int write_knob(const char *path, const char *val)
{
	char full[256];

	if (path[0] == '/')
		return ksm_write_str(path, val);
	snprintf(full, sizeof(full), "%s/%s", KSM_DIR, path);
	return ksm_write_str(full, val);
}

static void flip_knob(void)
{
	size_t k = below(ARRAY_SIZE(knobs)), nv = 0;
	const char *val;

	while (nv < ARRAY_SIZE(knobs[k].values) && knobs[k].values[nv])
		nv++;
	val = knobs[k].values[below(nv)];
	flips_tried++;
	/* EBUSY (knobs that need no KSM pages), EINVAL, ENOENT: fine. */
	if (!write_knob(knobs[k].path, val))
		flips++;
	if (verbose)
		printf("# knob %s=%s\n", knobs[k].path, val);
	/* run=2 unmerged everything and stopped ksmd: start it again. */
	if (!strcmp(knobs[k].path, "run") && strcmp(val, "1") && below(2))
		ksm_write("run", "1");
}

static void selected(const char *path, char *out, size_t len)
{
	char buf[128];

	out[0] = '\0';
	if (ksm_read_file(path, buf, sizeof(buf)) > 0)
		ksm_selected_word(buf, out, len);
}

static void setup_swap(struct session_env *env)
{
	char why[128];
	size_t bytes = 256UL << 20;

	env->swap_id = ksm_zram_add(bytes, &env->swap_hot, env->swap_dev,
				    sizeof(env->swap_dev), why, sizeof(why));
	if (env->swap_id < 0) {
		printf("# no swap: %s\n", why);
		return;
	}
	if (!ksm_write_swap_header(env->swap_dev, bytes) &&
	    !swapon(env->swap_dev, 0))
		env->swap_on = true;
	else
		printf("# swapon %s: %s\n", env->swap_dev, strerror(errno));
}

/* A zram device holding content i at page i, for O_DIRECT reads. */
static void setup_odirect(struct session_env *env)
{
	char why[128], dev[64];
	int fd;

	env->odirect_id = ksm_zram_add((NR_CONTENTS + 1) * ps, &env->odirect_hot,
				       dev, sizeof(dev), why, sizeof(why));
	if (env->odirect_id < 0) {
		printf("# no O_DIRECT device: %s\n", why);
		return;
	}
	fd = open(dev, O_WRONLY);
	if (fd >= 0 && pwrite(fd, contents, (NR_CONTENTS + 1) * ps, 0) ==
	    (ssize_t)((NR_CONTENTS + 1) * ps) && !fsync(fd))
		snprintf(sh->odirect_dev, sizeof(sh->odirect_dev), "%s", dev);
	if (fd >= 0)
		close(fd);
}

static void setup_cgroup(struct session_env *env)
{
	if (ksm_write_str("/sys/fs/cgroup/cgroup.subtree_control", "+memory") ||
	    (mkdir(CG_PATH, 0755) && errno != EEXIST)) {
		printf("# no memory cgroup: workers run where we are\n");
		return;
	}
	env->cgroup = true;
}

static void session_setup(struct session_env *env)
{
	memset(env, 0, sizeof(*env));
	env->swap_id = env->odirect_id = -1;
	ksm_save_knobs(&env->saved);
	selected("/sys/kernel/mm/transparent_hugepage/enabled",
		 env->thp_enabled, sizeof(env->thp_enabled));
	selected("/sys/kernel/mm/transparent_hugepage/defrag",
		 env->thp_defrag, sizeof(env->thp_defrag));
	ksm_reset();
	ksm_fast_scanning();
	ksm_write("run", "1");
	setup_swap(env);
	setup_odirect(env);
	setup_cgroup(env);
	env->kmsg = ksm_kmsg_open();
}

static void session_teardown(struct session_env *env)
{
	int i;

	for (i = 0; i < 300 && env->cgroup && rmdir(CG_PATH) && errno == EBUSY; i++)
		usleep(10 * 1000);
	ksm_restore_knobs(&env->saved);
	if (env->thp_enabled[0])
		ksm_write_str("/sys/kernel/mm/transparent_hugepage/enabled",
			      env->thp_enabled);
	if (env->thp_defrag[0])
		ksm_write_str("/sys/kernel/mm/transparent_hugepage/defrag",
			      env->thp_defrag);
	if (env->swap_on && swapoff(env->swap_dev))
		printf("# swapoff %s: %s\n", env->swap_dev, strerror(errno));
	if (env->swap_id >= 0)
		ksm_zram_remove(env->swap_id, env->swap_hot);
	if (env->odirect_id >= 0)
		ksm_zram_remove(env->odirect_id, env->odirect_hot);
	if (env->kmsg >= 0)
		close(env->kmsg);
}

/*
 * A counter of /sys/kernel/mm/ksm: -1 if unreadable. Counters print as
 * unsigned: one that went below zero reads as a huge number, which comes
 * back as -2 (and ksm_zero_pages, printed signed, as itself).
 */
static long knob_value(const char *name)
{
	unsigned long long v;
	char buf[64];

	if (ksm_read_raw(name, buf, sizeof(buf)) <= 0)
		return -1;
	if (buf[0] == '-')
		return atol(buf);
	v = strtoull(buf, NULL, 10);
	return v > LONG_MAX ? -2 : (long)v;
}

/*
 * Sum ksm_zero_pages and ksm_merging_pages over every process. Fails on a
 * ksm_stat that does not parse (an empty one is a process without an mm).
 */
static int sum_proc_stats(long *zero, long *merging)
{
	struct ksm_proc_stat st;
	struct dirent *de;
	DIR *d;
	int err = 0;

	*zero = *merging = 0;
	d = opendir("/proc");
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		int pid = atoi(de->d_name), r;

		if (pid <= 0)
			continue;
		r = ksm_read_proc_stat(pid, &st);
		if (r == -EBADMSG) {
			printf("# ksm_stat of %d does not parse\n", pid);
			err = -1;
		}
		if (r)
			continue;	/* gone, or without an mm */
		*zero += st.zero_pages;
		*merging += st.merging_pages;
		if (st.zero_pages < 0 || st.merging_pages < 0 ||
		    st.rmap_items < 0) {
			printf("# ksm_stat of %d: negative figure\n", pid);
			err = -1;
		}
	}
	closedir(d);
	return err;
}

/* Freeze the workers' cgroup; true once the cgroup reports it frozen. */
static bool freeze_workers(void)
{
	char buf[256];
	int i;

	if (ksm_write_str(CG_PATH "/cgroup.freeze", "1"))
		return false;
	for (i = 0; i < 500; i++) {
		if (ksm_read_file(CG_PATH "/cgroup.events", buf, sizeof(buf)) > 0 &&
		    strstr(buf, "frozen 1"))
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/*
 * With the workers frozen and ksmd stopped, the global KSM zero pages are
 * the workers' own. An mm still being torn down by an exit can lag for a
 * moment: only a difference that lasts counts.
 */
static bool zero_pages_add_up(long *global, long *sum)
{
	long merging;
	int i;

	for (i = 0; i < 20; i++) {
		*global = knob_value("ksm_zero_pages");
		if (!sum_proc_stats(sum, &merging) && *sum == *global)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

/*
 * Freeze the workers, stop ksmd, and look for counter values that cannot
 * be. Returns false (with the reason printed) if one is found.
 */
static bool check_counters(struct session_env *env, long *checks)
{
	static const char *const names[] = {
		"pages_shared", "pages_sharing", "pages_unshared",
		"pages_volatile", "ksm_zero_pages", "full_scans",
	};
	long v[ARRAY_SIZE(names)], zero, merging, run = knob_value("run");
	bool ok = true, frozen;
	size_t i;

	if (!env->cgroup)
		return true;
	frozen = freeze_workers();
	ksm_write("run", "0");	/* returns once ksmd is idle */
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		v[i] = knob_value(names[i]);
		if (v[i] < 0) {
			printf("# counter %s = %ld\n", names[i], v[i]);
			ok = false;
		}
	}
	if (v[1] > 0 && v[0] == 0) {
		printf("# pages_sharing %ld without pages_shared\n", v[1]);
		ok = false;
	}
	if (frozen && sum_proc_stats(&zero, &merging)) {
		ok = false;
	} else if (frozen) {
		if (merging > v[0] + v[1]) {
			printf("# processes merge %ld pages, pages_shared + pages_sharing = %ld\n",
			       merging, v[0] + v[1]);
			ok = false;
		}
		if (!zero_pages_add_up(&v[4], &zero)) {
			printf("# ksm_zero_pages %ld, but the processes' add up to %ld\n",
			       v[4], zero);
			ok = false;
		}
	}
	(*checks)++;
	if (run >= 0) {
		char buf[24];

		snprintf(buf, sizeof(buf), "%ld", run == 2 ? 0 : run);
		ksm_write("run", buf);
	}
	ksm_write_str(CG_PATH "/cgroup.freeze", "0");
	return ok;
}

static void print_logs(void)
{
	int s, k;

	printf("# last operations of every worker (oldest first):\n");
	for (s = 0; s < MAX_SLOTS; s++) {
		struct op_log *l = &sh->log[s];
		unsigned int from = l->next > LOG_OPS ? l->next - LOG_OPS : 0;

		if (!l->next)
			continue;
		printf("#  worker %d (pid %d%s):\n", s, l->pid,
		       sh->slot_used[s] ? "" : ", finished");
		for (k = from; k < (int)l->next; k++)
			printf("#    %s\n", l->op[k % LOG_OPS]);
	}
}

static pid_t start_worker(int s, uint64_t seed, struct session_env *env)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	/* Workers never outlive the controller. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	take_slot(s);
	if (env->cgroup && ksm_join_cgroup(CG_PATH))
		die("cannot join %s", CG_PATH);
	seed_rng(seed);
	logop("start, seed %llu", (unsigned long long)seed);
	worker_loop();
}

/* Write @val to the workers' cgroup file @name, async-signal-safely. */
static void cg_poke(const char *name, const char *val)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), CG_PATH "/%s", name);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		ssize_t done = write(fd, val, strlen(val));

		(void)done;	/* nothing more to do in a signal handler */
		close(fd);
	}
}

/* Killed (a harness timeout): take the workers along, thawed first. */
static void on_term(int sig)
{
	cg_poke("cgroup.freeze", "0");
	cg_poke("cgroup.kill", "1");
	_exit(128 + sig);
}

/* Kill whatever is left in the workers' cgroup and wait until it is empty. */
static void kill_leftovers(struct session_env *env)
{
	char buf[256];
	int i;

	if (!env->cgroup)
		return;
	cg_poke("cgroup.freeze", "0");
	cg_poke("cgroup.kill", "1");
	for (i = 0; i < 500; i++) {
		if (ksm_read_file(CG_PATH "/cgroup.events", buf, sizeof(buf)) > 0 &&
		    strstr(buf, "populated 0"))
			return;
		usleep(10 * 1000);
	}
	printf("# processes left in %s after 5 s\n", CG_PATH);
}

/*
 * With every worker gone, ksmd at full speed must take every counter back
 * to zero once it has reaped the exited mms: a KSM page, record or zero
 * page still counted when ksmd stops making full scans is a leak. (With
 * no mm left to visit, ksmd makes no full scans at all.)
 */
static bool expect_nothing_left(void)
{
	static const char *const names[] = {
		"pages_shared", "pages_sharing", "pages_unshared", "ksm_zero_pages",
	};
	long scans = knob_value("full_scans"), v[ARRAY_SIZE(names)];
	double since = now();
	size_t i;
	bool zero;

	ksm_fast_scanning();
	ksm_write("run", "1");
	for (;;) {
		zero = true;
		for (i = 0; i < ARRAY_SIZE(names); i++) {
			v[i] = knob_value(names[i]);
			zero &= !v[i];
		}
		if (zero)
			return true;
		if (knob_value("full_scans") != scans) {
			scans = knob_value("full_scans");
			since = now();
		} else if (now() - since > KSM_SCAN_TIMEOUT_SEC) {
			break;
		}
		usleep(100 * 1000);
	}
	for (i = 0; i < ARRAY_SIZE(names); i++)
		printf("# %s %ld with no worker left, no full scan for %d s\n",
		       names[i], v[i], KSM_SCAN_TIMEOUT_SEC);
	return false;
}

/* Wait for the workers; kill them if they do not finish in time. */
static bool wait_workers(pid_t *pids, int n)
{
	double deadline = now() + EXIT_GRACE;
	bool ok = true;
	int i, status;

	for (i = 0; i < n; i++) {
		pid_t got;

		if (pids[i] <= 0)
			continue;
		while (!(got = waitpid(pids[i], &status, WNOHANG)) &&
		       now() < deadline)
			usleep(20 * 1000);
		if (got < 0) {
			printf("# worker pid %d: waitpid: %s\n", pids[i], strerror(errno));
			ok = false;
		} else if (!got) {
			printf("# worker pid %d did not finish in %d s\n", pids[i],
			       EXIT_GRACE);
			kill(pids[i], SIGKILL);
			ok = false;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			printf("# worker pid %d ended with status %#x\n", pids[i],
			       status);
			ok = false;
		}
	}
	return ok;
}

/* One session; true if it found nothing wrong. */
static bool run_session(uint64_t seed, double seconds, int procs)
{
	unsigned long cow_before = 0, cow_after = 0;
	long checks = 0, max_sharing = 0, splats = 0;
	struct session_env env;
	pid_t pids[MAX_SLOTS];
	double start, next_check;
	bool ok = true;
	int i;

	memset(sh, 0, sizeof(*sh));
	sh->seed = seed;
	flips = flips_tried = 0;
	seed_rng(seed);
	session_setup(&env);
	ksm_vmstat("cow_ksm", &cow_before);
	printf("# seed %llu: %d workers for %.0f s\n", (unsigned long long)seed,
	       procs, seconds);
	fflush(stdout);
	for (i = 0; i < procs; i++) {
		sh->slot_used[i] = 1;
		pids[i] = start_worker(i, rnd(), &env);
		if (pids[i] < 0) {
			printf("# fork of worker %d: %s\n", i, strerror(errno));
			ok = false;
		}
	}
	start = now();
	next_check = start + CHECK_EVERY;
	while (now() - start < seconds && !sh->failed) {
		usleep((100 + below(400)) * 1000);
		flip_knob();
		if (env.cgroup && !below(8)) {
			char high[32];

			snprintf(high, sizeof(high), "%zu", (16 + below(80)) << 20);
			ksm_write_str(CG_PATH "/memory.high", below(3) ? high : "max");
		}
		if (knob_value("pages_sharing") > max_sharing)
			max_sharing = knob_value("pages_sharing");
		splats += ksm_kmsg_splats(env.kmsg, "fuzz");
		if (now() >= next_check) {
			if (!check_counters(&env, &checks))
				ok = false;
			next_check = now() + CHECK_EVERY;
		}
		if (splats || !ok)
			break;
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	if (env.cgroup) {
		ksm_write_str(CG_PATH "/cgroup.freeze", "0");
		ksm_write_str(CG_PATH "/memory.high", "max");
	}
	ksm_write("run", "1");
	if (!wait_workers(pids, procs))
		ok = false;
	kill_leftovers(&env);
	/* Only in the cgroup do we know that nothing of ours is left. */
	if (env.cgroup && ok && !sh->failed && !expect_nothing_left())
		ok = false;
	splats += ksm_kmsg_splats(env.kmsg, "fuzz");
	ksm_vmstat("cow_ksm", &cow_after);
	printf("# seed %llu: %ld operations in %.0f s (%.0f/s), %ld forks, %ld execs, %ld O_DIRECT reads, %ld uffd-wp, %ld move_pages\n",
	       (unsigned long long)seed, sh->ops, now() - start,
	       sh->ops / (now() - start), sh->forks, sh->execs, sh->odirect,
	       sh->uffd_wp, sh->moves);
	printf("# seed %llu: pages_sharing up to %ld, %lu copy-on-write faults on KSM pages, %ld knob flips (%ld tried), %ld counter checks, %ld MADV_FREE pages dropped during a check, %ld kernel reports\n",
	       (unsigned long long)seed, max_sharing, cow_after - cow_before,
	       flips, flips_tried, checks, sh->dropped_mid_check, splats);
	if (sh->failed)
		printf("# %s\n", sh->why);
	ok = ok && !sh->failed && !splats;
	if (!ok) {
		printf("# FAILED: replay with ksm_fuzz_test -d %.0f -s %llu -p %d (make fuzz DURATION=%.0fs SEED=%llu PROCS=%d)\n",
		       seconds, (unsigned long long)seed, procs, seconds,
		       (unsigned long long)seed, procs);
		print_logs();
	}
	session_teardown(&env);
	fflush(stdout);
	return ok;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-d SECONDS [-s SEED] [-p PROCS]] [-v]\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	char path[] = "/tmp/ksm_fuzz_shared.XXXXXX";
	double seconds = 0;
	uint64_t seed = 0;
	bool have_seed = false;
	int procs = 4, opt, fd, failed = 0;

	if (argc > 1 && !strcmp(argv[1], "--worker"))
		return worker_main(argc, argv);
	while ((opt = getopt(argc, argv, "d:s:p:v")) != -1) {
		switch (opt) {
		case 'd':
			seconds = atof(optarg);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			have_seed = true;
			break;
		case 'p':
			procs = atoi(optarg);
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (procs < 1 || procs > MAX_SLOTS / 2)
		usage(argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if (ksm_skip_reason()) {
		printf("1..0 # SKIP %s\n", ksm_skip_reason());
		return 4;
	}
	ps = ksm_page_size();
	make_contents();
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, sizeof(*sh))) {
		perror("shared file");
		return 1;
	}
	close(fd);
	map_shared(path);

	if (seconds > 0) {
		if (!have_seed)
			seed = ksm_unique_seed();
		printf("1..1\n");
		failed = !run_session(seed, seconds, procs);
		printf("%sok 1 fuzz_seed=%llu\n", failed ? "not " : "",
		       (unsigned long long)seed);
	} else {
		uint64_t random_seed = ksm_unique_seed();

		printf("1..2\n");
		failed += !run_session(1, 60, 3);
		printf("%sok 1 fuzz_fixed_seed=1\n", failed ? "not " : "");
		if (!run_session(random_seed, 60, 3)) {
			failed++;
			printf("not ");
		}
		printf("ok 2 fuzz_random_seed=%llu\n",
		       (unsigned long long)random_seed);
	}
	unlink(path);
	return failed ? 1 : 0;
}
