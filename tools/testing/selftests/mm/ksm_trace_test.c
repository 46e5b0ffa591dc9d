// SPDX-License-Identifier: GPL-2.0
/*
 * KSM tracepoints: the events in include/trace/events/ksm.h fire at the
 * lifecycle edges they name when our engine merges, unmerges and lets an
 * mm go.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The 6.12 harness header itself trips these two. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "ksm_test_util.h"
#include "../kselftest_harness.h"

#define TRACEFS "/sys/kernel/tracing"

static const char * const ksm_events[] = {
	"ksm_start_scan", "ksm_stop_scan", "ksm_enter", "ksm_exit",
	"ksm_merge_one_page", "ksm_merge_with_ksm_page",
	"ksm_remove_ksm_page", "ksm_remove_rmap_item",
};

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Count lines of the trace buffer that mention @event. */
static int count_event(const char *event)
{
	char line[512];
	int n = 0;
	FILE *f = fopen(TRACEFS "/trace", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '#' && strstr(line, event))
			n++;
	fclose(f);
	return n;
}

FIXTURE(ksm_trace) {
	struct ksm_saved_knobs saved;
};

FIXTURE_SETUP(ksm_trace)
{
	const char *why = ksm_skip_reason();
	struct stat st;

	if (why)
		SKIP(return, "%s", why);
	if (stat(TRACEFS "/events/ksm", &st))
		SKIP(return, "no ksm trace events in " TRACEFS);
	ksm_save_knobs(&self->saved);
	ASSERT_EQ(0, ksm_reset());
	ASSERT_EQ(0, ksm_fast_scanning());
	ASSERT_EQ(0, write_str(TRACEFS "/tracing_on", "0"));
	ASSERT_EQ(0, write_str(TRACEFS "/trace", ""));
	ASSERT_EQ(0, write_str(TRACEFS "/events/ksm/enable", "1"));
	ASSERT_EQ(0, write_str(TRACEFS "/tracing_on", "1"));
}

FIXTURE_TEARDOWN(ksm_trace)
{
	write_str(TRACEFS "/events/ksm/enable", "0");
	write_str(TRACEFS "/trace", "");
	ksm_reset();
	ksm_restore_knobs(&self->saved);
}

/* Every event of the 6.12 ksm trace system exists. */
TEST_F(ksm_trace, events_exist)
{
	char path[256];
	struct stat st;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ksm_events); i++) {
		snprintf(path, sizeof(path), TRACEFS "/events/ksm/%s",
			 ksm_events[i]);
		EXPECT_EQ(0, stat(path, &st)) TH_LOG("missing event %s",
						     ksm_events[i]);
	}
}

/*
 * A child that registers, merges and exits produces enter, scan start and
 * stop, merge events and exit; once it is gone, ksmd finds its KSM page
 * freed and removes the page's node.
 */
TEST_F_TIMEOUT(ksm_trace, lifecycle, 600)
{
	const size_t n = 8, ps = ksm_page_size();
	int status, ready[2], done[2];
	unsigned long start;
	void *anchor;
	char c = 0;
	pid_t pid;

	/* A mergeable anchor keeps ksmd passing once the child is gone. */
	anchor = ksm_map(1);
	ASSERT_NE(NULL, anchor);
	ksm_fill_page(anchor, ksm_unique_seed());
	ASSERT_EQ(0, madvise(anchor, ps, MADV_MERGEABLE));

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		char *p = ksm_map(n);
		size_t i;

		if (!p)
			_exit(1);
		for (i = 0; i < n; i++)
			ksm_fill_page(ksm_page_at(p, i), 42);
		if (madvise(p, n * ps, MADV_MERGEABLE))
			_exit(2);
		if (write(ready[1], "r", 1) != 1 || read(done[0], &c, 1) != 1)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	ASSERT_EQ(0, ksm_run_passes(2, &start, NULL));
	EXPECT_EQ((long)(n - 1), (long)ksm_get("pages_sharing"));

	ASSERT_EQ(1, write(done[1], "d", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	/* ksmd reaps the exited mm and its items on its next pass. */
	ASSERT_EQ(0, ksm_run_passes(2, NULL, NULL));
	EXPECT_EQ(0L, (long)ksm_get("pages_sharing"));

	EXPECT_LE(1, count_event("ksm_enter"));
	EXPECT_LE(1, count_event("ksm_exit"));
	EXPECT_LE(2, count_event("ksm_start_scan"));
	EXPECT_LE(2, count_event("ksm_stop_scan"));
	/* Every page merged: as the new KSM page or into it. */
	EXPECT_LE((int)n, count_event("ksm_merge_one_page") +
			  count_event("ksm_merge_with_ksm_page"));
	/* The KSM page died with its only mapper: its node goes. */
	EXPECT_LE(1, count_event("ksm_remove_ksm_page"));
	ksm_unmap(anchor, 1);
}

TEST_HARNESS_MAIN
