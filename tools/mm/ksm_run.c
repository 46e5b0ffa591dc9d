// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_run - run a program with all of its memory mergeable by KSM.
 *
 *   ksm_run [--] PROGRAM [ARGS...]
 *
 * Sets prctl(PR_SET_MEMORY_MERGE, 1) and execs PROGRAM (searched in PATH).
 * The setting survives the exec and is inherited by every child the
 * program forks, so an unmodified program and all its processes take part
 * in merging: what systemd's MemoryKSM=yes does for a service.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

static void print_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"usage: %s [--] PROGRAM [ARGS...]\n"
		"Run PROGRAM with prctl(PR_SET_MEMORY_MERGE, 1): all of its\n"
		"memory, and that of its children, is mergeable by KSM.\n",
		prog);
}

int main(int argc, char **argv)
{
	int first = 1;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		print_usage(stdout, argv[0]);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--"))
		first = 2;
	if (first >= argc) {
		print_usage(stderr, argv[0]);
		return 2;
	}
	if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) {
		fprintf(stderr, "ksm_run: prctl(PR_SET_MEMORY_MERGE): %s\n",
			strerror(errno));
		return 1;
	}
	execvp(argv[first], argv + first);
	fprintf(stderr, "ksm_run: %s: %s\n", argv[first], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
