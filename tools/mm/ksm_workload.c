// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_workload - processes holding duplicate memory, for demos and
 * benchmarks of Kernel Samepage Merging.
 *
 *   ksm_workload [-p PROCS] [-m MIB] [-s SECS] [-d PERCENT]
 *
 * Starts PROCS processes (default 4) that each map MIB MiB (default 32)
 * of anonymous memory. DUP percent of the pages (default 75) hold content
 * shared by all processes, the rest is unique per page. Even-numbered
 * processes opt in with madvise(MADV_MERGEABLE), odd ones with
 * prctl(PR_SET_MEMORY_MERGE). Each then waits SECS seconds (default: until
 * killed) and checks that every byte still holds what it wrote.
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

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#endif

static size_t page_size;

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

static int run_child(unsigned int proc, size_t mib, int dup_pct, int secs,
		     int ready_fd)
{
	size_t len = mib << 20, pages = len / page_size;
	long bad = 0;
	char *mem;

	if (proc % 2 && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) {
		perror("prctl(PR_SET_MEMORY_MERGE)");
		return 1;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (!(proc % 2) && madvise(mem, len, MADV_MERGEABLE)) {
		perror("madvise(MADV_MERGEABLE)");
		return 1;
	}
	fill(mem, pages, proc, dup_pct, 0, NULL);
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);
	if (secs < 0)
		pause();
	sleep(secs);
	fill(mem, pages, proc, dup_pct, 1, &bad);
	if (bad) {
		fprintf(stderr, "ksm_workload[%u]: %ld corrupt words\n", proc,
			bad);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int procs = 4, dup_pct = 75, secs = -1, opt, status, failed = 0, i;
	int ready[2];
	size_t mib = 32;
	char byte;
	pid_t pid;

	page_size = sysconf(_SC_PAGESIZE);
	while ((opt = getopt(argc, argv, "p:m:s:d:")) != -1) {
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
		default:
			fprintf(stderr,
				"usage: %s [-p PROCS] [-m MIB] [-s SECS] [-d PERCENT]\n",
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
		       pid, i % 2 ? "prctl" : "madvise");
	}
	close(ready[1]);
	for (i = 0; i < procs && read(ready[0], &byte, 1) == 1; i++)
		;
	printf("ksm_workload: %d of %d processes filled %zu MiB each\n", i,
	       procs, mib);
	fflush(stdout);
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	if (secs >= 0)
		printf("ksm_workload: %d of %d processes verified their memory\n",
		       procs - failed, procs);
	return failed ? 1 : 0;
}
