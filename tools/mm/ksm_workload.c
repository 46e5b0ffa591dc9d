// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_workload - processes holding duplicate memory, for demos and
 * benchmarks of Kernel Samepage Merging.
 *
 *   ksm_workload [-p PROCS] [-m MIB] [-s SECS] [-d PERCENT] [-o HOW] [-P]
 *
 * Starts PROCS processes (default 4) that each map MIB MiB (default 32)
 * of anonymous memory. DUP percent of the pages (default 75) hold content
 * shared by all processes, the rest is unique per page. How they opt in
 * (-o): "alt" (default) even-numbered processes with
 * madvise(MADV_MERGEABLE), odd ones with prctl(PR_SET_MEMORY_MERGE);
 * "madvise" or "prctl" all the same way; "none" not at all, for a caller
 * that made the whole process tree mergeable (ksm_run, systemd's
 * MemoryKSM=). With -P the parent process holds MIB MiB as well (after
 * forking). Each process reports prctl(PR_GET_MEMORY_MERGE) once it has
 * filled its memory, then waits SECS seconds (default: until killed) and
 * checks that every byte still holds what it wrote.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif
#ifndef PR_GET_MEMORY_MERGE
#define PR_GET_MEMORY_MERGE 68
#endif
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#endif

enum opt_in { OPT_IN_ALT, OPT_IN_MADVISE, OPT_IN_PRCTL, OPT_IN_NONE };

static const char * const opt_in_names[] = {
	[OPT_IN_ALT] = "alt",
	[OPT_IN_MADVISE] = "madvise",
	[OPT_IN_PRCTL] = "prctl",
	[OPT_IN_NONE] = "none",
};

static size_t page_size;
static enum opt_in opt_in = OPT_IN_ALT;

/* How process @proc opts in: OPT_IN_MADVISE, OPT_IN_PRCTL or OPT_IN_NONE. */
static enum opt_in how(unsigned int proc)
{
	if (opt_in == OPT_IN_ALT)
		return proc % 2 ? OPT_IN_PRCTL : OPT_IN_MADVISE;
	return opt_in;
}

static const char *how_name(unsigned int proc)
{
	switch (how(proc)) {
	case OPT_IN_MADVISE:
		return "madvise";
	case OPT_IN_PRCTL:
		return "prctl";
	default:
		return "nothing (merging inherited)";
	}
}

/* The 64-bit word at @word of page @page for process @proc. */
static uint64_t pattern(unsigned int proc, size_t page, size_t word, int dup)
{
	uint64_t seed = dup ? page % 64 : ((uint64_t)proc << 40) ^ page;

	return (seed + 1) * 0x9e3779b97f4a7c15ULL ^ word;
}

static void fill(char *mem, size_t pages, unsigned int proc, int dup_pct,
		 int check, long *bad)
{
	size_t words = page_size / sizeof(uint64_t), p, w;

	for (p = 0; p < pages; p++) {
		uint64_t *page = (uint64_t *)(mem + p * page_size);
		int dup = (int)(p % 100) < dup_pct;

		for (w = 0; w < words; w++) {
			uint64_t v = pattern(proc, p, w, dup);

			if (!check)
				page[w] = v;
			else if (page[w] != v)
				(*bad)++;
		}
	}
}

/* Opt in as process @proc does, map and fill @mib MiB; NULL on failure. */
static char *hold(unsigned int proc, size_t mib, int dup_pct)
{
	size_t len = mib << 20;
	char *mem;

	if (how(proc) == OPT_IN_PRCTL && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) {
		perror("prctl(PR_SET_MEMORY_MERGE)");
		return NULL;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return NULL;
	}
	if (how(proc) == OPT_IN_MADVISE && madvise(mem, len, MADV_MERGEABLE)) {
		perror("madvise(MADV_MERGEABLE)");
		return NULL;
	}
	fill(mem, len / page_size, proc, dup_pct, 0, NULL);
	/* Whether all of this process is mergeable, as the kernel sees it. */
	printf("ksm_workload: process %u (pid %d): prctl(PR_GET_MEMORY_MERGE) = %d\n",
	       proc, getpid(), prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
	fflush(stdout);
	return mem;
}

/* Keep @mem for @secs seconds (< 0: until killed), then check it. */
static int keep_and_verify(char *mem, unsigned int proc, size_t mib,
			   int dup_pct, int secs)
{
	long bad = 0;

	if (secs < 0)
		pause();
	sleep(secs);
	fill(mem, (mib << 20) / page_size, proc, dup_pct, 1, &bad);
	if (bad) {
		fprintf(stderr, "ksm_workload[%u]: %ld corrupt words\n", proc,
			bad);
		return 1;
	}
	return 0;
}

static int run_child(unsigned int proc, size_t mib, int dup_pct, int secs,
		     int ready_fd)
{
	char *mem = hold(proc, mib, dup_pct);

	if (!mem)
		return 1;
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);
	return keep_and_verify(mem, proc, mib, dup_pct, secs);
}

int main(int argc, char **argv)
{
	int procs = 4, dup_pct = 75, secs = -1, opt, status, failed = 0, i;
	int parent_too = 0, ready[2];
	char byte, *mem = NULL;
	size_t mib = 32, o;
	pid_t pid;

	page_size = sysconf(_SC_PAGESIZE);
	while ((opt = getopt(argc, argv, "p:m:s:d:o:P")) != -1) {
		switch (opt) {
		case 'p':
			procs = atoi(optarg);
			break;
		case 'm':
			mib = strtoul(optarg, NULL, 0);
			break;
		case 's':
			secs = atoi(optarg);
			break;
		case 'd':
			dup_pct = atoi(optarg);
			break;
		case 'o':
			for (o = 0; o < ARRAY_SIZE(opt_in_names); o++)
				if (!strcmp(optarg, opt_in_names[o]))
					break;
			if (o == ARRAY_SIZE(opt_in_names)) {
				fprintf(stderr, "%s: -o alt|madvise|prctl|none\n",
					argv[0]);
				return 2;
			}
			opt_in = o;
			break;
		case 'P':
			parent_too = 1;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-p PROCS] [-m MIB] [-s SECS] [-d PERCENT] [-o alt|madvise|prctl|none] [-P]\n",
				argv[0]);
			return 2;
		}
	}
	if (pipe(ready)) {
		perror("pipe");
		return 1;
	}
	for (i = 0; i < procs; i++) {
		fflush(stdout);	/* children must not inherit buffered lines */
		pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (!pid)
			return run_child(i, mib, dup_pct, secs, ready[1]);
		printf("ksm_workload: process %d (pid %d) opts in with %s\n", i,
		       pid, how_name(i));
	}
	close(ready[1]);
	/* The parent is process PROCS: its unique pages differ from all. */
	if (parent_too) {
		printf("ksm_workload: the parent (pid %d) holds %zu MiB too, opts in with %s\n",
		       getpid(), mib, how_name(procs));
		mem = hold(procs, mib, dup_pct);
		if (!mem)
			failed++;
	}
	for (i = 0; i < procs && read(ready[0], &byte, 1) == 1; i++)
		;
	if (mem)
		i++;
	procs += parent_too;
	printf("ksm_workload: %d of %d processes filled %zu MiB each\n", i,
	       procs, mib);
	fflush(stdout);
	if (mem && keep_and_verify(mem, procs - 1, mib, dup_pct, secs))
		failed++;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	if (secs >= 0)
		printf("ksm_workload: %d of %d processes verified their memory\n",
		       procs - failed, procs);
	return failed ? 1 : 0;
}
